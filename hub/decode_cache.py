"""Decoded and resized training images on disk, so that an epoch never decodes an image file twice.

``DecodeCache(root).gray(path, digest, size)`` is ``contract.preprocess``'s decode, grey conversion and
resize of ``path`` (``resize_gray(to_gray(read_image(path, reduce_for=size)), size)``), the step before augmentation,
kept as 16-bit integers (``round(x * 65535)``: at most 7.6e-6 from the float, far below the 1/255 step
of the 8-bit files it comes from). The value returned is the stored one, on the first read too, so
every epoch of a run sees the same input.

Layout: ``<root>/r<RULE>-<size>/<digest[:2]>/<digest>.npy``, keyed by the sha256 of the file's content
(computed by the dataset when the run starts). A new image, a changed file or a new size is a new key;
``RULE`` changes when the decode or resize of ``contract.preprocess`` does, so an entry made by an
older rule is never read. The cache is shared by every dataset version of a hub (most images stay
from one version to the next) and can be deleted at any time: it is rebuilt on the next run.

A missing, truncated or damaged entry is decoded again and rewritten; entries are written to a
temporary name and renamed, so concurrent loader workers and a killed run leave whole files or none.
When the disk is full the run goes on without caching (one warning).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from contract.preprocess import read_image, resize_gray, to_gray

logger = logging.getLogger(__name__)

# bump with any change to what contract.preprocess's read_image / to_gray / resize_gray give
RULE = 2  # 2: large JPEGs decoded at reduced scale
SCALE = 65535.0


class DecodeCache:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._warned = False

    def entry(self, digest: str, size: int) -> Path:
        return self.root / f"r{RULE}-{size}" / digest[:2] / f"{digest}.npy"

    def gray(self, path: str | os.PathLike, digest: str, size: int) -> np.ndarray:
        """(size, size) float32 in [0, 1]: the cached decode of ``path`` whose content hashes to ``digest``."""
        entry = self.entry(digest, size)
        try:
            stored = np.load(entry, allow_pickle=False)
            if stored.shape == (size, size) and stored.dtype == np.uint16:
                return stored.astype(np.float32) / np.float32(SCALE)
            logger.warning("Decode cache entry %s has shape %s %s: decoding again", entry, stored.shape, stored.dtype)
        except FileNotFoundError:
            pass
        except (OSError, ValueError, EOFError) as e:
            logger.warning("Decode cache entry %s is damaged (%s): decoding again", entry, e)
        stored = np.round(resize_gray(to_gray(read_image(path, reduce_for=size)), size) * SCALE).astype(np.uint16)
        self._store(entry, stored)
        return stored.astype(np.float32) / np.float32(SCALE)

    def _store(self, entry: Path, array: np.ndarray) -> None:
        tmp = None
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=f".{entry.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.save(f, array, allow_pickle=False)
            os.replace(tmp, entry)
        except OSError as e:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            if not self._warned:
                logger.warning("Decode cache at %s cannot be written (%s): training goes on without it", self.root, e)
                self._warned = True
