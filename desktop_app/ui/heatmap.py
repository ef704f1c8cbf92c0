"""Heat-map rendering in numpy + Pillow (no matplotlib): CAM upsampling, a colour LUT, RGBA overlay."""

from __future__ import annotations

import numpy as np
from PIL import Image

# Jet-like control points (position, R, G, B): dark blue → cyan → yellow → red. Radiologists know
# this scale from other CAM viewers; low activation stays cool so the lungs remain readable.
_STOPS = np.array(
    [
        (0.00, 0, 0, 128),
        (0.15, 0, 0, 255),
        (0.40, 0, 255, 255),
        (0.60, 255, 255, 0),
        (0.85, 255, 0, 0),
        (1.00, 128, 0, 0),
    ],
    dtype=np.float64,
)


def colour_lut(n: int = 256) -> np.ndarray:
    """(n, 3) uint8 RGB lookup table from low (index 0) to high activation."""
    x = np.linspace(0.0, 1.0, n)
    return np.stack([np.interp(x, _STOPS[:, 0], _STOPS[:, c]) for c in (1, 2, 3)], axis=1).round().astype(np.uint8)


LUT = colour_lut()


def upsample_cam(cam: np.ndarray, size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Bilinear resize of a (h, w) CAM to ``size`` = (width, height), divided by ``scale``, clipped to [0, 1].

    The model's CAM is PNEUMONIA evidence in calibrated log-odds (docs/model-package.md); ``scale``
    is the card's full-colour point. Nothing is rescaled per image: evidence at or below 0 (for
    NORMAL) maps to 0, so a NORMAL film is not painted red by stretching its own weak range.
    """
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2:
        raise ValueError(f"Invalid CAM shape {cam.shape}: expected (h, w)")
    if not scale > 0:
        raise ValueError(f"Invalid heat-map scale {scale!r}: must be above 0")
    out = Image.fromarray(cam, mode="F").resize(size, Image.Resampling.BILINEAR)
    return np.clip(np.asarray(out, dtype=np.float32) / np.float32(scale), 0.0, 1.0)


OVERLAY_MAX_SIDE = 256  # the CAM is 7×7: a larger overlay adds time, not detail (Qt scales it up smoothly)


def overlay_size(size: tuple[int, int], max_side: int = OVERLAY_MAX_SIDE) -> tuple[int, int]:
    """(width, height) to render the overlay at: ``size`` shrunk to at most ``max_side``, same aspect."""
    w, h = size
    scale = min(1.0, max_side / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def overlay_rgba(cam: np.ndarray, size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """(height, width, 4) uint8 RGBA: the LUT colour of the upsampled CAM on the model's fixed scale.

    Alpha is 0 where there is no evidence for pneumonia and grows in proportion to it, opaque at
    ``scale``: weak evidence is a faint tint, not a blue wash; the window's opacity slider scales the layer.
    """
    v = upsample_cam(cam, size, scale)
    rgba = np.empty(v.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = LUT[np.round(v * (len(LUT) - 1)).astype(np.intp)]
    rgba[..., 3] = np.round(v * 255.0).astype(np.uint8)
    return rgba


WL_LEVELS = 4096  # window/level works on 12-bit gray: as fine as a typical DICOM, fast as a table lookup
WL_STEPS = 1000  # the window/level sliders' steps over the gray range: a stored DICOM window is kept to 0.1 %


def gray_levels(gray: np.ndarray) -> np.ndarray:
    """(H, W) uint16 in [0, WL_LEVELS) from gray in [0, 1]: what window/level tables index."""
    levels = np.clip(gray, 0.0, 1.0, dtype=np.float32)  # float32 throughout: 4× faster than float64
    levels *= np.float32(WL_LEVELS - 1)
    levels += np.float32(0.5)
    return levels.astype(np.uint16)


def window_lut(level: float, width: float) -> np.ndarray:
    """(WL_LEVELS,) uint8 table mapping gray in [0, 1] to the screen for a window ``level`` ± ``width``/2."""
    x = np.linspace(0.0, 1.0, WL_LEVELS)
    return (np.clip((x - (level - width / 2)) / width, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
