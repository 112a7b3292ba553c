"""Tests of stopapp.media.imaging on the real test photos and on files built here."""

import io
import math
import pickle
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image, ImageChops, ImageFile, ImageStat, PngImagePlugin
from PIL.TiffImagePlugin import IFDRational as R

from stopapp.media.imaging import (
    ACCEPTED_FORMATS,
    ImageInfo,
    ImageRejected,
    PixelBudget,
    ProcessedImage,
    extract_captured_at,
    extract_gps,
    process_image,
    sniff_format,
    validate_upload,
)

from .conftest import (
    ACCEPTED_PHOTOS,
    assert_bare_jpeg,
    device_secrets,
    gps_rational_bytes,
    photo,
)

EXPECTED_GPS = {
    "iphone6_gps.jpg": (40.446972, -3.724753),
    "iphone11promax_gps.heic": (39.051344, -94.288772),
    "galaxyS7_gps_app13.jpg": (51.025, 7.591944),
    "nikon_d70s_gps_serial_iptc.jpg": (43.785594, 11.234619),
}
EXPECTED_FORMAT = {".jpg": "jpeg", ".png": "png", ".webp": "webp", ".heic": "heif"}

_cache: dict[str, ProcessedImage] = {}


def processed(name: str) -> ProcessedImage:
    """process_image of a shared photo, computed once per test run (the HEIC takes ~0.4 s)."""
    if name not in _cache:
        _cache[name] = process_image(photo(name))
    return _cache[name]


# --------------------------------------------------------------------------------------------
# Files built in the tests


def png_bytes(width: int, height: int, idat: bytes, color_type: int = 0, depth: int = 8) -> bytes:
    """A PNG with the given header and raw (already compressed) IDAT payload."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def blank_png(width: int, height: int) -> bytes:
    """A valid greyscale PNG of any size, built row by row so it costs no pixel memory."""
    compressor = zlib.compressobj(1)
    row = b"\x00" * (width + 1)  # filter byte + one byte per pixel
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    return png_bytes(width, height, b"".join(parts))


def jpeg_header_claiming(width: int, height: int) -> bytes:
    """The start of a baseline JPEG whose SOF claims the given size, with almost no data."""
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes([1] * 64)
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    dht = b"\xff\xc4" + struct.pack(">H", 20) + b"\x00" + bytes([1] + [0] * 15) + b"\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + dqt + sof + dht + sos + b"\x00" * 64 + b"\xff\xd9"


def webp_vp8x_claiming(width: int, height: int) -> bytes:
    """A WebP extended header claiming the given canvas, with no image data."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def saved(tmp_path: Path, name: str, image: Image.Image, fmt: str, **params: object) -> Path:
    path = tmp_path / name
    image.save(path, fmt, **params)
    return path


def rejected(call: Callable[[], object]) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        call()
    return info.value


def display_of(result: ProcessedImage) -> Image.Image:
    return assert_bare_jpeg(result.display_jpeg)


# --------------------------------------------------------------------------------------------
# The real photos: accepted, and nothing of their metadata survives


@pytest.mark.parametrize("name", ACCEPTED_PHOTOS)
def test_validate_upload_accepts_real_photos(name: str) -> None:
    path = photo(name)
    info = validate_upload(path)
    assert info.format == EXPECTED_FORMAT[path.suffix]
    assert info.format in ACCEPTED_FORMATS
    with Image.open(path) as im:
        assert (info.width, info.height) == im.size


@pytest.mark.parametrize("name", ACCEPTED_PHOTOS)
def test_processed_copies_carry_no_metadata(name: str) -> None:
    path = photo(name)
    secrets = [*gps_rational_bytes(path), *device_secrets(path)]
    result = processed(name)
    display = assert_bare_jpeg(result.display_jpeg, secrets)
    thumb = assert_bare_jpeg(result.thumb_jpeg, secrets)
    assert display.size == result.display_size
    assert thumb.size == result.thumb_size
    assert max(display.size) <= 2048
    assert max(thumb.size) <= 320
    with Image.open(path) as original:
        long_side = max(original.size)
    # Never upscaled. A larger JPEG comes out between 1600 and 2048 px (its DCT-scaled size),
    # other formats at exactly the limit.
    if path.suffix == ".jpg" and long_side > 1600:
        assert 1600 <= max(display.size) <= 2048
    else:
        assert max(display.size) == min(long_side, 2048)
    assert max(thumb.size) == min(long_side, 320)


@pytest.mark.parametrize(
    ("size", "display"),
    [
        ((4000, 3000), (2000, 1500)),  # 1/2 scale: no resampling at all
        ((4001, 3001), (2001, 1501)),  # the scaled decode rounds up
        ((3000, 4000), (1500, 2000)),
        ((3264, 2448), (1632, 1224)),  # iPhone 6: 1/2 still reaches 1600
        ((8000, 6000), (2000, 1500)),  # 1/4
        ((3000, 2000), (2048, 1365)),  # 1/2 would be 1500: full decode, resampled to 2048
        ((1800, 1200), (1800, 1200)),  # between the two: kept as it is
        ((1200, 900), (1200, 900)),
    ],
)
def test_jpeg_display_size_follows_the_dct_scale(
    tmp_path: Path, size: tuple[int, int], display: tuple[int, int]
) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", size, (40, 90, 160)).save(path, "JPEG", quality=70)
    result = process_image(path)
    assert result.display_size == display
    assert display_of(result).size == display
    assert max(result.thumb_size) == 320


def test_large_jpeg_is_never_decoded_at_full_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (40, 90, 160)).save(path, "JPEG", quality=70)
    # After draft(), a JPEG's size is the size its decoder will produce.
    decoded: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def spy(im: ImageFile.ImageFile):  # noqa: ANN202 - whatever Pillow's load returns
        decoded.append(im.size)
        return load(im)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    process_image(path)
    assert decoded and max(max(size) for size in decoded) == 2000


def test_a_non_jpeg_is_fitted_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (4000, 3000), (40, 90, 160)).save(path, "PNG")
    assert process_image(path).display_size == (2048, 1536)


def test_secret_finders_do_find_the_secrets() -> None:
    # Guards the test above against passing because it looked for nothing.
    nikon = photo("nikon_d70s_gps_serial_iptc.jpg")
    assert len(gps_rational_bytes(nikon)) == 2
    assert device_secrets(nikon)
    assert device_secrets(photo("sony_exif_xmp_iptc.heic"))
    for secret in (*gps_rational_bytes(nikon), *device_secrets(nikon)):
        assert secret in nikon.read_bytes()


def test_result_has_no_device_fields() -> None:
    assert {f.name for f in fields(ProcessedImage)} == {
        "display_jpeg",
        "display_size",
        "thumb_jpeg",
        "thumb_size",
        "gps",
        "captured_at",
    }


# --------------------------------------------------------------------------------------------
# Orientation


def _grey_small(image: Image.Image) -> Image.Image:
    return image.convert("L").resize((120, 80), Image.Resampling.BOX)


def _mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return ImageStat.Stat(ImageChops.difference(a, b)).mean[0]


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(orientation: int) -> None:
    upright = processed("orientation_1.jpg")
    turned = processed(f"orientation_{orientation}.jpg")
    assert turned.display_size == upright.display_size
    assert turned.thumb_size == upright.thumb_size
    a, b = _grey_small(display_of(upright)), _grey_small(display_of(turned))
    assert _mean_abs_diff(a, b) < 10
    # ...and the check can tell: the unrotated picture is far from upright.
    assert _mean_abs_diff(a, _grey_small(display_of(upright)).rotate(180)) > 10


def test_orientation_with_reduced_decode(tmp_path: Path) -> None:
    # A small display limit makes the JPEG path use draft(): orientation must still apply.
    upright = process_image(photo("orientation_1.jpg"), display_max_px=400)
    turned = process_image(photo("orientation_6.jpg"), display_max_px=400)
    assert upright.display_size == turned.display_size == (400, 267)
    a, b = _grey_small(display_of(upright)), _grey_small(display_of(turned))
    assert _mean_abs_diff(a, b) < 10


def test_iphone_heic_comes_out_upright() -> None:
    result = processed("iphone11promax_gps.heic")
    # Stored portrait (2566x3313) with irot 0 and no EXIF orientation: stays portrait.
    assert result.display_size == (1586, 2048)
    assert result.thumb_size == (248, 320)


@pytest.mark.skipif(not pillow_heif.libheif_info().get("HEIF"), reason="no HEVC encoder")
def test_heif_rotation_is_applied_once(tmp_path: Path) -> None:
    # pillow-heif turns EXIF orientation 6 into an 'irot' box when saving; on reading, libheif
    # rotates and the EXIF tag is still there in the file: applying it too would turn twice.
    stored = Image.new("RGB", (64, 32), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 32, 32))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6
    path = saved(tmp_path, "rotated.heic", stored, "HEIF", exif=exif.tobytes(), quality=95)
    assert b"irot" in path.read_bytes()
    result = process_image(path)
    assert result.display_size == (32, 64)  # portrait: turned exactly once
    display = display_of(result)
    top, bottom = display.getpixel((16, 8)), display.getpixel((16, 56))
    assert top[0] > 200 and top[2] < 60  # orientation 6: the stored left edge becomes the top
    assert bottom[2] > 200 and bottom[0] < 60


# --------------------------------------------------------------------------------------------
# Evidence from EXIF


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED_GPS.items()))
def test_gps_of_geotagged_photos(name: str, expected: tuple[float, float]) -> None:
    gps = processed(name).gps
    assert gps is not None
    assert gps[0] == pytest.approx(expected[0], abs=1e-4)
    assert gps[1] == pytest.approx(expected[1], abs=1e-4)


@pytest.mark.parametrize(
    "name",
    [
        "orientation_1.jpg",
        "flower_exif_makernote.webp",
        "exif_chunk.png",
        "sony_exif_xmp_iptc.heic",
    ],
)
def test_no_gps_without_gps(name: str) -> None:
    assert processed(name).gps is None


def test_captured_at_of_real_photos() -> None:
    minus5 = timezone(timedelta(hours=-5))
    assert processed("iphone11promax_gps.heic").captured_at == datetime(
        2021, 4, 11, 15, 47, 53, tzinfo=minus5
    )
    # No offset tags: naive local time.
    iphone6 = processed("iphone6_gps.jpg").captured_at
    assert iphone6 == datetime(2015, 4, 10, 20, 12, 23) and iphone6.tzinfo is None
    # Only the main DateTime tag.
    assert processed("galaxyS7_gps_app13.jpg").captured_at == datetime(2016, 9, 12, 10, 5, 31)
    assert processed("exif_chunk.png").captured_at is None


def gps_exif(entries: dict[int, object]) -> Image.Exif:
    exif = Image.Exif()
    exif.get_ifd(0x8825).update(entries)
    return exif


MADRID = {
    1: "N",
    2: (R(40, 1), R(26, 1), R(4910, 100)),
    3: "W",
    4: (R(3, 1), R(43, 1), R(2911, 100)),
}


def test_extract_gps_valid() -> None:
    lat, lon = extract_gps(gps_exif(MADRID))
    assert (lat, lon) == (pytest.approx(40.446972, abs=1e-5), pytest.approx(-3.724753, abs=1e-5))
    southern = extract_gps(gps_exif({**MADRID, 1: "S", 3: "E"}))
    assert southern == (pytest.approx(-40.446972, abs=1e-5), pytest.approx(3.724753, abs=1e-5))
    # Refs as bytes with a NUL, as some writers leave them.
    assert extract_gps(gps_exif({**MADRID, 1: b"N\x00", 3: b"W\x00"})) == (lat, lon)
    assert extract_gps(gps_exif({**MADRID, 9: "A"})) == (lat, lon)


ZERO = (R(0, 1), R(0, 1), R(0, 1))


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param({}, id="no-gps"),
        pytest.param({**MADRID, 2: ZERO, 4: ZERO}, id="zero-zero"),
        pytest.param({k: v for k, v in MADRID.items() if k != 1}, id="missing-lat-ref"),
        pytest.param({k: v for k, v in MADRID.items() if k != 3}, id="missing-lon-ref"),
        pytest.param({**MADRID, 1: "X"}, id="bad-lat-ref"),
        pytest.param({**MADRID, 3: "N"}, id="lat-ref-on-lon"),
        pytest.param({**MADRID, 1: ""}, id="empty-ref"),
        pytest.param({**MADRID, 1: 7}, id="numeric-ref"),
        pytest.param({k: v for k, v in MADRID.items() if k != 2}, id="missing-lat"),
        pytest.param({**MADRID, 2: (R(91, 1), R(0, 1), R(0, 1))}, id="lat-over-90"),
        pytest.param({**MADRID, 4: (R(180, 1), R(0, 1), R(1, 1))}, id="lon-over-180"),
        pytest.param({**MADRID, 2: (R(40, 0), R(26, 1), R(49, 1))}, id="zero-denominator"),
        pytest.param({**MADRID, 4: (R(3, 1), R(43, 1), R(0, 0))}, id="zero-over-zero"),
        pytest.param({**MADRID, 2: (math.nan, 26.0, 49.1)}, id="nan"),
        pytest.param({**MADRID, 4: (math.inf, 0.0, 0.0)}, id="inf"),
        pytest.param({**MADRID, 2: (-40.0, 26.0, 49.1)}, id="negative-component"),
        pytest.param({**MADRID, 2: (R(40, 1), R(75, 1), R(0, 1))}, id="minutes-over-60"),
        pytest.param({**MADRID, 2: (R(40, 1), R(26, 1))}, id="two-components"),
        pytest.param({**MADRID, 2: "40.44"}, id="string-value"),
        pytest.param({**MADRID, 9: "V"}, id="fix-void"),
    ],
)
def test_extract_gps_rejects(entries: dict[int, object]) -> None:
    assert extract_gps(gps_exif(entries)) is None


def _jpeg_with_exif(tmp_path: Path, exif: Image.Exif, **params: object) -> Path:
    return saved(
        tmp_path, "tagged.jpg", Image.new("RGB", (64, 48), "gray"), "JPEG", exif=exif, **params
    )


def test_gps_survives_a_real_exif_round_trip(tmp_path: Path) -> None:
    exif = gps_exif(MADRID)
    exif[0x010F] = "SecretMaker"
    exif[0x0110] = "SecretModel"
    exif.get_ifd(0x8769)[0xA431] = "SERIAL-12345"
    path = _jpeg_with_exif(tmp_path, exif, comment=b"meet at the pier", icc_profile=b"\0" * 200)
    result = process_image(path)
    assert result.gps == (pytest.approx(40.446972, abs=1e-5), pytest.approx(-3.724753, abs=1e-5))
    extra = [b"SecretMaker", b"SecretModel", b"SERIAL-12345", b"meet at the pier"]
    extra += gps_rational_bytes(path)
    assert_bare_jpeg(result.display_jpeg, extra)
    assert_bare_jpeg(result.thumb_jpeg, extra)


def test_zero_denominator_from_a_real_file_gives_no_gps(tmp_path: Path) -> None:
    path = _jpeg_with_exif(tmp_path, gps_exif({**MADRID, 2: (R(40, 0), R(26, 1), R(49, 1))}))
    assert process_image(path).gps is None


def datetime_exif(
    original: object = None, offset_original: object = None, **more: object
) -> Image.Exif:
    exif = Image.Exif()
    sub = exif.get_ifd(0x8769)
    if original is not None:
        sub[0x9003] = original
    if offset_original is not None:
        sub[0x9011] = offset_original
    if "digitized" in more:
        sub[0x9004] = more["digitized"]
    if "offset" in more:
        sub[0x9010] = more["offset"]
    if "main" in more:
        exif[0x0132] = more["main"]
    return exif


def test_extract_captured_at() -> None:
    plus530 = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2024, 2, 29, 23, 59, 58)
    assert extract_captured_at(datetime_exif("2024:02:29 23:59:58")) == moment
    assert extract_captured_at(datetime_exif("2024:02:29 23:59:58", "+05:30")) == moment.replace(
        tzinfo=plus530
    )
    # OffsetTime stands in for a missing OffsetTimeOriginal.
    with_offset = extract_captured_at(datetime_exif("2024:02:29 23:59:58", offset="+05:30"))
    assert with_offset == moment.replace(tzinfo=plus530)
    assert extract_captured_at(datetime_exif(digitized="2024:02:29 23:59:58")) == moment
    assert extract_captured_at(datetime_exif(main="2024:02:29 23:59:58\x00")) == moment


@pytest.mark.parametrize(
    "exif",
    [
        pytest.param(Image.Exif(), id="none"),
        pytest.param(datetime_exif("0000:00:00 00:00:00"), id="zeros"),
        pytest.param(datetime_exif("    :  :     :  :  "), id="blank"),
        pytest.param(datetime_exif("2023:02:30 10:00:00"), id="impossible-date"),
        pytest.param(datetime_exif("yesterday"), id="text"),
        pytest.param(datetime_exif(12345), id="number"),
        pytest.param(datetime_exif(b"\xff\xfe"), id="binary"),
    ],
)
def test_extract_captured_at_rejects(exif: Image.Exif) -> None:
    assert extract_captured_at(exif) is None


@pytest.mark.parametrize("offset", ["+25:00", "05:00", "+05:75", "Z", ""])
def test_bad_offset_leaves_time_naive(offset: str) -> None:
    value = extract_captured_at(datetime_exif("2020:01:01 12:00:00", offset))
    assert value == datetime(2020, 1, 1, 12, 0, 0) and value.tzinfo is None


# --------------------------------------------------------------------------------------------
# Formats, modes and frames


def test_sniff_format() -> None:
    assert sniff_format(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "jpeg"
    assert sniff_format(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR") == "png"
    assert sniff_format(b"RIFF\x24\x00\x00\x00WEBPVP8 ") == "webp"
    for brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"):
        assert sniff_format(b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00mif1") == "heif"
    # AVIF is the same container with AV1 inside: not accepted, however it labels itself.
    assert sniff_format(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf") is None
    assert sniff_format(b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf") is None
    assert sniff_format(b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1heicavif") == "heif"
    assert sniff_format(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00isom") is None  # a video
    assert sniff_format(b"GIF89a\x01\x00\x01\x00") is None
    assert sniff_format(b"RIFF\x24\x00\x00\x00WAVEfmt ") is None
    assert sniff_format(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None
    assert sniff_format(b"") is None
    assert sniff_format(b"\xff\xd8") is None
    assert sniff_format(bytearray(b"\xff\xd8\xff\xdb")) == "jpeg"


def test_format_comes_from_content_not_name(tmp_path: Path) -> None:
    jpeg_named_png = write(tmp_path, "photo.png", photo("orientation_1.jpg").read_bytes())
    assert validate_upload(jpeg_named_png) == ImageInfo("jpeg", 1800, 1200)


def _solid(mode: str, color: object, size: tuple[int, int] = (40, 30)) -> Image.Image:
    return Image.new(mode, size, color)


def _centre(result: ProcessedImage) -> tuple[int, int, int]:
    display = display_of(result)
    return display.getpixel((display.width // 2, display.height // 2))


def _close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 6) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def test_alpha_is_flattened_onto_white(tmp_path: Path) -> None:
    clear = saved(tmp_path, "clear.png", _solid("RGBA", (255, 0, 0, 0)), "PNG")
    assert _close(_centre(process_image(clear)), (255, 255, 255))
    half = saved(tmp_path, "half.png", _solid("RGBA", (255, 0, 0, 128)), "PNG")
    assert _close(_centre(process_image(half)), (255, 127, 127))
    grey_alpha = saved(tmp_path, "la.png", _solid("LA", (0, 0)), "PNG")
    assert _close(_centre(process_image(grey_alpha)), (255, 255, 255))
    webp = saved(tmp_path, "clear.webp", _solid("RGBA", (0, 0, 255, 0)), "WEBP", lossless=True)
    assert _close(_centre(process_image(webp)), (255, 255, 255))


def test_palette_with_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (40, 30), 1)
    image.putpalette([0, 255, 0, 255, 0, 0] + [0] * 762)
    path = saved(tmp_path, "p.png", image, "PNG", transparency=1)
    assert _close(_centre(process_image(path)), (255, 255, 255))
    opaque = saved(tmp_path, "p-opaque.png", image, "PNG")
    assert _close(_centre(process_image(opaque)), (255, 0, 0))


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = saved(tmp_path, "grey16.png", _solid("I;16", 128 * 257), "PNG")
    with Image.open(path) as check:
        assert check.mode.startswith("I")
    assert _close(_centre(process_image(path)), (128, 128, 128))


@pytest.mark.parametrize(
    ("mode", "color", "fmt", "expected"),
    [
        ("CMYK", (0, 255, 255, 0), "JPEG", (255, 0, 0)),
        ("L", 100, "JPEG", (100, 100, 100)),
        ("1", 1, "PNG", (255, 255, 255)),
        ("L", 50, "WEBP", (50, 50, 50)),
    ],
)
def test_other_modes_become_rgb(
    tmp_path: Path, mode: str, color: object, fmt: str, expected: tuple[int, int, int]
) -> None:
    path = saved(tmp_path, f"image.{fmt.lower()}", _solid(mode, color), fmt)
    result = process_image(path)
    assert _close(_centre(result), expected, tolerance=8)
    assert_bare_jpeg(result.thumb_jpeg)


def test_only_the_first_frame_of_mpo(tmp_path: Path) -> None:
    left, right = _solid("RGB", (255, 0, 0)), _solid("RGB", (0, 0, 255))
    path = saved(tmp_path, "stereo.jpg", left, "MPO", save_all=True, append_images=[right])
    with Image.open(path) as check:
        assert check.format == "MPO" and check.n_frames == 2
    result = process_image(path)
    assert _close(_centre(result), (255, 0, 0), tolerance=8)  # assert_bare_jpeg: one image


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_only_the_first_frame_of_animations(tmp_path: Path, fmt: str) -> None:
    first, second = _solid("RGB", (255, 0, 0)), _solid("RGB", (0, 0, 255))
    path = saved(
        tmp_path,
        f"anim.{fmt.lower()}",
        first,
        fmt,
        save_all=True,
        append_images=[second],
        duration=100,
        lossless=True,
    )
    with Image.open(path) as check:
        assert check.n_frames == 2
    assert _close(_centre(process_image(path)), (255, 0, 0), tolerance=8)


def test_png_text_and_icc_do_not_survive(tmp_path: Path) -> None:
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "GPS 51.5007 -0.1246 safehouse")
    text.add_text("Author", "Jane Reporter", zip=True)
    text.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta xmlns:x="adobe:ns:meta/">where</x:xmpmeta>')
    path = saved(
        tmp_path,
        "text.png",
        _solid("RGB", (0, 128, 0)),
        "PNG",
        pnginfo=text,
        icc_profile=b"\0\0\x02\x0cSECRETICCPROFILE" + b"\0" * 500,
    )
    result = process_image(path)
    extra = [b"51.5007", b"safehouse", b"Jane Reporter", b"SECRETICC", b"where"]
    assert_bare_jpeg(result.display_jpeg, extra)
    assert_bare_jpeg(result.thumb_jpeg, extra)


def test_small_images_are_not_upscaled(tmp_path: Path) -> None:
    path = saved(tmp_path, "tiny.png", _solid("RGB", (10, 20, 30), (7, 3)), "PNG")
    result = process_image(path)
    assert result.display_size == (7, 3) and result.thumb_size == (7, 3)


def test_custom_limits_and_rounding() -> None:
    result = process_image(photo("exif_chunk.png"), display_max_px=100, thumb_max_px=33)
    assert result.display_size == (100, 100) and result.thumb_size == (33, 33)
    with pytest.raises(ValueError):
        process_image(photo("exif_chunk.png"), display_max_px=0)


# --------------------------------------------------------------------------------------------
# Hostile and broken uploads


def test_gif_bomb_is_an_unsupported_type() -> None:
    error = rejected(lambda: validate_upload(photo("bomb_4gpx.gif")))
    assert (error.code, error.status) == ("unsupported_type", 415)
    assert rejected(lambda: process_image(photo("bomb_4gpx.gif"))).code == "unsupported_type"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bomb.png", png_bytes(65535, 65535, zlib.compress(b"\x00" * 1000))),
        ("bomb.jpg", jpeg_header_claiming(65500, 65500)),
        ("bomb.webp", webp_vp8x_claiming(16384, 16384)),
        ("wide.webp", webp_vp8x_claiming(9000, 9000)),  # under Pillow's own limit, over ours
    ],
)
def test_bombs_are_refused_from_the_header(tmp_path: Path, name: str, data: bytes) -> None:
    path = write(tmp_path, name, data)
    for call in (validate_upload, process_image):
        started = time.perf_counter()
        error = rejected(lambda call=call: call(path))
        assert time.perf_counter() - started < 1.0
        assert error.code in ("too_many_pixels", "decompression_bomb")
        assert error.status == 422


def test_sixty_one_megapixels_is_too_many(tmp_path: Path) -> None:
    path = write(tmp_path, "big.png", blank_png(8000, 7700))
    assert path.stat().st_size < 1_000_000
    started = time.perf_counter()
    error = rejected(lambda: validate_upload(path))
    assert (error.code, error.status) == ("too_many_pixels", 422)
    assert rejected(lambda: process_image(path)).code == "too_many_pixels"
    assert time.perf_counter() - started < 1.0
    # The limit is the caller's to set.
    assert validate_upload(path, max_pixels=62_000_000) == ImageInfo("png", 8000, 7700)


def test_max_pixels_parameter() -> None:
    error = rejected(lambda: validate_upload(photo("orientation_1.jpg"), max_pixels=1_000_000))
    assert error.code == "too_many_pixels"


def test_own_limit_holds_when_pillow_limit_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    path = write(tmp_path, "bomb.png", png_bytes(65535, 65535, zlib.compress(b"\x00" * 1000)))
    assert rejected(lambda: validate_upload(path)).code == "too_many_pixels"


@pytest.mark.parametrize("side", [40, 64])  # Pillow warns above its limit, fails above twice it
def test_pillow_bomb_warning_and_error_become_rejections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = saved(tmp_path, "small.png", _solid("RGB", (1, 2, 3), (side, side)), "PNG")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # whatever the process did to warnings, we still refuse
        error = rejected(lambda: validate_upload(path))
    assert error.code == "decompression_bomb"


def test_truncated_jpeg() -> None:
    error = rejected(lambda: validate_upload(photo("truncated.jpg")))
    assert (error.code, error.status) == ("truncated", 422)
    assert rejected(lambda: process_image(photo("truncated.jpg"))).code == "truncated"


def test_truncation_is_caught_even_if_someone_allows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    assert rejected(lambda: validate_upload(photo("truncated.jpg"))).code == "truncated"
    assert rejected(lambda: process_image(photo("truncated.jpg"))).code == "truncated"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for whoever set it


@pytest.mark.parametrize(
    ("name", "keep"),
    [
        ("iphone6_gps.jpg", 0.6),
        ("exif_chunk.png", 0.6),
        ("flower_exif_makernote.webp", 0.6),
        ("flower_exif_makernote.webp", 0.999),
        # libheif silently paints missing HEIC grid tiles green; the container check must not.
        ("iphone11promax_gps.heic", 0.6),
        ("iphone11promax_gps.heic", 0.9999),
        ("sony_exif_xmp_iptc.heic", 0.9),
    ],
)
def test_truncated_files(tmp_path: Path, name: str, keep: float) -> None:
    data = photo(name).read_bytes()
    path = write(tmp_path, "cut" + Path(name).suffix, data[: int(len(data) * keep)])
    for call in (validate_upload, process_image):
        error = rejected(lambda call=call: call(path))
        assert (error.code, error.status) == ("truncated", 422)


def test_heic_cut_right_after_its_header_boxes(tmp_path: Path) -> None:
    data = photo("iphone11promax_gps.heic").read_bytes()
    mdat = data.index(b"mdat") - 4
    for end in (mdat, mdat + 8, mdat + 12):
        path = write(tmp_path, "cut.heic", data[:end])
        assert rejected(lambda path=path: validate_upload(path)).code == "truncated"


def test_empty_file() -> None:
    error = rejected(lambda: validate_upload(photo("empty.heic")))
    assert (error.code, error.status) == ("empty", 422)
    assert rejected(lambda: process_image(photo("empty.heic"))).code == "empty"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("notes.jpg", b"Meet me at the station at 9pm.\n"),
        ("page.png", b"<html><body>hello</body></html>"),
        ("script.heic", b"#!/bin/sh\nrm -rf /\n"),
        ("image.gif", b"GIF89a" + b"\x00" * 64),
        ("image.bmp", b"BM" + b"\x00" * 64),
        ("image.tiff", b"II*\x00\x08\x00\x00\x00" + b"\x00" * 64),
        ("image.avif", b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 64),
    ],
)
def test_other_content_is_an_unsupported_type(tmp_path: Path, name: str, data: bytes) -> None:
    path = write(tmp_path, name, data)
    error = rejected(lambda: validate_upload(path))
    assert (error.code, error.status) == ("unsupported_type", 415)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("magic-only.jpg", b"\xff\xd8\xff" + b"\x00" * 200),
        ("magic-only.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200),
        ("magic-only.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8),
        ("magic-only.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"),
        ("bad-crc.png", png_bytes(10, 10, b"garbage").replace(b"IEND\xae", b"IEND\xaf")),
    ],
)
def test_broken_content_is_undecodable(tmp_path: Path, name: str, data: bytes) -> None:
    path = write(tmp_path, name, data)
    for call in (validate_upload, process_image):
        error = rejected(lambda call=call: call(path))
        assert error.code in ("undecodable", "truncated")
        assert error.status == 422


def test_rejection_detail_never_quotes_the_file(tmp_path: Path) -> None:
    # Pillow's own messages can contain bytes of the file; ours must not.
    path = write(tmp_path, "x.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dSECRETCHUNK" + b"\x00" * 40)
    error = rejected(lambda: validate_upload(path))
    assert "SECRET" not in str(error) and "SECRET" not in error.detail


def test_image_rejected_codes() -> None:
    assert ImageRejected("unsupported_type", "x").status == 415
    for code in ("too_many_pixels", "decompression_bomb", "undecodable", "truncated", "empty"):
        error = ImageRejected(code, "detail")
        assert (error.code, error.status, error.detail) == (code, 422, "detail")
    with pytest.raises(ValueError):
        ImageRejected("nope", "x")
    copy = pickle.loads(pickle.dumps(ImageRejected("truncated", "cut short")))
    assert (copy.code, copy.status, copy.detail) == ("truncated", 422, "cut short")


def test_accepted_formats() -> None:
    assert ACCEPTED_FORMATS == {"jpeg", "png", "webp", "heif"}


def test_validate_does_not_leak_file_handles(tmp_path: Path) -> None:
    # With warnings as errors, an unclosed file would surface as a ResourceWarning failure;
    # this runs both the success and the failure paths many times to make that likely.
    good, bad = photo("exif_chunk.png"), write(tmp_path, "bad.png", png_bytes(10, 10, b"x"))
    for _ in range(20):
        validate_upload(good)
        rejected(lambda: validate_upload(bad))


def test_hostile_heif_item_table_is_cheap(tmp_path: Path) -> None:
    # An 'iloc' listing 65535 items of 65535 zero-width extents each: billions of entries if
    # walked one by one. It must be refused quickly.
    items = struct.pack(">HHHH", 1, 0, 0, 0xFFFF) * 0xFFFF  # id, method, data ref, count
    iloc_body = b"\x01\x00\x00\x00" + b"\x00\x00" + struct.pack(">H", 0xFFFF) + items
    iloc = struct.pack(">I", 8 + len(iloc_body)) + b"iloc" + iloc_body
    meta_body = b"\x00\x00\x00\x00" + iloc
    meta = struct.pack(">I", 8 + len(meta_body)) + b"meta" + meta_body
    ftyp = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    path = write(tmp_path, "items.heic", ftyp + meta)
    started = time.perf_counter()
    assert rejected(lambda: validate_upload(path)).code == "undecodable"
    assert time.perf_counter() - started < 1.0


def test_encoder_output_guard() -> None:
    # The last line of defence in imaging: any metadata segment in an encoded copy is a bug.
    from stopapp.media.imaging import _assert_bare_jpeg

    plain, tagged = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, "JPEG")
    _assert_bare_jpeg(plain.getvalue())
    exif = Image.Exif()
    exif[0x010F] = "Maker"
    Image.new("RGB", (8, 8)).save(tagged, "JPEG", exif=exif)
    with pytest.raises(RuntimeError):
        _assert_bare_jpeg(tagged.getvalue())
    commented = io.BytesIO()
    Image.new("RGB", (8, 8)).save(commented, "JPEG", comment=b"hello")
    with pytest.raises(RuntimeError):
        _assert_bare_jpeg(commented.getvalue())


# --------------------------------------------------------------------------------------------
# Bounded decoding at upload


def test_upload_decode_waits_for_its_share_of_the_pixel_budget(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (400, 300), (10, 20, 30)).save(path, "PNG")
    budget = PixelBudget(200_000)
    finished = threading.Event()
    results: list[ImageInfo] = []

    def check() -> None:
        results.append(validate_upload(path, budget=budget))
        finished.set()

    with budget.reserved(100_000):  # 120,000 more would not fit
        worker = threading.Thread(target=check)
        worker.start()
        assert not finished.wait(0.5)
    assert finished.wait(10)
    worker.join()
    assert results[0].width == 400


def test_a_decode_larger_than_the_budget_runs_alone() -> None:
    budget = PixelBudget(100)
    with budget.reserved(1_000):  # capped at the whole budget: never waits for itself
        pass
    entered = threading.Event()

    def small() -> None:
        with budget.reserved(1):
            entered.set()

    with budget.reserved(1_000):
        waiter = threading.Thread(target=small)
        waiter.start()
        assert not entered.wait(0.3)
    assert entered.wait(5)
    waiter.join()


def test_a_rejected_upload_gives_its_pixels_back(tmp_path: Path) -> None:
    budget = PixelBudget(10_000_000)
    with pytest.raises(ImageRejected):
        validate_upload(photo("truncated.jpg"), budget=budget)
    whole = threading.Event()

    def take_all() -> None:
        with budget.reserved(10_000_000):  # waits forever if the failed decode kept its share
            whole.set()

    threading.Thread(target=take_all, daemon=True).start()
    assert whole.wait(5)
