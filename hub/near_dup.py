"""Perceptual hashes: a re-encoded, cropped or rescaled copy of an image is found though its bytes differ.

An exact duplicate has the same sha256 (``hub.pool``); a copy of a gold image saved again at another
JPEG quality, cropped by a pixel or resized has not, and would leak the gold set into training. Each
image gets a DCT hash (pHash): the grayscale image box-reduced to ``SIDE``×``SIDE``, its 2-D DCT-II, the
``BLOCK``×``BLOCK`` lowest frequencies without the DC term, one bit per coefficient (above their
median or not): ``BITS`` bits. Two images are near-duplicates when their hashes differ in at most
``MAX_DISTANCE`` bits. Chest films all look alike at this scale, so the threshold is set from
measurement, not from the usual photo settings: the copies tried sit at a few bits, distinct films
(other patients, and other films of one patient) far above (``bench/near_duplicates.py``,
docs/benchmarks.md "Near-duplicates").

numpy and Pillow only.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

SIDE = 32
BLOCK = 16
BITS = BLOCK * BLOCK - 1
MAX_DISTANCE = 28  # of BITS; measured (module docstring)


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT = _dct_matrix(SIDE)


def perceptual_hash(img: Image.Image) -> int:
    """The image's ``BITS``-bit DCT hash as an int (module docstring)."""
    small = img.convert("L").resize((SIDE, SIDE), Image.Resampling.BOX)
    x = np.asarray(small, dtype=np.float64)
    coeffs = (_DCT @ x @ _DCT.T)[:BLOCK, :BLOCK].ravel()[1:]  # the DC term says only how bright
    bits = coeffs > np.median(coeffs)
    return int("".join("1" if b else "0" for b in bits), 2)


def to_hex(h: int) -> str:
    return f"{h:0{(BITS + 3) // 4}x}"


def from_hex(text: str) -> int:
    return int(text, 16)


def _words(hashes: list[int]) -> np.ndarray:
    """(n, 4) uint64: each hash split into 64-bit words, for vectorised Hamming distances."""
    out = np.zeros((len(hashes), 4), dtype=np.uint64)
    mask = (1 << 64) - 1
    for i, h in enumerate(hashes):
        for w in range(4):
            out[i, w] = (h >> (64 * w)) & mask
    return out


def distances(h: int, others: np.ndarray) -> np.ndarray:
    """Hamming distance from ``h`` to every row of ``others`` (``index(hashes)``)."""
    if len(others) == 0:
        return np.zeros(0, dtype=np.int64)
    x = np.bitwise_xor(others, _words([h])[0])
    return np.unpackbits(x.view(np.uint8), axis=1).sum(axis=1).astype(np.int64)


def index(hashes: list[int]) -> np.ndarray:
    return _words(hashes)


@dataclasses.dataclass
class NearIndex:
    """Hashes of images already owned, with where each is and its label; grows as a scan keeps images."""

    hashes: list[int] = dataclasses.field(default_factory=list)
    places: list[str] = dataclasses.field(default_factory=list)
    labels: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self._words = index(self.hashes)

    def nearest(self, h: int) -> tuple[int, str, str] | None:
        """(distance, place, label) of the closest image within ``MAX_DISTANCE``, else None."""
        if not self.hashes:
            return None
        d = distances(h, self._words)
        i = int(d.argmin())
        return (int(d[i]), self.places[i], self.labels[i]) if d[i] <= MAX_DISTANCE else None

    def add(self, h: int, place: str, label: str) -> None:
        self.hashes.append(h)
        self.places.append(place)
        self.labels.append(label)
        self._words = np.vstack([self._words, index([h])])
