"""Fixtures for the photo tests: where the real test photos are, and the "no metadata" check.

The photos live in tests/data/photos (see tests/data/SOURCES.md); set
STOPAPP_TESTDATA to point elsewhere.
"""

import io
import re
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from PIL import Image

from stopapp.media import imaging  # noqa: F401 - registers the HEIF opener for the tests too
from tests.conftest import TESTDATA

PHOTOS = TESTDATA / "photos"

# Every photo that must be accepted and processed.
ACCEPTED_PHOTOS = (
    "iphone6_gps.jpg",
    "iphone11promax_gps.heic",
    "galaxyS7_gps_app13.jpg",
    "nikon_d70s_gps_serial_iptc.jpg",
    "orientation_1.jpg",
    "orientation_3.jpg",
    "orientation_6.jpg",
    "orientation_8.jpg",
    "flower_exif_makernote.webp",
    "exif_chunk.png",
    "sony_exif_xmp_iptc.heic",
)

# Byte strings that betray metadata containers or the devices in the test photos.
FORBIDDEN_BYTES = (
    b"Exif",
    b"EXIF",
    b"http://ns.adobe.com/xap",
    b"<x:xmpmeta",
    b"xpacket",
    b"Photoshop 3.0",
    b"8BIM",
    b"ICC_PROFILE",
    b"MPF\x00",  # multi-picture (MPO) index
    b"Apple",
    b"iPhone",
    b"NIKON",
    b"Nikon",
    b"SAMSUNG",
    b"samsung",
    b"SM-G930F",
    b"Canon",
    b"SONY",
    b"Sony",
    b"ILCE",
)

# What a bare JPEG from Pillow may report in `info`: the JFIF header, nothing else.
ALLOWED_INFO_KEYS = {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi"}


def photo(name: str) -> Path:
    """Path of a test photo. Missing test data fails loudly: a skip would hide it."""
    path = PHOTOS / name
    assert path.exists(), f"test photo {name} not found under {PHOTOS} (set STOPAPP_TESTDATA)"
    return path


def gps_rational_bytes(path: Path) -> list[bytes]:
    """The GPS latitude/longitude rationals as they are encoded in the original's EXIF."""
    with Image.open(path) as im:
        raw = im.info.get("exif") or b""
        gps = im.getexif().get_ifd(0x8825)
    raw = raw.removeprefix(b"Exif\x00\x00")
    order = "<" if raw[:2] == b"II" else ">"
    found = []
    for tag in (2, 4):
        value = gps.get(tag)
        if value:
            found.append(
                b"".join(struct.pack(order + "LL", r.numerator, r.denominator) for r in value)
            )
    return found


def device_secrets(path: Path) -> list[bytes]:
    """Serial numbers and owner names the original carries (EXIF tags and XMP attributes)."""
    secrets: list[bytes] = []
    with Image.open(path) as im:
        exif = im.getexif()
        sub = exif.get_ifd(0x8769)
        # BodySerialNumber, LensSerialNumber, CameraOwnerName
        for tag in (0xA431, 0xA435, 0xA430):
            value = sub.get(tag)
            if isinstance(value, str) and len(value.strip("\x00 ")) >= 4:
                secrets.append(value.strip("\x00 ").encode())
        xmp = im.info.get("xmp") or b""
        if isinstance(xmp, str):
            xmp = xmp.encode()
        for match in re.finditer(rb'SerialNumber="([^"]{4,})"', xmp):
            secrets.append(match.group(1))
    return secrets


def assert_bare_jpeg(data: bytes, extra_forbidden: Iterable[bytes] = ()) -> Image.Image:
    """Fail unless `data` is a single-frame JPEG with no metadata at all; return it loaded."""
    assert data.startswith(b"\xff\xd8\xff")
    # 0xFF in entropy-coded data is always stuffed, so SOI/EOI can only be real markers:
    # exactly one image, nothing appended after it (as MPO files do).
    assert data.count(b"\xff\xd8") == 1
    assert data.endswith(b"\xff\xd9") and data.count(b"\xff\xd9") == 1
    for needle in (*FORBIDDEN_BYTES, *extra_forbidden):
        assert needle not in data, f"found {needle[:12]!r}... in the output"
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG"
        assert set(im.info) <= ALLOWED_INFO_KEYS, sorted(im.info)
        assert len(im.getexif()) == 0
        assert getattr(im, "n_frames", 1) == 1
        # Every APPn segment Pillow saw: only the JFIF header may be there.
        assert [(marker, body[:5]) for marker, body in im.applist] == [("APP0", b"JFIF\x00")]
        im.load()
        assert im.mode == "RGB"
        return im.copy()


@pytest.fixture(scope="session")
def bare_jpeg_check() -> Callable[..., Image.Image]:
    """The metadata check, as a fixture (session-scoped, so hypothesis tests can use it)."""
    return assert_bare_jpeg
