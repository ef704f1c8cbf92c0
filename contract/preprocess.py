"""The one definition of how an X-ray becomes the model's input (numpy + Pillow, no torch).

Evaluation in the hub, export verification and the desktop app all call :func:`preprocess`;
training calls the same steps with augmentation inserted between :func:`resize_gray` and
:func:`normalize`. The constants live in :class:`PreprocessSpec`, which is written into the
model card (``model.json``) and read back from it, so a model and its preprocessing travel together.

Contract: decode (a large JPEG at reduced scale, :func:`read_image`'s ``reduce_for``) → grayscale
float32 in [0, 1] (RGB by ITU-R 601 luma, 16-bit by /65535)
→ bilinear resize to ``size``×``size`` (aspect ratio not kept: the training data already holds
squashed copies) → intensity standardisation (``intensity``, :func:`standardize`) → replicate to 3
channels → subtract ``mean``, divide by ``std`` (ImageNet).

Reduced decode: a JPEG whose sides are all at least ``2 × DRAFT_MARGIN × size`` is decoded by libjpeg's
DCT scaling (Pillow's ``draft``) at 1/2, 1/4 or 1/8 scale, the smallest that keeps every side at least
``DRAFT_MARGIN × size`` (a 2048 px film for a 224 px model: 512 px), before the bilinear resize. The
resize of a 2048 px float image was most of the time an image took outside the model; the input
differs from a full decode by at most ~2/255 per pixel on real films (docs/benchmarks.md, "Clinic
resolution"), and hub and app both decode this way, so what the app feeds the model is what the hub
trained and verified on. Smaller JPEGs, PNGs and DICOMs are decoded whole.

Intensity standardisation takes out what differs between scanners and sites before the model sees
the image: ``none`` (the seed's, and every package before it was added), ``percentile`` (the 1st-99th
percentile stretched to [0, 1]; a linear change of gain or offset gives the same input), ``equalize``
(histogram equalisation over 256 levels; any monotone change of the grey scale gives the same
input). Which one a model uses was chosen by measurement on the second site's validation images
(docs/benchmarks.md, "Intensity standardisation and recipe"); training applies augmentation after
the resize and before the standardisation, so exposure jitter is what the standardisation removes.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_SIDE = 32
MAX_PIXELS = 60_000_000  # larger than any real radiograph; guards against decompression bombs
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
COLOUR_MODES = {"RGB", "RGBA"}
INTENSITY_METHODS = ("none", "percentile", "equalize")
REDUCED_FROM = "pneumoscan.reduced_from"  # Image.info key: the (w, h) a reduced decode was made from
DRAFT_MARGIN = 2  # a reduced decode keeps every side at least this many times the model's input size
PERCENTILES = (1.0, 99.0)


class ImageError(ValueError):
    """An image that cannot be used, with a reason a person can act on."""


@dataclasses.dataclass(frozen=True)
class PreprocessSpec:
    size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    colour: str = "grayscale, replicated to 3 channels"
    resample: str = "bilinear"
    intensity: str = "none"  # INTENSITY_METHODS; a card without it was made before it existed: none

    def __post_init__(self):
        if self.intensity not in INTENSITY_METHODS:
            raise ValueError(
                f"Unknown intensity standardisation {self.intensity!r}: supported are {', '.join(INTENSITY_METHODS)}"
            )

    def to_dict(self) -> dict:
        """JSON-ready (lists, not tuples), as written into model.json."""
        return {**dataclasses.asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessSpec:
        return cls(
            size=int(d["size"]),
            mean=tuple(d["mean"]),
            std=tuple(d["std"]),
            colour=d.get("colour", cls.colour),
            resample=d.get("resample", cls.resample),
            intensity=d.get("intensity", "none"),
        )


def read_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS, reduce_for: int | None = None) -> Image.Image:
    """Open and decode an image file; raise :class:`ImageError` saying why it is unusable.

    ``reduce_for``: the model input size the image is decoded for; a large JPEG is then decoded at
    reduced scale (module docstring), and its ``info[REDUCED_FROM]`` holds the file's own (width, height).
    None decodes every pixel (display, the hub's checks)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ImageError(f"cannot read file: {e.strerror}") from None
    if size == 0:
        raise ImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(f"image too large: {w}x{h} pixels (limit {max_pixels:,})")
            if reduce_for and img.format == "JPEG" and min(w, h) >= 2 * DRAFT_MARGIN * reduce_for:
                img.draft(img.mode, (DRAFT_MARGIN * reduce_for, DRAFT_MARGIN * reduce_for))
                img.info[REDUCED_FROM] = (w, h)
            img.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image file (format not recognised)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"image too large: over {max_pixels:,} pixels (refused as a possible decompression bomb)"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"image data is corrupt or truncated ({e})") from None
    if min(img.size) < MIN_SIDE:
        raise ImageError(f"image too small: {img.size[0]}x{img.size[1]} (minimum side {MIN_SIDE} px)")
    if img.mode not in GRAY_MODES | COLOUR_MODES:
        raise ImageError(f"unsupported colour mode {img.mode!r}: expected grayscale or RGB")
    return img


def to_gray(img: Image.Image) -> np.ndarray:
    """Grayscale float32 array in [0, 1], shape (H, W)."""
    mode = img.mode
    if mode in COLOUR_MODES:
        return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    if mode in ("1", "L", "LA"):
        return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    if mode == "F":
        return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
    # 16/32-bit integer grayscale (e.g. 16-bit PNG)
    arr = np.asarray(img).astype(np.float32)
    top = 65535.0 if arr.max(initial=0) <= 65535 else float(arr.max())
    return np.clip(arr / top, 0.0, 1.0)


def resize_gray(gray: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a float grayscale array to (size, size)."""
    if gray.shape == (size, size):
        return gray.astype(np.float32, copy=False)
    out = Image.fromarray(gray.astype(np.float32, copy=False), mode="F").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.float32)


def standardize(gray: np.ndarray, method: str) -> np.ndarray:
    """Intensity standardisation of a float grayscale array in [0, 1] (see the module docstring)."""
    gray = gray.astype(np.float32, copy=False)
    if method == "none":
        return gray
    if method == "percentile":
        lo, hi = np.percentile(gray, PERCENTILES)
        if not hi - lo > 1e-6:  # a flat image: nothing to stretch
            return np.zeros_like(gray)
        return np.clip((gray - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0).astype(np.float32)
    if method == "equalize":
        levels = np.clip(np.floor(gray * 255.0 + 0.5), 0, 255).astype(np.intp)
        cdf = np.cumsum(np.bincount(levels.ravel(), minlength=256))
        first = cdf[levels.min()]  # pixels at the darkest level present map to 0
        if cdf[-1] == first:
            return np.zeros_like(gray)
        lut = ((cdf - first) / (cdf[-1] - first)).clip(0.0, 1.0).astype(np.float32)
        return lut[levels]
    raise ValueError(f"Unknown intensity standardisation {method!r}: supported are {', '.join(INTENSITY_METHODS)}")


def prepare_gray(gray: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Full-resolution grayscale in [0, 1] → the (size, size) grayscale the model sees (resize, standardise)."""
    return standardize(resize_gray(gray, spec.size), spec.intensity)


def normalize(gray: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """(H, W) in [0, 1] → (3, H, W) float32, ImageNet-normalised."""
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None, None]
    return ((gray[None, :, :] - mean) / std).astype(np.float32)


def preprocess(img: Image.Image, spec: PreprocessSpec = PreprocessSpec()) -> np.ndarray:
    """A decoded image → the model's input tensor (3, size, size), float32."""
    return normalize(prepare_gray(to_gray(img), spec), spec)


def preprocess_file(path: str | os.PathLike, spec: PreprocessSpec = PreprocessSpec()) -> np.ndarray:
    """An image file → the model's input tensor, decoded for the model's size (reduced when large)."""
    return preprocess(read_image(path, reduce_for=spec.size), spec)
