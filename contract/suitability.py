"""The image checks the hub's validator and the app share: is this raster a radiograph at all?

``image_problem(colourfulness, size, spread)`` gives the first ``Unsuitable`` of ``colour``,
``too_small`` and ``low_contrast`` (thresholds and how they were measured: ``desktop_app.suitability``,
docs/benchmarks.md), or None. The app adds its DICOM header checks before these
(``desktop_app.suitability.precheck``); the hub refuses the same images from a batch
(``raster_problem`` in ``hub.pool.scan``), so that what the app would withhold never trains a model.
numpy and Pillow only.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image

from contract.preprocess import COLOUR_MODES, to_gray

MAX_COLOURFULNESS = 10.0
MIN_SIDE = 112
MIN_CONTRAST = 0.05
CONTRAST_SAMPLES = 512  # contrast percentiles are read on a strided copy about this many px a side
COLOURFULNESS_SIDE = 256  # colourfulness is measured on a copy reduced to about this many px on its longer side


@dataclasses.dataclass(frozen=True)
class Unsuitable:
    """Why the model should not read an image: ``code`` (stable, for the app's own translation and the
    audit log) and ``reason`` (one English line a radiologist understands)."""

    code: str
    reason: str

    def __str__(self) -> str:
        return self.reason


def colourfulness(img: Image.Image) -> float:
    """Hasler & Süsstrunk's (2003) colourfulness M of an RGB(A) image, on the 0–255 scale, measured on a copy
    box-reduced to about ``COLOURFULNESS_SIDE`` px: 0 for a gray image (R = G = B, also when stored as RGB),
    about 15 "slightly colourful", 33 "moderately", 59 "quite", 82 and more "highly colourful"."""
    rgb = img.convert("RGB")  # alpha dropped: the model sees luma only
    factor = max(1, math.ceil(max(rgb.size) / COLOURFULNESS_SIDE))
    a = np.asarray(rgb.reduce(factor) if factor > 1 else rgb, dtype=np.float32)
    rg = a[..., 0] - a[..., 1]
    yb = 0.5 * (a[..., 0] + a[..., 1]) - a[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def contrast_spread(gray: np.ndarray) -> float:
    """The 99th minus the 1st percentile of ``gray`` (values in [0, 1]), on a strided copy for speed."""
    step = max(1, max(gray.shape) // CONTRAST_SAMPLES)
    lo, hi = np.percentile(gray[::step, ::step], (1, 99))
    return float(hi - lo)


def image_problem(colour: float | None, size: tuple[int, int], spread: float) -> Unsuitable | None:
    """``colour``: the image's ``colourfulness`` (None for a grayscale one); ``size`` (w, h); ``spread``:
    its ``contrast_spread``. The first problem found, in the order colour, too_small, low_contrast."""
    if colour is not None and colour > MAX_COLOURFULNESS:
        return Unsuitable(
            "colour",
            f"a colour image (colourfulness {colour:.0f}, X-rays score under {MAX_COLOURFULNESS:.0f}): "
            "a photograph or screenshot, not a radiograph",
        )
    w, h = size
    if min(w, h) < MIN_SIDE:
        return Unsuitable("too_small", f"image too small to read: {w}×{h} px (minimum side {MIN_SIDE} px)")
    if spread < MIN_CONTRAST:
        return Unsuitable(
            "low_contrast",
            f"almost no contrast: 98 % of the pixels lie within {spread:.1%} of the gray range "
            "(a blank, over- or underexposed film?)",
        )
    return None


def raster_problem(img: Image.Image) -> Unsuitable | None:
    """``image_problem`` of a decoded PNG/JPEG (``contract.preprocess.read_image``), as the app judges it."""
    colour = colourfulness(img) if img.mode in COLOUR_MODES else None
    return image_problem(colour, img.size, contrast_spread(to_gray(img)))
