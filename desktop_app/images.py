"""Open an X-ray file (PNG, JPEG or DICOM) for display and for the model (numpy, Pillow, pydicom; no torch).

Raster files go through ``contract.preprocess.read_image`` so the app decodes exactly as the hub does.
DICOM goes through pydicom: modality LUT (rescale) → VOI LUT (window) → MONOCHROME1 inversion →
[0, 1] over the range the standard defines for that output (not min-max, so an 8-bit DICOM of a
JPEG's pixels gives the JPEG's values). Every failure is an ``ImageError`` with a one-line reason.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from PIL import Image

from contract.preprocess import MAX_PIXELS, MIN_SIDE, ImageError, read_image, to_gray

DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"}) | DICOM_SUFFIXES  # what the viewer and triage open


@dataclasses.dataclass(frozen=True)
class LoadedImage:
    """A decoded image: ``gray`` (H, W) float32 in [0, 1] for display, ``pil`` for ``preprocess``."""

    path: Path
    gray: np.ndarray
    pil: Image.Image
    kind: str  # "dicom" or the Pillow format name ("PNG", "JPEG", ...)

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


def load_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Decode ``path`` (PNG/JPEG/DICOM); raise ``ImageError`` saying why it cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"cannot read file: {path} does not exist or is not a file")
    if is_dicom(path):
        gray = _dicom_gray(path, max_pixels)
        return LoadedImage(path, gray, Image.fromarray(gray), "dicom")
    img = read_image(path, max_pixels)
    return LoadedImage(path, to_gray(img), img, img.format or "image")


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


def _dicom_gray(path: Path, max_pixels: int) -> np.ndarray:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

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
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]  # a radiograph is one frame; show the first
    if photometric == "RGB":
        if arr.ndim != 3 or arr.shape[-1] != 3:
            raise ImageError(f"DICOM says RGB but its pixels have shape {arr.shape}")
        top = float(2 ** int(ds.BitsStored) - 1)
        return to_gray(Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)))
    if arr.ndim != 2:
        raise ImageError(f"unsupported DICOM pixel layout {arr.shape}: expected one grayscale frame")
    lo, hi = _output_range(ds)
    out = apply_modality_lut(arr, ds)
    if ds.get("VOILUTSequence"):
        out = apply_voi_lut(out, ds, index=0)
        lo, hi = 0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        out = apply_voi_lut(out, ds, index=0)  # windowing maps onto the modality output range
    if hi <= lo:
        raise ImageError("DICOM pixel value range is empty (bad Bits Stored or rescale)")
    gray = np.clip((np.asarray(out, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    if photometric == "MONOCHROME1":  # 0 = white in MONOCHROME1
        gray = 1.0 - gray
    return gray
