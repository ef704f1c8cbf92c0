"""Open an X-ray file (PNG, JPEG or DICOM) for display and for the model (numpy, Pillow, pydicom; no torch).

A ``LoadedImage`` holds two grayscale arrays, (H, W) float32 in [0, 1]:

* ``model_gray`` — exactly what the model sees (``contract.preprocess.prepare_gray`` and ``normalize`` come
  after it). It depends on the pixel data alone, never on a display setting stored in the file or chosen
  in the viewer.
* ``gray`` — what the viewer shows at its full range; window/level (``display_window``, the sliders) acts
  on it.

PNG/JPEG: both are ``contract.preprocess.to_gray`` of the decoded image (RGB by ITU-R 601 luma, 16-bit by
/65535), decoded by ``contract.preprocess.read_image`` exactly as the hub trains on it. Given the model's
input size (``load_image``'s ``model_size``), a large JPEG's ``model_gray`` is the reduced-scale decode the
hub's preprocessing uses (``contract.preprocess``, "Reduced decode"), while ``gray`` keeps every pixel;
with ``display=False`` (triage, the command line) only that reduced decode is made and ``gray`` is it.

DICOM, grayscale (MONOCHROME1/2), the first frame — the one rule for the model's input:

1. the modality LUT (Rescale Slope/Intercept, or the Modality LUT Sequence), as pydicom applies it;
2. a linear map taking the 0.5th percentile of those values (over every pixel, numpy's linear
   interpolation; for a film reduced in step 4, over every k-th pixel of each row and column) to 0 and
   the 99.5th to 1, then clipped to [0, 1]. The stored VOI window
   (Window Center/Width) and VOI LUT Sequence are ignored: two copies of the same pixels with different
   stored windows give the same input. Percentiles rather than min-max so that the few brightest and
   darkest pixels (burned-in labels and markers, the unexposed border, dead pixels) do not squeeze the
   anatomy into a narrow band: the Kermany JPEGs the model is trained on were windowed by their maker
   and span nearly their whole 8-bit range (docs/benchmarks.md, "Suitability"). When the two percentiles
   are equal (a constant or almost constant image) the values are scaled over the modality output range
   instead, as for display, so nothing divides by zero and a blank film stays blank for the model;
3. MONOCHROME1 inverted (1 − x), so that bone is bright whatever the encoding: a MONOCHROME1 copy of a
   MONOCHROME2 image gives the same input;
4. given the model's input size (``load_image``'s ``model_size``), a film whose sides are all at least
   ``2 × DRAFT_MARGIN × size`` is box-reduced by the largest integer k that keeps them at least
   ``DRAFT_MARGIN × size`` (Pillow's ``reduce``), once, before the model's own resize: the same idea as a
   large JPEG's reduced decode. Without ``model_size`` (the labelled export) nothing is reduced.

For display, a grayscale DICOM's ``gray`` is the modality LUT's output over the whole range the standard
defines for it (PS3.3 C.11.1: from Bits Stored, Pixel Representation and the rescale, or the Modality LUT's
output bits) scaled to [0, 1], not windowed, so window/level can reach beyond the stored window;
MONOCHROME1 inverted too. ``display_window`` is the stored VOI window as (level, width) fractions of that
scale, where the viewer opens; None when the file stores none. A VOI LUT Sequence (a table, while the
viewer's window is linear) becomes the linear window over the input values where the table rises from
its lowest output to its highest.

RGB DICOM (8 bits or more, scaled to 8 bits) is treated as a raster colour image: luma for both arrays.

``meta`` (``ImageMeta``) carries what ``desktop_app.suitability`` checks before the model: DICOM modality,
body part, view position, photometric interpretation, frame count, and a colour measure of RGB images.
Every failure to decode is an ``ImageError`` with a one-line reason.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from PIL import Image

from contract.preprocess import (
    COLOUR_MODES,
    DRAFT_MARGIN,
    MAX_PIXELS,
    MIN_SIDE,
    REDUCED_FROM,
    ImageError,
    read_image,
    to_gray,
)
from contract.suitability import colourfulness

DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"}) | DICOM_SUFFIXES  # what the viewer and triage open
MODEL_PERCENTILES = (0.5, 99.5)  # the DICOM model-input rule's low and high percentiles (module docstring)


@dataclasses.dataclass(frozen=True)
class ImageMeta:
    """What the file says about itself; the DICOM fields are None for PNG/JPEG (and when the tag is absent)."""

    modality: str | None = None  # DICOM Modality (0008,0060), e.g. "DX", "CR", "CT"
    body_part: str | None = None  # DICOM Body Part Examined (0018,0015), e.g. "CHEST"
    view_position: str | None = None  # DICOM View Position (0018,5101), e.g. "PA", "AP", "LL"
    photometric: str | None = None  # DICOM Photometric Interpretation: MONOCHROME1, MONOCHROME2 or RGB
    frames: int = 1  # frames in the file (only the first is shown and read)
    bits_stored: int | None = None  # DICOM Bits Stored: the range ``gray`` is scaled over
    colourfulness: float | None = None  # ``colourfulness`` of an RGB/RGBA image; None for grayscale ones
    window_problem: str | None = None  # why the file's stored window was not used (width 0, not a number)


@dataclasses.dataclass(frozen=True)
class LoadedImage:
    """A decoded image (module docstring): ``gray`` for display, ``model_gray`` for the model, both
    (H, W) float32 in [0, 1]; ``pil`` is ``model_gray``'s source for ``contract.preprocess.preprocess``."""

    path: Path
    gray: np.ndarray
    pil: Image.Image
    kind: str  # "dicom" or the Pillow format name ("PNG", "JPEG", ...)
    model_gray: np.ndarray | None = None  # None: the same as ``gray`` (filled in on construction)
    meta: ImageMeta = ImageMeta()
    display_window: tuple[float, float] | None = None  # (level, width) as fractions of ``gray``'s scale

    def __post_init__(self) -> None:
        if self.model_gray is None:
            object.__setattr__(self, "model_gray", self.gray)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.gray.shape[1], self.gray.shape[0]


def is_dicom(path: Path) -> bool:
    """``.dcm`` suffix or the DICOM preamble ("DICM" at byte 128)."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def load_image(
    path: str | os.PathLike, max_pixels: int = MAX_PIXELS, model_size: int | None = None, display: bool = True
) -> LoadedImage:
    """Decode ``path`` (PNG/JPEG/DICOM); raise ``ImageError`` saying why it cannot be used.

    ``model_size``: the input size of the model that will judge it (``Engine.load`` passes it), so that a
    large image is reduced early, once, as the hub's preprocessing does. ``display=False``: nobody will
    look at the pixels; skip the full-resolution decode where the model does not need it.
    """
    path = Path(path)
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise ImageError("cannot read file: permission denied (this user may not read it; ask IT)") from None
    except IsADirectoryError:
        raise ImageError(f"cannot read file: {path} is a folder, not a file") from None
    except FileNotFoundError:
        raise ImageError(f"cannot read file: {path} does not exist") from None
    except OSError as e:
        raise ImageError(f"cannot read file: {e.strerror or e}") from None
    if not path.is_file():
        raise ImageError(f"cannot read file: {path} is not a regular file")
    if is_dicom(path):
        return _load_dicom(path, max_pixels, model_size, display)
    model_img = read_image(path, max_pixels, reduce_for=model_size) if model_size else None
    if model_img is not None and (not display or REDUCED_FROM not in model_img.info):
        img = model_img
    else:
        img = read_image(path, max_pixels)
    gray = to_gray(img)
    model_gray = gray if model_img is None or model_img is img else to_gray(model_img)
    meta = ImageMeta(
        frames=int(getattr(img, "n_frames", 1)),
        colourfulness=colourfulness(img) if img.mode in COLOUR_MODES else None,
    )
    return LoadedImage(path, gray, img if model_img is None else model_img, img.format or "image", model_gray, meta)


def model_scale(values: np.ndarray, full_range: tuple[float, float], invert: bool = False, step: int = 1) -> np.ndarray:
    """Steps 2 and 3 of the DICOM rule: ``values`` (modality LUT output) → [0, 1] between
    ``MODEL_PERCENTILES`` (over ``full_range`` when those are equal); ``invert`` for MONOCHROME1.
    ``step``: the percentiles are taken over every ``step``-th pixel of each row and column."""
    lo, hi = (float(v) for v in np.percentile(values[::step, ::step], MODEL_PERCENTILES))
    if not hi > lo:
        lo, hi = full_range
    return _scale(values, lo, hi, invert)


def _scale(values: np.ndarray, lo: float, hi: float, invert: bool) -> np.ndarray:
    # Inverted as (hi - v), not 1 - (v - lo): in float64 before rounding, so that a MONOCHROME1 copy
    # (stored top - v) and its MONOCHROME2 original give bit-identical float32 arrays.
    out = (hi - values) if invert else (values - lo)
    return np.clip(out / (hi - lo), 0.0, 1.0).astype(np.float32)


def _output_range(ds) -> tuple[float, float]:
    """The value range of the modality-LUT output (PS3.3 C.11.1), which windowing also maps onto."""
    if ds.get("ModalityLUTSequence"):
        return 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    bits = int(ds.BitsStored)
    lo, hi = (
        (0, 2**bits - 1) if int(ds.get("PixelRepresentation", 0)) == 0 else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    )
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        lo, hi = sorted((lo * float(slope) + float(intercept), hi * float(slope) + float(intercept)))
    return float(lo), float(hi)


def _stored_window(ds, lo: float, hi: float) -> tuple[float, float] | None:
    """The file's first VOI window as (level, width) fractions of [lo, hi] (module docstring); None if none."""
    from pydicom.multival import MultiValue
    from pydicom.pixels import apply_voi_lut

    span = hi - lo
    if ds.get("VOILUTSequence"):
        desc = ds.VOILUTSequence[0].LUTDescriptor
        entries, first = int(desc[0]) or 65536, int(desc[1])
        if int(ds.get("PixelRepresentation", 0)) == 1 and first > 32767:
            first -= 65536  # the first mapped value is signed when the pixels are
        ramp = np.arange(first, first + entries, dtype=np.int64)
        try:
            out = np.asarray(apply_voi_lut(ramp, ds, index=0), dtype=np.float64)
        except Exception as e:  # pydicom raises many types for a malformed table
            raise _BadWindow(f"its VOI LUT cannot be applied ({str(e).splitlines()[0]})") from None
        if out.max() <= out.min():
            return None
        bottom = int(np.argmax(out > out.min())) - 1  # the last input at the lowest output before the rise
        top = int(np.argmax(out >= out.max()))  # the first input at the highest output
        if top <= bottom:
            return None  # a falling (inverting) table: no linear window shows it; open at the full range
        low, high = first + max(bottom, 0), first + top
        return ((low + high) / 2 - lo) / span, (high - low) / span
    if "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            centre, width = (float(v[0] if isinstance(v, MultiValue) else v) for v in (ds.WindowCenter, ds.WindowWidth))
        except (TypeError, ValueError, IndexError):
            raise _BadWindow(
                f"its stored window (centre {ds.WindowCenter!r}, width {ds.WindowWidth!r}) is not a number"
            ) from None
        if not (np.isfinite(centre) and np.isfinite(width)):
            raise _BadWindow(f"its stored window (centre {centre:g}, width {width:g}) is not finite")
        if width <= 0:
            raise _BadWindow(f"its stored window width is {width:g} (must be above 0)")
        return (centre - lo) / span, width / span
    return None


class _BadWindow(ValueError):
    """A stored VOI window that cannot be used; the image opens at its full range and says why."""


def _text(ds, keyword: str) -> str | None:
    value = ds.get(keyword)
    return (str(value).strip() or None) if value is not None else None


def reduction(shape: tuple[int, ...], model_size: int | None) -> int:
    """The integer factor a large grayscale DICOM's model input is box-reduced by: the largest that keeps
    every side at least ``DRAFT_MARGIN × model_size`` (as a reduced JPEG decode does); 1 for no reduction."""
    if not model_size:
        return 1
    return max(1, min(shape[:2]) // (DRAFT_MARGIN * model_size))


def _load_dicom(path: Path, max_pixels: int, model_size: int | None = None, display: bool = True) -> LoadedImage:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut

    if path.stat().st_size == 0:
        raise ImageError("empty file (0 bytes)")
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        raise ImageError("not a DICOM file (no DICM preamble or readable header)") from None
    except Exception as e:  # pydicom raises many types for damaged headers
        raise ImageError(f"DICOM header is corrupt or truncated ({e})") from None
    if "PixelData" not in ds:
        raise ImageError("DICOM file holds no image (no Pixel Data)")
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    if rows * cols > max_pixels:
        raise ImageError(f"image too large: {cols}x{rows} pixels (limit {max_pixels:,})")
    if min(rows, cols) < MIN_SIDE:
        raise ImageError(f"image too small: {cols}x{rows} (minimum side {MIN_SIDE} px)")
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2", "RGB"):
        raise ImageError(
            f"unsupported DICOM photometric interpretation {photometric!r}: expected MONOCHROME1, MONOCHROME2 or RGB"
        )
    try:
        arr = ds.pixel_array
    except Exception as e:  # missing decoder, truncated pixel data, bad transfer syntax
        raise ImageError(f"DICOM pixel data cannot be decoded ({str(e).splitlines()[0]})") from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        arr = arr[0]  # a radiograph is one frame; show the first
    meta = ImageMeta(
        modality=_text(ds, "Modality"),
        body_part=_text(ds, "BodyPartExamined"),
        view_position=_text(ds, "ViewPosition"),
        photometric=photometric,
        frames=frames,
        bits_stored=int(ds.get("BitsStored", 0) or 0) or None,
    )
    if photometric == "RGB":
        if arr.ndim != 3 or arr.shape[-1] != 3:
            raise ImageError(f"DICOM says RGB but its pixels have shape {arr.shape}")
        top = float(2 ** int(ds.BitsStored) - 1)
        rgb = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
        gray = to_gray(rgb)
        meta = dataclasses.replace(meta, colourfulness=colourfulness(rgb))
        return LoadedImage(path, gray, Image.fromarray(gray), "dicom", gray, meta)
    if arr.ndim != 2:
        raise ImageError(f"unsupported DICOM pixel layout {arr.shape}: expected one grayscale frame")
    lo, hi = _output_range(ds)
    if hi <= lo:
        raise ImageError("DICOM pixel value range is empty (bad Bits Stored or rescale)")
    values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    invert = photometric == "MONOCHROME1"  # 0 = white in MONOCHROME1
    k = reduction(values.shape, model_size)
    model_gray = model_scale(values, (lo, hi), invert, step=k)
    gray = _scale(values, lo, hi, invert) if display or k == 1 else None
    if k > 1:  # reduced once, early: the model's resize then starts from ~2x its size, not the full film
        model_gray = np.asarray(Image.fromarray(model_gray, mode="F").reduce(k), dtype=np.float32)
        gray = model_gray if gray is None else gray
    try:
        window = _stored_window(ds, lo, hi)
    except _BadWindow as e:
        window = None
        meta = dataclasses.replace(meta, window_problem=f"{e}: shown at the full range")
    if invert and window is not None:
        window = (1.0 - window[0], window[1])
    return LoadedImage(path, gray, Image.fromarray(model_gray), "dicom", model_gray, meta, window)
