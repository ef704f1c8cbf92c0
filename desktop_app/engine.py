"""Local inference on a verified model package (onnxruntime + numpy; no torch).

``Engine`` refuses a package whose files do not match its card, whose model does not reproduce the
card's reference probabilities and OOD score on the shipped reference image, or whose outputs are
not finite on synthetic images: a model that loads but answers differently from what the hub
exported is never used.

``predict`` also says whether the image is one the model is fit to judge (``Prediction.suitable``):
first the cheap checks of ``desktop_app.suitability`` (DICOM modality, body part, view, colour,
size, contrast), then the model's own OOD score against the card's threshold. An unsuitable
image keeps the model's numbers (for the expert setting that shows them, clearly marked) but has
no verdict. An output that is NaN or infinite is a ``PredictionError`` for that image, never a label.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np

from contract.inference import OnnxModel, check_finite, non_finite_outputs
from contract.package import POSITIVE, VARIANT_FILES, VARIANTS, ModelPackage, PackageError
from contract.preprocess import PreprocessSpec, normalize, prepare_gray
from desktop_app.images import LoadedImage, load_image
from desktop_app.suitability import precheck

logger = logging.getLogger(__name__)


class EngineError(RuntimeError):
    """A model package the app refuses to use; the message says why."""


class PredictionError(ValueError):
    """The model gave no usable answer for this image (an output that is NaN or infinite)."""


ATYPICAL = "atypical"
ATYPICAL_REASON = "unlike the images this model was trained on — result withheld"
REFERENCE_OOD_TOLERANCE = 1e-2  # relative: the OOD score is a sum of squares over 768 features


@dataclasses.dataclass(frozen=True)
class Prediction:
    label: str  # the model's label; only a verdict when ``suitable``
    probability: float  # calibrated P(PNEUMONIA)
    threshold: float
    model_version: int
    created_at: str  # the model's creation time (card)
    cam: np.ndarray  # (h, w) PNEUMONIA evidence in calibrated log-odds, h = w = size / 32; not upsampled
    cam_scale: float = 1.0  # the card's full-colour point of the heat map (log-odds)
    variant: str = "fp32"
    operating_point: str = "pooled"  # whose temperature and threshold: a site of the card's, or pooled
    ood: float = 0.0  # the model's OOD score (1 = a typical validation image)
    ood_threshold: float = float("inf")
    suitable: bool = True
    reason_code: str | None = None  # why not suitable: a ``desktop_app.suitability`` code or ``ATYPICAL``
    reason: str | None = None  # the one-line reason a radiologist reads

    @property
    def verdict(self) -> str | None:
        """The label to show and count, or None when the result is withheld."""
        return self.label if self.suitable else None


class Engine:
    """A loaded, self-checked model package; ``predict`` turns a ``LoadedImage`` into a ``Prediction``."""

    def __init__(
        self, package_dir: str | os.PathLike, variant: str = "fp32", threads: int | None = None, site: str | None = None
    ):
        """``site``: this clinic's site (admin config); its operating point from the card is used when
        the card has one, the pooled temperature and threshold otherwise (``operating_point`` says)."""
        if variant not in VARIANTS:
            raise EngineError(f"Invalid model variant {variant!r}. Supported: {', '.join(VARIANTS)}")
        try:
            self.package = ModelPackage.load(package_dir, variant=variant)  # may hold only that variant
        except PackageError as e:
            raise EngineError(f"Model package refused: {e}") from None
        card = self.package.card
        self.variant = "int8" if variant == "int8" and VARIANT_FILES["int8"] in card["files"] else "fp32"
        try:
            self.spec = PreprocessSpec.from_dict(card["preprocessing"])
            self.threshold = float(card["threshold"])
            point = card.get("operating_points", {}).get(site) if site else None
            self.operating_point = site if point else "pooled"
            # the pooled temperature is inside the graph's probabilities; a site's is applied to the logits
            self.site_temperature = float(point["temperature"]) if point else None
            if point:
                self.threshold = float(point["threshold"])
            suitability = card["suitability"]
            self.ood_threshold = float(
                suitability.get("threshold_int8")
                if self.variant == "int8" and suitability.get("threshold_int8")
                else suitability["threshold"]
            )
            self.cam_scale = float(card["cam"]["scale"])
            self.classes = list(card["classes"])
            self._positive = self.classes.index(POSITIVE)
            self.model = OnnxModel(self.package.model_file(self.variant), threads)
        except (KeyError, TypeError, ValueError) as e:
            raise EngineError(f"Model package refused: {e}") from None
        self.self_check()
        logger.info("Model version %d (%s) loaded from %s", self.version, self.variant, self.package.directory)

    @property
    def version(self) -> int:
        return self.package.version

    @property
    def created_at(self) -> str:
        return str(self.package.card["created_at"])

    def self_check(self) -> None:
        """The model reproduces the card's reference probabilities on reference.png, within tolerance."""
        ref = self.package.card["reference"]
        int8 = self.variant == "int8" and "probabilities_int8" in ref
        key = "probabilities_int8" if int8 else "probabilities"
        try:
            expected = np.asarray(ref[key], dtype=np.float64)
            expected_ood = float(ref["ood_int8" if int8 else "ood"])
            tol = float(ref.get("tolerance", 1e-4))
            out = self._outputs(self.load(self.package.path(ref["file"]), display=False))
        except Exception as e:  # a broken reference entry or image is a broken package
            raise EngineError(f"Model package refused: reference check could not run ({e})") from None
        got = out["probabilities"][0].astype(np.float64)
        diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
        if not diff <= tol:
            raise EngineError(
                f"Model package refused: version {self.version} ({self.variant}) gives "
                f"{np.round(got, 6).tolist()} on its reference image, the card expects "
                f"{expected.tolist()} (tolerance {tol})"
            )
        ood = float(out["ood"][0])
        if not abs(ood - expected_ood) <= REFERENCE_OOD_TOLERANCE * max(abs(expected_ood), 1e-6):
            raise EngineError(
                f"Model package refused: version {self.version} ({self.variant}) gives OOD score {ood:.6g} on "
                f"its reference image, the card expects {expected_ood:.6g}"
            )
        try:
            check_finite(self.model, self.spec)
        except ValueError as e:
            raise EngineError(f"Model package refused: {e}") from None

    def _outputs(self, image: LoadedImage) -> dict[str, np.ndarray]:
        # ``model_gray`` is what the model sees: ``to_gray`` of a raster file (the same tensor as
        # ``preprocess(image.pil)`` without converting the image again), the VOI-independent rule for DICOM
        return self.model.run(normalize(prepare_gray(image.model_gray, self.spec), self.spec)[None])

    def load(self, path: str | os.PathLike, display: bool = True) -> LoadedImage:
        """Open ``path`` for this model: a large image reduced early to ~2x the model's input, as the
        hub's preprocessing does (``desktop_app.images.load_image``); ``display=False`` when nobody will
        look at the pixels (triage, the command line), which skips the full-resolution decode."""
        return load_image(path, model_size=self.spec.size, display=display)

    def predict(self, image: LoadedImage) -> Prediction:
        """Label, calibrated P(PNEUMONIA) against the card's threshold, the CAM, and whether it is a verdict.

        Raises ``PredictionError`` when an output is NaN or infinite.
        """
        out = self._outputs(image)
        bad = non_finite_outputs(out)[0]
        if bad:
            raise PredictionError(
                f"the model gave no valid result for this image ({bad}: NaN or infinite); nothing was recorded"
            )
        if self.site_temperature is None:
            p = float(out["probabilities"][0][self._positive])
        else:  # softmax(logits / T_site), in float64
            z = out["logits"][0].astype(np.float64) / self.site_temperature
            e = np.exp(z - z.max())
            p = float(e[self._positive] / e.sum())
        label = POSITIVE if p >= self.threshold else next(c for c in self.classes if c != POSITIVE)
        ood = float(out["ood"][0])
        unsuitable = precheck(image)
        code, reason = (unsuitable.code, unsuitable.reason) if unsuitable else (None, None)
        if unsuitable is None and ood > self.ood_threshold:
            code, reason = ATYPICAL, ATYPICAL_REASON
        return Prediction(
            label,
            p,
            self.threshold,
            self.version,
            self.created_at,
            out["cam"][0],
            cam_scale=self.cam_scale,
            variant=self.variant,
            operating_point=self.operating_point,
            ood=ood,
            ood_threshold=self.ood_threshold,
            suitable=code is None,
            reason_code=code,
            reason=reason,
        )
