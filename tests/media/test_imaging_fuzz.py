"""Property tests: whatever the bytes, imaging raises only ImageRejected, and what it does
produce is still a bare JPEG.

Inputs are random bytes behind each accepted magic number, and real photos damaged by bit
flips, cuts and insertions. Runs are derandomized (the same examples every time) and keep no
example database, so CI is reproducible and the tree stays clean.
"""

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from stopapp.media.imaging import ImageRejected, process_image, validate_upload

from .conftest import photo

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

MAGICS = [
    b"",
    b"\xff\xd8\xff",
    b"\xff\xd8\xff\xe1\x00\x20Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x10\x00\x00WEBPVP8X",
    b"RIFF\x00\x10\x00\x00WEBPVP8L",
    b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
    b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic",
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file path reused by every example (hypothesis cannot use function fixtures)."""
    return tmp_path_factory.mktemp("fuzz") / "upload"


def check_contract(path: Path, bare_jpeg_check: Callable[..., Image.Image]) -> None:
    """Both entry points either reject with ImageRejected or return clean results."""
    try:
        info = validate_upload(path)
    except ImageRejected as error:
        assert error.status in (415, 422)
    else:
        assert info.width > 0 and info.height > 0
    try:
        result = process_image(path, display_max_px=256, thumb_max_px=64)
    except ImageRejected as error:
        assert error.status in (415, 422)
    else:
        display = bare_jpeg_check(result.display_jpeg)
        thumb = bare_jpeg_check(result.thumb_jpeg)
        assert display.size == result.display_size and max(display.size) <= 256
        assert thumb.size == result.thumb_size and max(thumb.size) <= 64
        if result.gps is not None:
            assert abs(result.gps[0]) <= 90 and abs(result.gps[1]) <= 180
            assert result.gps != (0.0, 0.0)


@FUZZ
@given(magic=st.sampled_from(MAGICS), body=st.binary(max_size=4096))
def test_random_bytes(
    scratch: Path, bare_jpeg_check: Callable[..., Image.Image], magic: bytes, body: bytes
) -> None:
    scratch.write_bytes(magic + body)
    check_contract(scratch, bare_jpeg_check)


# One damage: (kind, where, payload). Positions favour the first 4 KiB, where the headers,
# EXIF and tables are, but can fall anywhere in the file; they spare the first 16 bytes (the
# magic number: test_random_bytes covers that) so that most examples reach the decoders.
DAMAGE = st.tuples(
    st.sampled_from(["flip", "flip", "cut", "insert", "overwrite"]),
    st.one_of(st.integers(16, 4096), st.floats(0.01, 1, exclude_max=True)),
    st.binary(min_size=1, max_size=16),
)


def damaged(original: bytes, damages: list[tuple[str, int | float, bytes]]) -> bytes:
    data = bytearray(original)
    for kind, where, payload in damages:
        if not data:
            break
        pos = int(where * len(data)) if isinstance(where, float) else where
        pos = min(max(pos, 16), len(data) - 1)
        if kind == "flip":
            data[pos] ^= payload[0] or 0x01
        elif kind == "cut":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = payload
        else:
            data[pos : pos + len(payload)] = payload
    return bytes(data)


@pytest.mark.parametrize(
    "name",
    [
        "orientation_6.jpg",
        "exif_chunk.png",
        "flower_exif_makernote.webp",
        "sony_exif_xmp_iptc.heic",
    ],
)
def test_damaged_real_photos(name: str, scratch: Path, bare_jpeg_check: Callable) -> None:
    original = photo(name).read_bytes()

    @FUZZ
    @given(damages=st.lists(DAMAGE, min_size=1, max_size=3))
    def run(damages: list[tuple[str, int | float, bytes]]) -> None:
        scratch.write_bytes(damaged(original, damages))
        check_contract(scratch, bare_jpeg_check)

    run()
