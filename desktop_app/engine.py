"""Local inference on a verified model package (onnxruntime + numpy; no torch).

``Engine`` refuses a package whose files do not match its card, or whose model does not reproduce
the card's reference probabilities on the shipped reference image: a model that loads but answers
differently from what the hub exported is never used.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np

from contract.inference import OnnxModel
from contract.package import POSITIVE, VARIANT_FILES, VARIANTS, ModelPackage, PackageError
from contract.preprocess import PreprocessSpec, normalize, resize_gray
from desktop_app.images import LoadedImage, load_image

logger = logging.getLogger(__name__)


class EngineError(RuntimeError):
    """A model package the app refuses to use; the message says why."""


@dataclasses.dataclass(frozen=True)
class Prediction:
    label: str
    probability: float  # calibrated P(PNEUMONIA)
    threshold: float
    model_version: int
    created_at: str  # the model's creation time (card)
    cam: np.ndarray  # (h, w) in [0, 1], h = w = size / 32; not upsampled


class Engine:
    """A loaded, self-checked model package; ``predict`` turns a ``LoadedImage`` into a ``Prediction``."""

    def __init__(self, package_dir: str | os.PathLike, variant: str = "fp32", threads: int | None = None):
        if variant not in VARIANTS:
            raise EngineError(f"Invalid model variant {variant!r}. Supported: {', '.join(VARIANTS)}")
        try:
            self.package = ModelPackage.load(package_dir)
        except PackageError as e:
            raise EngineError(f"Model package refused: {e}") from None
        card = self.package.card
        self.variant = "int8" if variant == "int8" and VARIANT_FILES["int8"] in card["files"] else "fp32"
        try:
            self.spec = PreprocessSpec.from_dict(card["preprocessing"])
            self.threshold = float(card["threshold"])
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
        key = "probabilities_int8" if self.variant == "int8" and "probabilities_int8" in ref else "probabilities"
        try:
            expected = np.asarray(ref[key], dtype=np.float64)
            tol = float(ref.get("tolerance", 1e-4))
            got, _ = self._probabilities(load_image(self.package.path(ref["file"])))
        except Exception as e:  # a broken reference entry or image is a broken package
            raise EngineError(f"Model package refused: reference check could not run ({e})") from None
        diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
        if not diff <= tol:
            raise EngineError(
                f"Model package refused: version {self.version} ({self.variant}) gives "
                f"{np.round(got, 6).tolist()} on its reference image, the card expects "
                f"{expected.tolist()} (tolerance {tol})"
            )

    def _probabilities(self, image: LoadedImage) -> tuple[np.ndarray, np.ndarray]:
        # ``image.gray`` is ``to_gray`` of the decoded image: the same tensor as ``preprocess(image.pil)``
        # without converting the image a second time.
        out = self.model.run(normalize(resize_gray(image.gray, self.spec.size), self.spec)[None])
        return out["probabilities"][0].astype(np.float64), out["cam"][0]

    def predict(self, image: LoadedImage) -> Prediction:
        """Label, calibrated P(PNEUMONIA) against the card's operating threshold, and the raw CAM."""
        probs, cam = self._probabilities(image)
        p = float(probs[self._positive])
        label = POSITIVE if p >= self.threshold else next(c for c in self.classes if c != POSITIVE)
        return Prediction(label, p, self.threshold, self.version, self.created_at, cam)
