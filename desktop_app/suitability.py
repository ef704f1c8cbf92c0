"""Cheap checks before the model: is this image one the model is fit to read (a frontal chest radiograph)?

``precheck(image)`` returns ``None`` when nothing argues against reading the image, or the first
``Unsuitable(code, reason)`` found, checked in the order of ``CODES``:

* ``modality`` — a DICOM whose Modality is not a projection radiograph. CR, DX, DR (retired, still
  written) and RG (digitised film) pass, as does a DICOM with no Modality; CT, MR, US, NM, PT, MG, XA, RF,
  OT, SC and anything else are refused.
* ``body_part`` — a DICOM Body Part Examined that is not the chest. A value containing CHEST, THORA
  (THORAX, THORACIC), LUNG, TORAX, TORACE, PECHO or BRUST passes (case-insensitive), as do an absent,
  empty, UNKNOWN or OTHER one; any other (HEAD, ABDOMEN, HAND, ...) is refused.
* ``lateral`` — View Position LL, RL or anything containing LAT (LAT, LATERAL, XTABLE LAT): the model
  reads frontal (PA/AP) views only. Decubitus (LLD/RLD) and oblique views are not refused here.
* ``colour`` — an RGB image (PNG, JPEG or DICOM) with real colour: Hasler & Süsstrunk colourfulness
  (``contract.suitability.colourfulness``) above ``MAX_COLOURFULNESS``.
* ``too_small`` — shorter side under ``MIN_SIDE`` px.
* ``low_contrast`` — 98 % of the pixels within ``MIN_CONTRAST`` of the gray range: the spread between
  the 1st and 99th percentiles of the image's full-range gray (``LoadedImage.gray``: for a DICOM, the
  modality LUT output over the range its Bits Stored allows, not the percentile-stretched model input,
  which would make any noise look contrasted). A blank film, an all-white overexposure.

Thresholds, measured once (docs/benchmarks.md, "Suitability: cheap checks before the model") over every
image of sample_data/chest_xray (300), the Kermany train+val copies (5,232) and site B (NIH, 613):

* colourfulness: 0.0 for every X-ray, also re-encoded as an RGB JPEG (4:2:0 chroma); skimage photographs
  astronaut 72, coffee 76, chelsea 38, rocket 37, the least colourful (hubble_deep_field) 11.4; an X-ray
  with Gaussian noise of σ = 4 levels in each channel 7.3, with a light sepia tint 12.7 →
  ``MAX_COLOURFULNESS = 10``;
* shorter side: 128 px at the smallest (the bundled sample, downscaled for tests), 256 px in both real
  sets; the model reads 224 px → ``MIN_SIDE = 112`` (half the model's input: below it the model sees an
  image blown up more than twice);
* contrast spread: 0.333 at the lowest (0.42 at the 0.1th percentile, median 0.79–0.84) →
  ``MIN_CONTRAST = 0.05`` (13 of 255 gray levels), more than six times below any real X-ray.

A gray photograph of something else passes these checks (skimage's camera, moon): they catch the
wrong kind of file, not the wrong picture; the model's own out-of-distribution score is for that.
Everything here reads header fields and a downsampled copy: milliseconds per image. The last three
checks live in ``contract.suitability``, which the hub's batch validator runs on every image too.
"""

from __future__ import annotations

import math

from contract.suitability import (
    MAX_COLOURFULNESS,
    MIN_CONTRAST,
    MIN_SIDE,
    Unsuitable,
    contrast_spread,
    image_problem,
)
from desktop_app.images import LoadedImage

__all__ = ["CODES", "MAX_COLOURFULNESS", "MIN_CONTRAST", "MIN_SIDE", "Unsuitable", "occupied_spread", "precheck"]
CODES = ("modality", "body_part", "lateral", "colour", "too_small", "low_contrast")  # in the order checked

RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "DR", "RG"})
MODALITY_NAMES = {
    "CT": "computed tomography",
    "MR": "magnetic resonance",
    "US": "ultrasound",
    "NM": "nuclear medicine",
    "PT": "positron emission tomography",
    "MG": "mammography",
    "XA": "X-ray angiography",
    "RF": "radiofluoroscopy",
    "IO": "intra-oral radiography",
    "PX": "panoramic dental radiography",
    "OT": "other",
    "SC": "secondary capture",
    "SM": "slide microscopy",
    "XC": "external camera photography",
    "ES": "endoscopy",
    "OP": "ophthalmic photography",
    "OPT": "optical coherence tomography",
    "BMD": "bone densitometry",
}
CHEST_WORDS = ("CHEST", "THORA", "LUNG", "TORAX", "TORACE", "PECHO", "BRUST")
UNSPECIFIED_BODY_PARTS = frozenset({"", "UNKNOWN", "OTHER"})
LATERAL_VIEWS = frozenset({"LL", "RL"})


def precheck(image: LoadedImage) -> Unsuitable | None:
    """The first reason (in ``CODES`` order) the model is not fit to read ``image``; None if there is none."""
    meta = image.meta
    modality = (meta.modality or "").strip().upper()
    if modality and modality not in RADIOGRAPH_MODALITIES:
        name = MODALITY_NAMES.get(modality)
        return Unsuitable(
            "modality",
            f"not a chest X-ray radiograph: DICOM modality {modality}" + (f" ({name})" if name else ""),
        )
    body_part = (meta.body_part or "").strip().upper()
    if body_part not in UNSPECIFIED_BODY_PARTS and not any(w in body_part for w in CHEST_WORDS):
        return Unsuitable("body_part", f"not a chest image: body part {body_part}")
    view = (meta.view_position or "").strip().upper()
    if view in LATERAL_VIEWS or "LAT" in view:
        return Unsuitable("lateral", f"lateral view ({view}): this model reads frontal (PA/AP) chest X-rays")
    # colour, size and contrast: the checks the hub's validator makes too (contract.suitability)
    return image_problem(meta.colourfulness, image.size, occupied_spread(image))


def occupied_spread(image: LoadedImage) -> float:
    """``contrast_spread`` of ``image.gray``, for a DICOM over the bits its values occupy (at least 8).

    Detectors often write 12-bit values with Bits Stored 16: over the declared range a real chest film
    then spans about 6 %, over the 12 bits it occupies the same as any X-ray. A blank film stays blank
    whatever its bit depth, since at least 8 bits are always counted.
    """
    spread = contrast_spread(image.gray)
    bits = image.meta.bits_stored
    if bits and bits > 8:
        g = image.gray
        used = (1.0 - float(g.min())) if image.meta.photometric == "MONOCHROME1" else float(g.max())
        full = 2.0**bits - 1.0
        occupied = 2.0 ** max(8, math.ceil(math.log2(max(used, 0.0) * full + 1.0))) - 1.0
        spread *= full / occupied
    return min(spread, 1.0)
