"""The app's one job runner (``Job``), and the viewer's job: decode, infer, render the heat map, audit.

The viewer's job (``PredictWorker``) shows a clinic-resolution JPEG progressively: the model judges the
reduced-scale decode the hub trains on (``contract.preprocess``, "Reduced decode"), and the result is
reported (``finished``) with that reduced image as a preview the window draws at the file's full size;
only then is every pixel decoded for display and reported (``displayed``). The radiologist waits for the
reduced decode and the model, not for the full decode. Other files (PNG, small JPEGs, DICOM, whose one
decode serves both) are reported once, in full, through ``finished``.

Every piece of work off the GUI thread is a ``Job`` (prediction here, triage, the labelled-batch
export, model updates): it runs on a ``QThreadPool`` thread, touches no widget, and reports only
through its ``signals`` object, which the GUI connects to and keeps alive until the job has reported.
An exception in a job never kills the pool thread silently: it goes to ``failed`` (logged, and
reported to the GUI as each job decides).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Signal

from contract.preprocess import REDUCED_FROM, ImageError
from desktop_app.engine import Engine, Prediction, PredictionError
from desktop_app.images import LoadedImage, is_dicom, load_image
from desktop_app.ui.format import error_text
from desktop_app.ui.heatmap import gray_levels, overlay_rgba, overlay_size

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ViewResult:
    """Everything the window needs to show one file, computed in the worker."""

    request: int  # the window's request number, so a stale result can be dropped
    path: Path
    image: LoadedImage
    display: np.ndarray  # (h, w) uint16 gray levels for window/level (heatmap.gray_levels) of ``image.gray``
    overlay: np.ndarray  # (h, w, 4) uint8 RGBA, at most OVERLAY_MAX_SIDE; the window scales it onto the image
    prediction: Prediction
    audit_row: dict | None
    size: tuple[int, int] | None = None  # the file's (width, height); None: ``image.size``
    preview: bool = False  # ``display`` is the reduced decode; the full one follows (``WorkerSignals.displayed``)

    def __post_init__(self) -> None:
        if self.size is None:
            object.__setattr__(self, "size", self.image.size)

    def with_display(self, image: LoadedImage, display: np.ndarray) -> ViewResult:
        """This result with the full-resolution decode in place of the preview."""
        full = dataclasses.replace(self.image, gray=image.gray)  # the model's input stays what was judged
        return dataclasses.replace(self, image=full, display=display, preview=False)


def failure_reason(e: BaseException) -> str:
    """A one-line, user-facing reason for a file that could not be read or predicted."""
    if isinstance(e, (ImageError, PredictionError)):
        return error_text(str(e))  # in the UI's language where the reason is one the app knows
    if isinstance(e, OSError):
        return f"cannot read file: {e.strerror or e}"
    return f"prediction failed ({type(e).__name__}: {e})"


class Job(QRunnable):
    """``run()`` calls ``work()``; an exception goes to ``failed(error)``; ``done()`` runs last, always."""

    def __init__(self, signals: QObject, auto_delete: bool = True):
        super().__init__()
        self.signals = signals
        self.setAutoDelete(auto_delete)  # False when the GUI keeps the job itself (to cancel it)

    def run(self) -> None:
        try:
            self.work()
        except Exception as e:
            self.failed(e)
        finally:
            self.done()

    def work(self) -> None:
        raise NotImplementedError

    def failed(self, error: Exception) -> None:
        logger.error("%s failed", type(self).__name__, exc_info=error)

    def done(self) -> None:
        pass


class CallSignals(QObject):
    done = Signal(object)  # the call's result, or the exception it raised


class Call(Job):
    """A job that calls ``fn()`` and reports its result (or the exception it raised) as ``signals.done``."""

    def __init__(self, fn, what: str = "job"):
        super().__init__(CallSignals())
        self.fn, self.what = fn, what

    def work(self) -> None:
        self.signals.done.emit(self.fn())

    def failed(self, error: Exception) -> None:
        logger.error("%s failed", self.what, exc_info=error)
        self.signals.done.emit(error)


class WorkerSignals(QObject):
    finished = Signal(object)  # ViewResult (a preview when ``preview`` is set)
    failed = Signal(int, str)  # request, reason
    displayed = Signal(int, object, object)  # request, LoadedImage in full, its gray levels (after a preview)
    displayFailed = Signal(int, str)  # request, why the full decode failed (the preview stays)


class PredictWorker(Job):
    """The viewer's job for one file: ``signals.finished(ViewResult)`` or ``signals.failed(request, reason)``."""

    def __init__(self, request: int, path: str | os.PathLike, engine: Engine, audit=None, superseded=None):
        super().__init__(WorkerSignals())  # the window keeps ``signals`` alive; the pool deletes the job
        self.request, self.path, self.engine, self.audit = request, Path(path), engine, audit
        self.superseded = superseded or (lambda: False)  # True once the user has moved on: skip the full decode

    def work(self) -> None:
        image = self.engine.load(self.path, display=is_dicom(self.path))  # a DICOM's display scale differs
        reduced_from = image.pil.info.get(REDUCED_FROM) if image.kind != "dicom" else None
        size = tuple(reduced_from) if reduced_from else image.size
        prediction = self.engine.predict(image)
        display = gray_levels(image.gray)
        overlay = overlay_rgba(prediction.cam, overlay_size(size), prediction.cam_scale)
        row = self.audit.record(prediction, self.path) if self.audit is not None else None
        result = ViewResult(self.request, self.path, image, display, overlay, prediction, row, size, bool(reduced_from))
        self.signals.finished.emit(result)
        if result.preview:
            self._full_display()

    def _full_display(self) -> None:
        """After a preview: every pixel, for display only (the result stands whatever happens here)."""
        if self.superseded():
            self.signals.displayFailed.emit(self.request, "another file was opened")
            return
        try:
            full = load_image(self.path)
            levels = gray_levels(full.gray)
        except Exception as e:  # the result is already shown: a display failure must not replace it
            logger.warning(
                "Cannot decode %s at full resolution: %s",
                self.path,
                e,
                exc_info=e if not isinstance(e, (ImageError, OSError)) else None,
            )
            self.signals.displayFailed.emit(self.request, failure_reason(e))
            return
        self.signals.displayed.emit(self.request, full, levels)

    def failed(self, error: Exception) -> None:  # every failure becomes a message in the panel
        logger.warning(
            "Cannot show %s: %s",
            self.path,
            error,
            exc_info=error if not isinstance(error, (ImageError, OSError)) else None,
        )
        self.signals.failed.emit(self.request, failure_reason(error))
