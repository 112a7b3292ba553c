"""A 64-bit perceptual hash (pHash) of a photo, to find photos that look alike across reports.

The classic DCT hash, the algorithm of `imagehash.phash`: the picture in grey at 32x32, its 2-D
DCT-II, the 8x8 lowest frequencies, one bit per coefficient above their median. Written out
here because it needs only 64 coefficients (two small matrix products), which pure Python does
in a few milliseconds, so numpy and scipy are not worth adding. Photos that look alike (the same
scene re-encoded, resized, or lightly edited) differ in few bits; unrelated photos in about 32.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import math
from statistics import median

from PIL import Image

_SIZE = 32  # side of the grey thumbnail the DCT runs on
_LOW = 8  # side of the block of low frequencies kept: 8 x 8 = 64 bits

# DCT-II basis rows for the lowest frequencies: _BASIS[u][x] = cos(pi * (2x + 1) * u / 64).
_BASIS = [
    [math.cos(math.pi * (2 * x + 1) * u / (2 * _SIZE)) for x in range(_SIZE)]
    for u in range(_LOW)
]


def perceptual_hash(jpeg: bytes) -> int:
    """The 64-bit pHash of an image, as a signed integer (it fits PostgreSQL's bigint)."""
    with Image.open(io.BytesIO(jpeg)) as image:
        # JPEG decodes straight at 1/8 scale when asked: no need for the full picture.
        image.draft("L", (_SIZE * 4, _SIZE * 4))
        grey = image.convert("L").resize((_SIZE, _SIZE), Image.Resampling.LANCZOS)
    pixels = list(grey.tobytes())  # one byte per grey pixel, row by row
    rows = [pixels[y * _SIZE:(y + 1) * _SIZE] for y in range(_SIZE)]
    # Low frequencies along x for every row, then along y: F = B . P . B^T, 8 x 8.
    along_x = [[sum(b * p for b, p in zip(basis, row, strict=True)) for basis in _BASIS]
               for row in rows]
    coefficients = [
        sum(_BASIS[v][y] * along_x[y][u] for y in range(_SIZE))
        for v in range(_LOW)
        for u in range(_LOW)
    ]
    threshold = median(coefficients)
    value = 0
    for coefficient in coefficients:
        value = (value << 1) | (coefficient > threshold)
    return value - (1 << 64) if value >= 1 << 63 else value


def keyed(value: int, key: str) -> int:
    """`value` XOR a 64-bit mask derived from `key`, as a signed integer.

    The display copy is rebuilt deterministically from the original, so anyone holding the
    original could recompute its plain pHash and look for it in the database. XOR with a secret
    mask leaves the Hamming distance between any two stored hashes exactly as it was (the mask
    cancels), so finding look-alikes works the same, while the stored value is useless without
    the key.
    """
    mask = int.from_bytes(hmac.new(key.encode(), b"phash-mask", hashlib.sha256).digest()[:8])
    masked = (value ^ mask) & ((1 << 64) - 1)
    return masked - (1 << 64) if masked >= 1 << 63 else masked


def hamming_distance(a: int, b: int) -> int:
    """How many of the 64 bits differ between two hashes."""
    return ((a ^ b) & ((1 << 64) - 1)).bit_count()
