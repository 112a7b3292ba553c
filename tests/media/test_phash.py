"""The perceptual hash: copies of one picture hash alike, different pictures do not."""

from __future__ import annotations

import io
import itertools

import pytest
from PIL import Image

from stopapp.media.imaging import process_image
from stopapp.media.phash import hamming_distance, keyed, perceptual_hash
from tests.media.conftest import photo

PICTURES = ["exif_chunk.png", "flower_exif_makernote.webp", "galaxyS7_gps_app13.jpg",
            "iphone11promax_gps.heic", "iphone6_gps.jpg", "nikon_d70s_gps_serial_iptc.jpg",
            "orientation_1.jpg", "sony_exif_xmp_iptc.heic"]
TURNED = ["orientation_3.jpg", "orientation_6.jpg", "orientation_8.jpg"]


def display_copy(name: str) -> bytes:
    """The clean display JPEG the real pipeline makes of a test photo."""
    return process_image(str(photo(name)), max_pixels=60_000_000).display_jpeg


def reencoded(jpeg: bytes, scale: float, quality: int) -> bytes:
    with Image.open(io.BytesIO(jpeg)) as image:
        smaller = image.resize((int(image.width * scale), int(image.height * scale)))
    out = io.BytesIO()
    smaller.save(out, "JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture(scope="module")
def hashes() -> dict[str, int]:
    return {name: perceptual_hash(display_copy(name)) for name in PICTURES + TURNED}


def test_hash_fits_a_signed_bigint(hashes):
    assert all(-(2**63) <= value < 2**63 for value in hashes.values())
    assert len(set(hashes.values())) == len(PICTURES)  # the turned copies repeat one


@pytest.mark.parametrize("name", TURNED)
def test_a_turned_copy_comes_out_upright_and_hashes_alike(hashes, name):
    assert hamming_distance(hashes[name], hashes["orientation_1.jpg"]) <= 4


@pytest.mark.parametrize("name", ["iphone6_gps.jpg", "nikon_d70s_gps_serial_iptc.jpg"])
def test_a_smaller_recompressed_copy_hashes_alike(hashes, name):
    copy = reencoded(display_copy(name), 0.4, 50)
    assert hamming_distance(perceptual_hash(copy), hashes[name]) <= 4


def test_different_pictures_are_far_apart(hashes):
    for a, b in itertools.combinations(PICTURES, 2):
        assert hamming_distance(hashes[a], hashes[b]) > 16, (a, b)


def test_keyed_hash_hides_the_plain_hash_but_keeps_every_distance(hashes):
    values = list(hashes.values())
    for value in values:
        stored = keyed(value, "server-key")
        assert stored != value and -(1 << 63) <= stored < 1 << 63
        assert keyed(stored, "server-key") == value  # the mask is its own inverse
        assert keyed(value, "another-key") != stored
    for a, b in itertools.combinations(values, 2):
        assert hamming_distance(keyed(a, "server-key"), keyed(b, "server-key")) == (
            hamming_distance(a, b)
        )
