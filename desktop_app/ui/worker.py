"""Off-GUI-thread prediction: decode, infer, render the heat map, audit; report only through signals."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Signal

from contract.preprocess import ImageError
from desktop_app.engine import Engine, Prediction
from desktop_app.images import LoadedImage, load_image
from desktop_app.ui.heatmap import gray_levels, overlay_rgba, overlay_size

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ViewResult:
    """Everything the window needs to show one file, computed in the worker."""

    request: int  # the window's request number, so a stale result can be dropped
    path: Path
    image: LoadedImage
    display: np.ndarray  # (H, W) uint16 gray levels for window/level (heatmap.gray_levels)
    overlay: np.ndarray  # (h, w, 4) uint8 RGBA, at most OVERLAY_MAX_SIDE; the window scales it onto the image
    prediction: Prediction
    audit_row: dict | None


def failure_reason(e: BaseException) -> str:
    """A one-line, user-facing reason for a file that could not be read or predicted."""
    if isinstance(e, ImageError):
        return str(e)
    if isinstance(e, OSError):
        return f"cannot read file: {e.strerror or e}"
    return f"prediction failed ({type(e).__name__}: {e})"


class WorkerSignals(QObject):
    finished = Signal(object)  # ViewResult
    failed = Signal(int, str)  # request, reason


class PredictWorker(QRunnable):
    """Runs in a QThreadPool; touches no widget, only emits ``signals.finished`` / ``signals.failed``."""

    def __init__(self, request: int, path: str | os.PathLike, engine: Engine, audit=None):
        super().__init__()
        self.request, self.path, self.engine, self.audit = request, Path(path), engine, audit
        self.signals = WorkerSignals()
        # The window keeps ``signals`` alive; the runnable itself may be deleted by the pool.
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            image = load_image(self.path)
            prediction = self.engine.predict(image)
            display = gray_levels(image.gray)
            overlay = overlay_rgba(prediction.cam, overlay_size(image.size))
            row = self.audit.record(prediction, self.path) if self.audit is not None else None
        except Exception as e:  # every failure becomes a message; the worker thread never dies loudly
            logger.warning("Cannot show %s: %s", self.path, e, exc_info=not isinstance(e, (ImageError, OSError)))
            self.signals.failed.emit(self.request, failure_reason(e))
            return
        self.signals.finished.emit(ViewResult(self.request, self.path, image, display, overlay, prediction, row))
