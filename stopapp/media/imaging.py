"""Pure image functions: validate an upload, then rebuild it as metadata-free JPEG copies.

Reporter safety depends on this module: a stored photo must carry nothing but pixels. The
originals are never re-saved; their pixels are copied into a fresh `Image` that has no `info`,
and that image is encoded with no EXIF, XMP, ICC profile or comment. Every encoded JPEG is then
checked marker by marker before it is returned.

Everything here works on local files and raises only `ImageRejected` for bad input, so the
upload handler and the background job can map the result to an HTTP status or a stored reason.
"""

import io
import math
import os
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO

from PIL import Image, ImageFile
from PIL.TiffImagePlugin import IFDRational
from pillow_heif import register_heif_opener

# Registered once at import; Pillow keeps the plugin for the life of the process.
register_heif_opener()

ACCEPTED_FORMATS = frozenset({"jpeg", "png", "webp", "heif"})

# Pillow format ids to open each sniffed format with, and the ids it may report back.
_OPEN_AS: dict[str, list[str]] = {
    "jpeg": ["JPEG"],  # Pillow's JPEG opener itself returns an MpoImageFile for MPO files
    "png": ["PNG"],
    "webp": ["WEBP"],
    "heif": ["HEIF"],
}
_OPENED_AS: dict[str, frozenset[str]] = {
    "jpeg": frozenset({"JPEG", "MPO"}),
    "png": frozenset({"PNG"}),
    "webp": frozenset({"WEBP"}),
    "heif": frozenset({"HEIF"}),
}

# Enough for every signature we read, including a long HEIF 'ftyp' brand list.
_HEAD_BYTES = 256

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# HEVC-coded HEIF brands, plus the two generic HEIF brands (checked further in _is_heif).
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
_GENERIC_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

_STATUS_BY_CODE = {
    "unsupported_type": 415,
    "too_many_pixels": 422,
    "decompression_bomb": 422,
    "undecodable": 422,
    "truncated": 422,
    "empty": 422,
}

# The display copy's long side: at most DISPLAY_MAX_PX; a JPEG larger than DISPLAY_MIN_PX
# comes out between the two, at the size its decoder reaches by DCT scaling (see process_image).
DISPLAY_MAX_PX = 2048
DISPLAY_MIN_PX = 1600
THUMB_MAX_PX = 320
DISPLAY_QUALITY = 85
THUMB_QUALITY = 80
_WHITE = (255, 255, 255)

# EXIF tags used here (numbers from the EXIF 2.32 specification).
_TAG_ORIENTATION = 0x0112
_TAG_DATETIME = 0x0132
_IFD_EXIF = 0x8769
_IFD_GPS = 0x8825
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_DATETIME_DIGITIZED = 0x9004
_TAG_OFFSET_TIME = 0x9010
_TAG_OFFSET_TIME_ORIGINAL = 0x9011
_TAG_OFFSET_TIME_DIGITIZED = 0x9012
_GPS_LATITUDE_REF = 1
_GPS_LATITUDE = 2
_GPS_LONGITUDE_REF = 3
_GPS_LONGITUDE = 4
_GPS_STATUS = 9

# EXIF orientation -> the transpose that makes the picture upright (same table as ImageOps).
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_RESAMPLE = Image.Resampling.LANCZOS


class ImageRejected(Exception):
    """An upload that is not an acceptable photo.

    `code` is a stable machine-readable reason, `status` the HTTP status to answer with (415 for
    a type we do not accept, 422 otherwise). `detail` is our own wording: it never quotes the
    decoder's message, which can contain bytes of the file.
    """

    def __init__(self, code: str, detail: str) -> None:
        """Raises ValueError for a code outside the documented set (a programming error)."""
        if code not in _STATUS_BY_CODE:
            raise ValueError(f"unknown rejection code {code!r}")
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = _STATUS_BY_CODE[code]

    def __reduce__(self) -> tuple[type["ImageRejected"], tuple[str, str]]:
        # Exception's default pickling replays only the message; job queues pickle errors.
        return (type(self), (self.code, self.detail))


@dataclass(frozen=True)
class ImageInfo:
    """What validation learnt from an upload: our format name and the header's pixel size."""

    format: str
    width: int
    height: int


@dataclass(frozen=True)
class ProcessedImage:
    """Metadata-free JPEG copies of a photo, plus the evidence read from its EXIF beforehand.

    `gps` is (latitude, longitude) in degrees, or None when absent or not trustworthy.
    `captured_at` is timezone-aware when the EXIF gives the offset, naive local time otherwise.
    """

    display_jpeg: bytes
    display_size: tuple[int, int]
    thumb_jpeg: bytes
    thumb_size: tuple[int, int]
    gps: tuple[float, float] | None
    captured_at: datetime | None


# --------------------------------------------------------------------------------------------
# Format sniffing


def sniff_format(head: bytes) -> str | None:
    """Return "jpeg", "png", "webp" or "heif" from the magic bytes at the start of a file.

    Only the content decides, never a file name or a client's Content-Type. AVIF (AV1 in the
    same container as HEIF) is not accepted. Returns None for anything else; never raises.
    """
    head = bytes(head[:_HEAD_BYTES])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(_PNG_SIGNATURE):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if _is_heif(head):
        return "heif"
    return None


def _is_heif(head: bytes) -> bool:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return False
    major = head[8:12]
    if major in _HEIC_BRANDS:
        return True
    if major not in _GENERIC_HEIF_BRANDS:
        return False
    # 'mif1' only says "some HEIF": AVIF files use it too, so look at the compatible brands
    # (after the 4-byte minor version) and refuse AV1 content unless HEVC is also declared.
    box_size = int.from_bytes(head[:4], "big")
    end = min(box_size, len(head)) if box_size >= 16 else len(head)
    brands = {head[i : i + 4] for i in range(16, end - 3, 4)}
    return not (brands & _AVIF_BRANDS) or bool(brands & _HEIC_BRANDS)


def _webp_canvas_size(head: bytes) -> tuple[int, int] | None:
    """Canvas size from a WebP header, or None if the header is too damaged to tell.

    Pillow's WebP plugin builds libwebp's animation decoder when it opens a file, and that
    allocates two full canvases up front; reading the size ourselves lets the pixel limit act
    before any of that memory is taken.
    """
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        return (
            1 + int.from_bytes(head[24:27], "little"),
            1 + int.from_bytes(head[27:30], "little"),
        )
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        return (
            int.from_bytes(head[26:28], "little") & 0x3FFF,
            int.from_bytes(head[28:30], "little") & 0x3FFF,
        )
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


# --------------------------------------------------------------------------------------------
# Opening and decoding under our own limits

_TRUNCATION_LOCK = threading.Lock()


@contextmanager
def _truncated_images_refused() -> Iterator[None]:
    """Make sure Pillow raises on a truncated file while we decode.

    `ImageFile.LOAD_TRUNCATED_IMAGES` is process-wide. It is False unless some code sets it; in
    that normal case we change nothing, so concurrent decodes in other threads stay parallel.
    If someone did set it, we switch it off for our decode under a lock and restore it.
    """
    if not ImageFile.LOAD_TRUNCATED_IMAGES:
        yield
        return
    with _TRUNCATION_LOCK:
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


@contextmanager
def _pillow_warnings_contained() -> Iterator[None]:
    """Turn Pillow's decompression-bomb warning into an error; silence its other warnings.

    Pillow warns (rather than fails) on many harmless oddities of real phone files, such as
    slightly corrupt EXIF; those must not reject a photo, nor become errors when warnings are
    errors. The bomb warning, though, must stop the upload. The filters are set locally so we
    do not depend on how the rest of the process configured warnings.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _rejection_for(exc: BaseException) -> ImageRejected:
    """Map whatever a decoder raised to our codes, without quoting its message."""
    if isinstance(exc, ImageRejected):
        return exc
    kind = type(exc).__name__
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return ImageRejected("decompression_bomb", "the image claims too many pixels")
    if isinstance(exc, EOFError):
        return ImageRejected("truncated", "the file ends before the image data does")
    if isinstance(exc, OSError):
        message = str(exc).lower()
        if "truncated" in message or "end of file" in message or "premature" in message:
            return ImageRejected("truncated", "the file ends before the image data does")
    return ImageRejected("undecodable", f"the image data cannot be decoded ({kind})")


@contextmanager
def _opened(
    path: str | os.PathLike[str], max_pixels: int
) -> Iterator[tuple[ImageFile.ImageFile, str]]:
    """Open `path` as the format its bytes claim and check its size before any pixel decode.

    Yields (Pillow image, our format name). Any failure inside the block, including while the
    caller decodes, is turned into ImageRejected. Raises ImageRejected; OSError only if `path`
    itself cannot be opened for reading.
    """
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
        if not head:
            raise ImageRejected("empty", "the file is empty")
        fmt = sniff_format(head)
        if fmt is None:
            raise ImageRejected("unsupported_type", "only JPEG, PNG, WebP and HEIC are accepted")
        if fmt == "webp":
            canvas = _webp_canvas_size(head)
            if canvas is not None:
                _check_pixels(*canvas, max_pixels)
        _check_container_length(fh, fmt, head)
        fh.seek(0)
        try:
            with _pillow_warnings_contained(), _truncated_images_refused():
                with Image.open(fh, formats=_OPEN_AS[fmt]) as im:
                    try:
                        if im.format not in _OPENED_AS[fmt]:
                            raise ImageRejected(
                                "undecodable", "the content does not match its type"
                            )
                        _check_pixels(im.width, im.height, max_pixels)
                        yield im, fmt
                    finally:
                        # Leaving `with` only closes the file; close() also frees the pixels.
                        im.close()
        except ImageRejected:
            raise
        except Exception as exc:  # any decoder failure on hostile bytes is a rejection, not a 500
            raise _rejection_for(exc) from exc


# Real HEIC files have a handful of top-level boxes and a meta box of some kilobytes; these
# bound the work spent on hostile ones.
_MAX_TOP_LEVEL_BOXES = 1024
_MAX_META_BYTES = 1024 * 1024


def _check_container_length(fh: BinaryIO, fmt: str, head: bytes) -> None:
    """Reject a WebP or HEIF file shorter than its own container says it is.

    libwebp merely fails on such files, but libheif (as pillow-heif calls it) decodes a HEIC
    grid whose tiles are missing without complaint and fills the gaps with green, so a cut
    upload would be stored as a damaged photo. The container's declared lengths tell.
    """
    size = os.fstat(fh.fileno()).st_size
    if fmt == "webp":
        # RIFF length field: everything after the first 8 bytes.
        if int.from_bytes(head[4:8], "little") + 8 > size:
            raise ImageRejected("truncated", "the file ends before the image data does")
    elif fmt == "heif":
        meta = _heif_meta_payload(fh, size)
        try:
            extents_end = _heif_item_data_end(meta)
        except (IndexError, ValueError) as exc:
            raise ImageRejected("undecodable", "the container is malformed") from exc
        if extents_end > size:
            raise ImageRejected("truncated", "the file ends before the image data does")


def _heif_meta_payload(fh: BinaryIO, size: int) -> bytes:
    """Walk the top-level ISO-BMFF boxes, checking each fits the file; return meta's payload."""
    meta: bytes | None = None
    offset = 0
    for _ in range(_MAX_TOP_LEVEL_BOXES):
        if size - offset < 8:  # end of file, or a few stray bytes that cannot hold a box
            break
        fh.seek(offset)
        header = fh.read(16)
        box_size, box_type, header_len = int.from_bytes(header[:4], "big"), header[4:8], 8
        if box_size == 1:  # a 64-bit size follows the type
            if len(header) < 16:
                raise ImageRejected("truncated", "the file ends inside a box header")
            box_size, header_len = int.from_bytes(header[8:16], "big"), 16
        elif box_size == 0:  # "extends to the end of the file"
            box_size = size - offset
        if box_size < header_len:
            raise ImageRejected("undecodable", "the container is malformed")
        if offset + box_size > size:
            raise ImageRejected("truncated", "the file ends before the image data does")
        if box_type == b"meta" and meta is None:
            if box_size > _MAX_META_BYTES:
                raise ImageRejected("undecodable", "the container is malformed")
            fh.seek(offset + header_len)
            meta = fh.read(box_size - header_len)
        offset += box_size
    else:
        raise ImageRejected("undecodable", "the container has too many boxes")
    if meta is None:
        raise ImageRejected("undecodable", "the container has no image description")
    return meta


def _heif_item_data_end(meta: bytes) -> int:
    """The furthest file offset any item's data reaches, from the 'iloc' box inside 'meta'.

    Raises IndexError or ValueError on a malformed box (the caller maps them).
    """
    pos = 4  # meta is a full box: version and flags come first
    while pos + 8 <= len(meta):
        box_size = int.from_bytes(meta[pos : pos + 4], "big")
        if box_size == 0:  # the last box may say "to the end"
            box_size = len(meta) - pos
        if box_size < 8:
            raise ValueError("bad box size inside meta")
        if meta[pos + 4 : pos + 8] == b"iloc":
            return _iloc_data_end(meta[pos + 8 : pos + box_size])
        pos += box_size
    return 0  # no item locations: libheif will find nothing to decode and say so


def _iloc_data_end(iloc: bytes) -> int:
    def uint(at: int, width: int) -> int:
        if at + width > len(iloc):
            raise IndexError("iloc box cut short")
        return int.from_bytes(iloc[at : at + width], "big")

    version = iloc[0]
    if version > 2:
        raise ValueError("unknown iloc version")
    offset_size, length_size = iloc[4] >> 4, iloc[4] & 0x0F
    base_offset_size, index_size = iloc[5] >> 4, (iloc[5] & 0x0F if version else 0)
    pos = 6
    id_width = 4 if version == 2 else 2
    item_count = uint(pos, id_width)
    pos += id_width
    furthest = 0
    for _ in range(item_count):
        pos += id_width  # item_ID
        construction_method = 0
        if version:
            construction_method = uint(pos, 2) & 0x0F
            pos += 2
        data_reference_index = uint(pos, 2)
        base_offset = uint(pos + 2, base_offset_size)
        extent_count = uint(pos + 2 + base_offset_size, 2)
        pos += 4 + base_offset_size
        if index_size + offset_size + length_size == 0:
            # Zero-width extents occupy no bytes: looping over a hostile count would only
            # burn time, and they can reach no further than the base offset.
            extent_count = 0
            if construction_method == 0 and data_reference_index == 0:
                furthest = max(furthest, base_offset)
        for _ in range(extent_count):
            pos += index_size
            extent_offset = uint(pos, offset_size)
            extent_length = uint(pos + offset_size, length_size)
            pos += offset_size + length_size
            # Method 0 with reference 0 is data at a file offset; idat-relative data was checked
            # with meta, and external references are not supported by libheif at all.
            if construction_method == 0 and data_reference_index == 0:
                furthest = max(furthest, base_offset + extent_offset + extent_length)
    return furthest


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageRejected("undecodable", "the image has no pixels")
    if width * height > max_pixels:
        raise ImageRejected("too_many_pixels", f"the image has more than {max_pixels} pixels")


def _load(im: ImageFile.ImageFile) -> None:
    """Decode the current frame; a JPEG cut short must not pass as complete."""
    im.load()
    # Pillow marks a JPEG it had to finish with a fake end marker; only possible if the global
    # truncated-images switch flipped during our decode, but we would rather be sure.
    if getattr(im, "_ended", False):
        raise ImageRejected("truncated", "the file ends before the image data does")


class PixelBudget:
    """A cap on the pixels being decoded at once in a process; later decodes wait their turn.

    A decoded PNG of 60 megapixels holds about 240 MB: a web worker checking several large
    uploads at once would otherwise hold one such bitmap per thread. A decode bigger than the
    whole budget runs alone. Fair enough for uploads: waiters are woken in no set order, but
    each decode is short.
    """

    def __init__(self, pixels: int) -> None:
        if pixels < 1:
            raise ValueError("a pixel budget must be positive")
        self.pixels = pixels
        self._in_use = 0
        self._available = threading.Condition()

    @contextmanager
    def reserved(self, pixels: int) -> Iterator[None]:
        """Hold `pixels` of the budget (at most all of it) for the block."""
        need = min(pixels, self.pixels)
        with self._available:
            self._available.wait_for(lambda: self._in_use + need <= self.pixels)
            self._in_use += need
        try:
            yield
        finally:
            with self._available:
                self._in_use -= need
                self._available.notify_all()


def validate_upload(
    path: str | os.PathLike[str],
    max_pixels: int = 60_000_000,
    budget: PixelBudget | None = None,
) -> ImageInfo:
    """Check that `path` holds a whole, decodable photo of an accepted format and size.

    The pixel count is checked from the header before any decoding, and a WebP or HEIF file
    must be as long as its container declares (libheif would otherwise paint a cut HEIC's
    missing tiles green and call it a success). Then the image is decoded for real (a JPEG at
    1/8 scale, which still reads every byte of its entropy-coded data), within `budget` when
    one is given: the decode waits until its pixels fit in it.

    Raises ImageRejected with code "empty", "unsupported_type" (status 415),
    "too_many_pixels", "decompression_bomb", "truncated" or "undecodable" (status 422), and
    nothing else for any content of the file. Raises OSError if `path` cannot be opened.
    """
    with _opened(path, max_pixels) as (im, fmt):
        width, height = im.size
        if fmt == "jpeg":
            # The smallest DCT scale: same entropy decoding, an eighth of the pixels to produce.
            im.draft("L", (max(1, width // 8), max(1, height // 8)))
        if budget is None:
            _load(im)
        else:
            with budget.reserved(im.width * im.height):  # the size after draft: what is decoded
                _load(im)
        return ImageInfo(format=fmt, width=width, height=height)


# --------------------------------------------------------------------------------------------
# Processing


def process_image(
    path: str | os.PathLike[str],
    max_pixels: int = 60_000_000,
    display_max_px: int = DISPLAY_MAX_PX,
    thumb_max_px: int = THUMB_MAX_PX,
    display_min_px: int = DISPLAY_MIN_PX,
) -> ProcessedImage:
    """Re-validate a photo, read its GPS and capture time, and rebuild it as two bare JPEGs.

    The display copy's long side is at most `display_max_px`, the thumbnail's at most
    `thumb_max_px` (never upscaled); the thumbnail is made from the display copy. A JPEG is
    decoded at the smallest DCT scale (1/8, 1/4, 1/2) whose long side still reaches
    `display_min_px` (capped at `display_max_px`), and that decode is the display copy as it
    comes when it fits: a 4000x3000 photo becomes 2000x1500 without a full-size decode or any
    resampling. Other formats have no such scaling and are fitted to `display_max_px`.

    EXIF orientation is applied (for HEIF the decoder has already applied the container's
    rotation). Only the first frame is kept: MPO second views, HEIF depth and auxiliary images
    and animation frames are dropped. The copies hold no EXIF,
    GPS, XMP, IPTC, ICC profile, comment, thumbnail or text chunk.

    Raises ImageRejected with the same codes as `validate_upload`, and nothing else for any
    content of the file; OSError if `path` cannot be opened; ValueError if a size limit is not
    positive.
    """
    if display_max_px < 1 or thumb_max_px < 1 or display_min_px < 1:
        raise ValueError("size limits must be positive")
    with _opened(path, max_pixels) as (im, fmt):
        if fmt == "jpeg":
            # libjpeg scales while it decodes (only 1/8 of the IDCT work at 1/8): the cheapest
            # pixels there are. Never for HEIF: pillow-heif's draft hands back an embedded
            # thumbnail instead.
            scale = _dct_scale(im.size, min(display_min_px, display_max_px))
            if scale > 1:
                # draft() picks the largest scale whose result is at least the size asked for,
                # and sets im.size to the scaled (rounded up) size.
                im.draft(None, (im.width // scale, im.height // scale))
        target = _fit(im.size, display_max_px)
        _load(im)
        exif = _read_exif(im)
        gps = extract_gps(exif)
        captured_at = extract_captured_at(exif)
        # For HEIF, libheif applies the container's irot/imir on decode and pillow-heif then
        # resets the EXIF orientation to 1; the EXIF tag must not be applied a second time.
        orientation = 1 if fmt == "heif" else _orientation(exif)
        del exif
        display = _display_pixels(im, target, orientation)  # closes im, freeing its pixels
    display_jpeg = _encode_jpeg(display, DISPLAY_QUALITY)
    thumb_size = _fit(display.size, thumb_max_px)
    thumb = display if thumb_size == display.size else display.resize(thumb_size, _RESAMPLE)
    thumb_jpeg = _encode_jpeg(thumb, THUMB_QUALITY)
    return ProcessedImage(
        display_jpeg=display_jpeg,
        display_size=display.size,
        thumb_jpeg=thumb_jpeg,
        thumb_size=thumb.size,
        gps=gps,
        captured_at=captured_at,
    )


def _dct_scale(size: tuple[int, int], min_px: int) -> int:
    """The largest JPEG DCT reduction (8, 4, 2, else 1) whose long side still reaches `min_px`.

    A side of n pixels decodes to ceil(n / scale) pixels at that scale.
    """
    long_side, short_side = max(size), min(size)
    for scale in (8, 4, 2):
        if -(-long_side // scale) >= min_px and short_side >= scale:
            return scale
    return 1


def _fit(size: tuple[int, int], max_px: int) -> tuple[int, int]:
    """Size with the long side at most `max_px`, same aspect ratio, never larger than `size`."""
    width, height = size
    long_side = max(width, height)
    if long_side <= max_px:
        return width, height
    scale = max_px / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def _display_pixels(im: Image.Image, target: tuple[int, int], orientation: int) -> Image.Image:
    """The decoded frame resized, made upright and flattened to RGB in a brand-new image.

    Consumes `im`: it is closed as soon as its pixels have been used. Work is ordered to keep
    the peak low: only modes that cannot be resized well are converted at full size, and
    rotation comes after resizing, so it touches the small copy.
    """
    work = _resizable(im)
    if work is not im:
        im.close()
    if work.size != target:
        if work.width != target[0] and work.height != target[1]:
            # Pillow resamples in two passes, horizontal then vertical, and holds the source, a
            # full-height intermediate and the result at once. Making the passes two calls
            # gives the same pixels but frees the full-size source before the second pass.
            narrowed = work.resize((target[0], work.height), _RESAMPLE)
            work.close()
            work = narrowed
        resized = work.resize(target, _RESAMPLE)
        work.close()
        work = resized
    transpose = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    if transpose is not None:
        turned = work.transpose(transpose)
        work.close()
        work = turned
    fresh = _fresh_rgb(work)
    work.close()
    return fresh


def _resizable(im: Image.Image) -> Image.Image:
    """`im` itself if Resampling can work on its mode, else a converted copy.

    Palette and 1-bit images can only be resized by nearest neighbour, 16-bit greyscale would
    be clipped to white by a plain conversion, and the others have no resampling support.
    """
    mode = im.mode
    if mode in ("RGB", "RGBA", "L", "LA"):
        return im
    if mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in im.info
        return im.convert("RGBA" if has_alpha else "RGB")
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I"):
        # 16-bit samples (I;16, I;16B, I from 16-bit PNG): scale 0..65535 onto 0..255.
        return im.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    if mode in ("RGBa", "La"):
        return im.convert("RGBA" if mode == "RGBa" else "LA")
    return im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, F: Pillow's own conversions


def _fresh_rgb(im: Image.Image) -> Image.Image:
    """Copy the pixels of `im` into a new RGB image with empty `info`, alpha flattened on white.

    This is what strips the metadata: nothing of the source container (info dict, palette,
    EXIF, ICC, text chunks) is carried by `Image.new`, and `paste` copies only pixel values.
    """
    fresh = Image.new("RGB", im.size, _WHITE)
    if im.mode in ("RGBA", "LA"):
        rgb = im.convert("RGB") if im.mode == "RGBA" else im.convert("L").convert("RGB")
        fresh.paste(rgb, (0, 0), im.getchannel("A"))
        rgb.close()
    elif im.mode == "RGB":
        fresh.paste(im, (0, 0))
    else:
        rgb = im.convert("RGB")
        fresh.paste(rgb, (0, 0))
        rgb.close()
    return fresh


def _encode_jpeg(im: Image.Image, quality: int) -> bytes:
    """Encode `im` as a baseline JPEG carrying pixels only, and prove it.

    Raises RuntimeError (a bug, never bad input) if the output has any segment beyond the
    plain JFIF header, tables and image data.
    """
    buf = io.BytesIO()
    # No exif=, icc_profile=, comment= or xmp=: `im` comes from Image.new, so Pillow has no
    # `info` to fall back on either (its JPEG writer reads a comment from im.info).
    im.save(buf, "JPEG", quality=quality, optimize=True)
    data = buf.getvalue()
    _assert_bare_jpeg(data)
    return data


# Markers allowed before the scan: APP0 (JFIF), DQT, SOF0/SOF1/SOF2, DHT, DRI.
_ALLOWED_JPEG_MARKERS = frozenset({0xE0, 0xDB, 0xC0, 0xC1, 0xC2, 0xC4, 0xDD})


def _assert_bare_jpeg(data: bytes) -> None:
    """Walk the JPEG header segments and fail on anything that could hold metadata."""
    if not data.startswith(b"\xff\xd8"):
        raise RuntimeError("encoder produced something other than a JPEG")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise RuntimeError("malformed JPEG header from the encoder")
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: only entropy-coded data and EOI follow
            return
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker not in _ALLOWED_JPEG_MARKERS:
            raise RuntimeError(f"encoder wrote JPEG marker 0x{marker:02X}")
        if marker == 0xE0 and not data[pos + 4 : pos + 9] == b"JFIF\x00":
            raise RuntimeError("encoder wrote an APP0 segment that is not JFIF")
        pos += 2 + length
    raise RuntimeError("JPEG from the encoder has no image data")


# --------------------------------------------------------------------------------------------
# EXIF evidence: read from the original before it is discarded


def _read_exif(im: Image.Image) -> Image.Exif:
    """The image's EXIF, or an empty one if there is none or it cannot be parsed."""
    try:
        return im.getexif()
    except Exception:  # damaged EXIF only costs us the evidence, never the photo
        return Image.Exif()


def _orientation(exif: Image.Exif) -> int:
    try:
        value = exif.get(_TAG_ORIENTATION, 1)
    except Exception:  # a damaged tag means we cannot know: show the pixels as stored
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE_FOR_ORIENTATION else 1


def extract_gps(exif: Image.Exif) -> tuple[float, float] | None:
    """Return (latitude, longitude) in degrees from an EXIF's GPS IFD, or None.

    A wrong position is worse than none, so None is returned when a reference (N/S, E/W) is
    missing or invalid, a value is not three finite non-negative rationals with a non-zero
    denominator, minutes or seconds are 60 or more, a coordinate is out of range, the position
    is exactly 0,0 (a common "no fix" filler), or the receiver marked the fix void.
    Never raises.
    """
    try:
        gps = exif.get_ifd(_IFD_GPS)
        if not gps:
            return None
        if _ascii(gps.get(_GPS_STATUS)) == "V":  # "measurement void": the receiver had no fix
            return None
        lat = _coordinate(gps.get(_GPS_LATITUDE), gps.get(_GPS_LATITUDE_REF), "N", "S", 90.0)
        lon = _coordinate(gps.get(_GPS_LONGITUDE), gps.get(_GPS_LONGITUDE_REF), "E", "W", 180.0)
    except Exception:  # malformed IFDs are hostile input like any other: no position
        return None
    if lat is None or lon is None or (lat == 0.0 and lon == 0.0):
        return None
    return lat, lon


def _coordinate(value: Any, ref: Any, positive: str, negative: str, limit: float) -> float | None:
    hemisphere = _ascii(ref)
    if hemisphere not in (positive, negative):
        return None
    if not isinstance(value, tuple | list) or len(value) != 3:
        return None
    degrees, minutes, seconds = (_rational(v) for v in value)
    if degrees is None or minutes is None or seconds is None:
        return None
    if minutes >= 60 or seconds >= 60:
        return None
    result = degrees + minutes / 60 + seconds / 3600
    if not math.isfinite(result) or result > limit:
        return None
    return -result if hemisphere == negative else result


def _rational(value: Any) -> float | None:
    """A finite, non-negative float from an EXIF rational, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, IFDRational):
        # Pillow keeps n/0 as NaN instead of raising; we refuse it explicitly.
        if value.denominator == 0:
            return None
        number = float(value.numerator) / float(value.denominator)
    elif isinstance(value, int | float):
        number = float(value)
    else:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


def _ascii(value: Any) -> str | None:
    """An EXIF ASCII value as a stripped str (Pillow gives str; damaged files give bytes)."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str):
        return None
    return value.strip("\x00 \t\r\n").upper() or None


_EXIF_DATETIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")


def extract_captured_at(exif: Image.Exif) -> datetime | None:
    """Return when the photo was taken, from an EXIF, or None.

    Uses DateTimeOriginal, then DateTimeDigitized, then the main DateTime. The result is
    timezone-aware when the matching offset tag (or OffsetTime) is valid, naive (the camera's
    local time) otherwise. Never raises.
    """
    try:
        sub = exif.get_ifd(_IFD_EXIF)
        candidates = (
            (sub.get(_TAG_DATETIME_ORIGINAL), sub.get(_TAG_OFFSET_TIME_ORIGINAL)),
            (sub.get(_TAG_DATETIME_DIGITIZED), sub.get(_TAG_OFFSET_TIME_DIGITIZED)),
            (exif.get(_TAG_DATETIME), None),
        )
        fallback_offset = sub.get(_TAG_OFFSET_TIME)
        for value, offset in candidates:
            moment = _exif_datetime(value)
            if moment is None:
                continue
            tz = _exif_offset(offset) or _exif_offset(fallback_offset)
            return moment.replace(tzinfo=tz) if tz is not None else moment
    except Exception:  # malformed IFDs: no capture time rather than a failed job
        return None
    return None


def _exif_datetime(value: Any) -> datetime | None:
    text = _ascii(value)
    match = _EXIF_DATETIME.fullmatch(text) if text else None
    if match is None:
        return None
    try:
        return datetime(*(int(part) for part in match.groups()))  # naive: the camera's local time
    except ValueError:  # "0000:00:00 00:00:00" and other impossible dates
        return None


def _exif_offset(value: Any) -> timezone | None:
    text = _ascii(value)
    match = _EXIF_OFFSET.fullmatch(text) if text else None
    if match is None:
        return None
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3))
    if hours > 14 or minutes >= 60:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if sign == "-" else delta)
