"""The viewer's main window: image view with zoom and heat map, result panel, off-thread inference.

Longer than most modules: the window's actions, result panel and slots; the image widgets are in
``image_view``, the workers in ``worker``, the dialogs in their own modules.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence, QPixmap, QTransform
from PySide6.QtWidgets import (
    QFileDialog,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop_app.engine import POSITIVE, Engine, Prediction
from desktop_app.images import IMAGE_SUFFIXES
from desktop_app.ui.format import label_text, model_date, percent, reason_text
from desktop_app.ui.heatmap import WL_STEPS, window_lut
from desktop_app.ui.image_view import ZOOM_STEP, ColourBar, ImageView, qimage
from desktop_app.ui.triage import TriageDialog
from desktop_app.ui.worker import PredictWorker, ViewResult

logger = logging.getLogger(__name__)


# a result withheld, or from the previous model
NOTICE_STYLE = "color: #5d4200; background: #fff4ce; border: 1px solid #e0c060; border-radius: 4px; padding: 6px;"


def folder_images(folder: Path) -> list[Path]:
    """The images directly in ``folder`` (what the viewer opens, by suffix), in name order; [] if unreadable."""
    try:
        found = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    except OSError:
        return []
    return sorted((p for p in found if p.is_file()), key=lambda p: (p.name.lower(), p.name))


class MainWindow(QMainWindow):
    """One image at a time: open (dialog, drop, command line), view, predict off-thread, show the result."""

    resultShown = Signal(object)  # ViewResult, after the panel is updated (a preview for a large JPEG)
    displayShown = Signal(object)  # ViewResult, after a preview's full-resolution pixels replace it
    engineChanged = Signal(object)  # Engine, after ``set_engine``
    analysisStarted = Signal(object)  # Path: a file is being analysed; the previous result is gone
    errorShown = Signal(str)  # the message shown for a file that failed

    def __init__(self, engine: Engine, audit=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.engine, self.audit = engine, audit
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one prediction at a time; a newer request supersedes older ones
        self._request = 0
        self._pending: dict[int, object] = {}  # request → WorkerSignals kept alive until delivered
        self._displaying: dict[int, object] = {}  # the same, after a preview, until the full decode reports
        self.files: list[Path] = []
        self.index = -1
        self.current: ViewResult | None = None
        self.error: str | None = None
        self.triage_dialogs: list[TriageDialog] = []
        self.show_withheld = False  # the expert setting (``Settings.show_withheld``), set by ``ui.app``

        self.setWindowTitle(self.tr("PneumoScan"))
        self.setAcceptDrops(True)
        self.resize(1200, 800)

        self.scene = QGraphicsScene(self)
        self.image_item = QGraphicsPixmapItem()
        self.image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.overlay_item = QGraphicsPixmapItem()
        self.overlay_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.overlay_item.setZValue(1)
        self.overlay_item.setVisible(False)
        self.scene.addItem(self.image_item)
        self.scene.addItem(self.overlay_item)
        self.view = ImageView(self.scene)
        self.view.zoomChanged.connect(self._on_zoom)
        self.view.windowDragged.connect(self._on_window_drag)
        self._gray12: np.ndarray | None = None  # the current image at WL_LEVELS levels, for window/level
        self._wl_message = ""  # the last "Window level …" status message, cleared when R resets

        self._build_actions()
        panel = self._build_panel()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.view)
        splitter.addWidget(panel)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setCollapsible(1, False)
        self.setCentralWidget(splitter)

        self.zoom_label = QLabel()
        self.statusBar().addPermanentWidget(self.zoom_label)
        # The model's state (version, offline, update refused…), set by whoever manages updates.
        self.model_status_label = QLabel()
        self.model_status_label.setObjectName("model-status")
        self.statusBar().addPermanentWidget(self.model_status_label)
        self.set_model_status(self.tr("Model version %1").replace("%1", str(engine.version)))
        self.statusBar().showMessage(self.tr("Open a chest X-ray (PNG, JPEG or DICOM) or drop it here."))
        self._show_prediction(None)
        self._update_actions()

    # ----- construction -------------------------------------------------------------------------
    def _action(self, text: str, slot, shortcut=None, checkable: bool = False) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcuts(shortcut if isinstance(shortcut, list) else [shortcut])
        a.setCheckable(checkable)
        (a.toggled if checkable else a.triggered).connect(slot)
        return a

    def _build_actions(self) -> None:
        K = QKeySequence
        self.open_action = self._action(self.tr("&Open…"), self.open_dialog, K(K.StandardKey.Open))
        self.triage_action = self._action(
            self.tr("Open folder for &triage…"), self.open_triage_dialog, K("Ctrl+Shift+O")
        )
        self.quit_action = self._action(self.tr("&Quit"), self.close, K(K.StandardKey.Quit))
        self.next_action = self._action(self.tr("&Next image"), self.next_image, [K("PgDown"), K("N")])
        self.prev_action = self._action(self.tr("&Previous image"), self.previous_image, [K("PgUp"), K("P")])
        self.zoom_in_action = self._action(
            self.tr("Zoom &in"), lambda: self.view.zoom(ZOOM_STEP), [K(K.StandardKey.ZoomIn), K("Ctrl+=")]
        )
        self.zoom_out_action = self._action(
            self.tr("Zoom &out"), lambda: self.view.zoom(1 / ZOOM_STEP), K(K.StandardKey.ZoomOut)
        )
        self.fit_action = self._action(self.tr("&Fit to window"), self.view.fit, [K("Ctrl+0"), K("F")])
        # "1", not Ctrl+1: Ctrl+1 / Ctrl+2 confirm NORMAL / PNEUMONIA here as in the audit log (ui.feedback)
        self.actual_action = self._action(self.tr("&Actual size"), self.view.actual_size, K("1"))
        self.heatmap_action = self._action(self.tr("&Heat map"), self.set_heatmap_visible, K("H"), checkable=True)
        self.wl_reset_action = self._action(self.tr("&Reset window/level"), self.reset_window_level, K("R"))
        self.heatmap_action.blockSignals(True)  # the panel does not exist yet; on by default
        self.heatmap_action.setChecked(True)
        self.heatmap_action.blockSignals(False)

        menu = self.menuBar()
        m = menu.addMenu(self.tr("&File"))
        m.addActions([self.open_action, self.triage_action, self.next_action, self.prev_action])
        m.addSeparator()
        m.addAction(self.quit_action)
        m = menu.addMenu(self.tr("&View"))
        m.addActions([self.zoom_in_action, self.zoom_out_action, self.fit_action, self.actual_action])
        m.addSeparator()
        m.addAction(self.wl_reset_action)
        m.addSeparator()
        m.addAction(self.heatmap_action)
        # Filled by the parts that attach to the window (updates, audit log, settings).
        self.model_menu = menu.addMenu(self.tr("&Model"))
        self.tools_menu = menu.addMenu(self.tr("&Tools"))

        tb = self.addToolBar(self.tr("Main"))
        tb.setObjectName("main-toolbar")
        tb.setMovable(False)
        tb.addActions([self.open_action, self.prev_action, self.next_action])
        tb.addSeparator()
        tb.addActions([self.zoom_out_action, self.zoom_in_action, self.fit_action, self.actual_action])
        tb.addSeparator()
        tb.addAction(self.heatmap_action)

    def _build_panel(self) -> QWidget:
        panel = QWidget()
        panel.setMinimumWidth(280)
        panel.setMaximumWidth(360)
        lay = QVBoxLayout(panel)
        lay.setContentsMargins(12, 12, 12, 12)

        def caption(text: str) -> QLabel:
            w = QLabel(text)
            w.setStyleSheet("color: #666; font-size: 11px;")
            return w

        self.file_label = QLabel()
        self.file_label.setWordWrap(True)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_label = QLabel()
        self.result_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.result_label.setMinimumHeight(48)
        self.withheld_label = QLabel()  # why the model gave no verdict (unsuitable image)
        self.withheld_label.setObjectName("withheld-reason")
        self.withheld_label.setWordWrap(True)
        self.withheld_label.setStyleSheet(NOTICE_STYLE)
        self.withheld_label.setVisible(False)
        self.probability_label = QLabel()
        self.probability_label.setStyleSheet("font-size: 20px; font-weight: bold;")
        self.threshold_label = QLabel()
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(
            "color: #b00020; background: #fdecea; border: 1px solid #f5c2c0; border-radius: 4px; padding: 6px;"
        )
        self.error_label.setVisible(False)

        lay.addWidget(caption(self.tr("File")))
        lay.addWidget(self.file_label)
        lay.addSpacing(8)
        lay.addWidget(caption(self.tr("Model result")))
        lay.addWidget(self.result_label)
        lay.addWidget(self.withheld_label)
        lay.addWidget(caption(self.tr("Calibrated probability of pneumonia")))
        lay.addWidget(self.probability_label)
        lay.addWidget(caption(self.tr("Operating threshold")))
        lay.addWidget(self.threshold_label)
        lay.addWidget(caption(self.tr("Model")))
        lay.addWidget(self.model_label)
        # after a model update: the result shown is the previous model's (``set_engine``)
        self.stale_label = QLabel()
        self.stale_label.setObjectName("stale-result")
        self.stale_label.setWordWrap(True)
        self.stale_label.setStyleSheet(NOTICE_STYLE)
        self.stale_label.setVisible(False)
        self.reanalyse_button = QPushButton()
        self.reanalyse_button.setVisible(False)
        self.reanalyse_button.clicked.connect(self.reanalyse)
        lay.addWidget(self.stale_label)
        lay.addWidget(self.reanalyse_button)
        lay.addWidget(self.error_label)
        # Where the confirm / correct controls go (``desktop_app.ui.feedback``).
        self.feedback_layout = QVBoxLayout()
        lay.addLayout(self.feedback_layout)

        lay.addSpacing(12)
        lay.addWidget(caption(self.tr("Window / level (drag with the right button; R resets)")))
        grid = QGridLayout()
        self.level_slider, self.width_slider = QSlider(Qt.Orientation.Horizontal), QSlider(Qt.Orientation.Horizontal)
        self.level_slider.setRange(0, WL_STEPS)
        self.level_slider.setValue(WL_STEPS // 2)
        self.width_slider.setRange(1, WL_STEPS)
        self.width_slider.setValue(WL_STEPS)
        self.level_slider.setToolTip(self.tr("Level: the gray value at the middle of the window"))
        self.width_slider.setToolTip(self.tr("Width: the range of gray values shown from black to white"))
        for r, (name, slider) in enumerate(
            ((self.tr("Level"), self.level_slider), (self.tr("Width"), self.width_slider))
        ):
            slider.valueChanged.connect(self._apply_window_level)
            grid.addWidget(QLabel(name), r, 0)
            grid.addWidget(slider, r, 1)
        lay.addLayout(grid)

        lay.addSpacing(12)
        lay.addWidget(caption(self.tr("Heat map (H)")))
        row = QHBoxLayout()
        row.addWidget(QLabel(self.tr("Opacity")))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(50)
        self.opacity_slider.setToolTip(self.tr("Heat map opacity"))
        self.opacity_slider.valueChanged.connect(self.set_heatmap_opacity)
        row.addWidget(self.opacity_slider)
        lay.addLayout(row)
        self.colour_bar = ColourBar()
        lay.addWidget(self.colour_bar)
        ends = QHBoxLayout()
        ends.addWidget(caption(self.tr("no evidence (clear)")))
        ends.addStretch(1)
        self.heat_high_label = caption("")
        ends.addWidget(self.heat_high_label)
        lay.addLayout(ends)
        self._show_heat_scale()
        self.set_heatmap_opacity(self.opacity_slider.value())

        lay.addStretch(1)
        self.disclaimer_label = QLabel(self.tr("For investigational use — not a diagnosis"))
        self.disclaimer_label.setWordWrap(True)
        self.disclaimer_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.disclaimer_label.setStyleSheet(
            "font-weight: bold; color: #5d4200; background: #fff4ce;"
            " border: 1px solid #e0c060; border-radius: 4px; padding: 8px;"
        )
        lay.addWidget(self.disclaimer_label)
        return panel

    # ----- state → widgets ----------------------------------------------------------------------
    def _update_actions(self) -> None:
        """The one place that sets every action's enabled state from the window's state."""
        has_image = self.current is not None
        self.next_action.setEnabled(0 <= self.index < len(self.files) - 1)
        self.prev_action.setEnabled(self.index > 0)
        for a in (self.zoom_in_action, self.zoom_out_action, self.fit_action, self.actual_action):
            a.setEnabled(has_image)
        self.heatmap_action.setEnabled(has_image)
        for w in (self.wl_reset_action, self.level_slider, self.width_slider):
            w.setEnabled(has_image)
        self.opacity_slider.setEnabled(has_image and self.heatmap_action.isChecked())

    def _show_heat_scale(self) -> None:
        """The colour bar's scale: fixed per model (the card's), never stretched per image."""
        scale = self.engine.cam_scale
        self.heat_high_label.setText(self.tr("strong evidence of pneumonia"))
        self.colour_bar.setToolTip(
            self.tr(
                "Evidence for pneumonia in each region, on this model's fixed scale: clear where there is none "
                "(or evidence for normal), full colour at +%1 log-odds or more. Not rescaled per image."
            ).replace("%1", f"{scale:.1f}")
        )

    def _show_prediction(self, pred: Prediction | None) -> None:
        self.stale_label.setVisible(False)
        self.reanalyse_button.setVisible(False)
        grey = "font-size: 24px; font-weight: bold; color: #888; border: 1px solid #ccc; border-radius: 4px;"
        if pred is None:
            for w in (self.result_label, self.probability_label, self.threshold_label, self.model_label):
                w.setText("—")
            self.result_label.setStyleSheet(grey)
            self.withheld_label.setVisible(False)
            return
        if not pred.suitable:
            self.result_label.setText(self.tr("No result"))
            self.result_label.setStyleSheet(grey.replace("#888", "#5d4200"))
            self.withheld_label.setText(self.tr("Withheld: %1").replace("%1", reason_text(pred)))
            self.withheld_label.setVisible(True)
            self.probability_label.setText(
                self.tr("%1, %2 — withheld, not to be relied on")
                .replace("%1", label_text(pred.label))
                .replace("%2", percent(pred.probability))
                if self.show_withheld
                else "—"
            )
        else:
            self.withheld_label.setVisible(False)
            colour = ("#b00020", "#fdecea") if pred.label == POSITIVE else ("#1b5e20", "#e8f5e9")
            self.result_label.setText(label_text(pred.label))
            self.result_label.setStyleSheet(
                f"font-size: 24px; font-weight: bold; color: {colour[0]};"
                f" background: {colour[1]}; border: 1px solid {colour[0]};"
                " border-radius: 4px;"
            )
            self.probability_label.setText(percent(pred.probability))
        self.threshold_label.setText(
            self.tr("%1 (PNEUMONIA at or above)").replace("%1", percent(pred.threshold))
            if pred.operating_point == "pooled"
            else self.tr("%1 (PNEUMONIA at or above; fitted for site %2)")
            .replace("%1", percent(pred.threshold))
            .replace("%2", pred.operating_point)
        )
        self.model_label.setText(
            self.tr("version %1, %2").replace("%1", str(pred.model_version)).replace("%2", model_date(pred.created_at))
        )

    def _show_error(self, message: str | None) -> None:
        self.error = message
        self.error_label.setText(message or "")
        self.error_label.setVisible(bool(message))

    # ----- the model ----------------------------------------------------------------------------
    def set_engine(self, engine: Engine) -> None:
        """Use ``engine`` from the next prediction on (a running one finishes with the old model). A result
        on screen from another model says so, with a button to analyse the image again with this one."""
        self.engine = engine
        self.set_model_status(self.tr("Model version %1").replace("%1", str(engine.version)))
        self._show_heat_scale()
        shown = self.current.prediction if self.current is not None else None
        if shown is not None and (shown.model_version, shown.variant) != (engine.version, engine.variant):
            self.stale_label.setText(
                self.tr("This result is from model version %1 (%2); the model is now version %3 (%4).")
                .replace("%1", str(shown.model_version))
                .replace("%2", shown.variant)
                .replace("%3", str(engine.version))
                .replace("%4", engine.variant)
            )
            self.reanalyse_button.setText(
                self.tr("Analyse again with version %1 (%2)")
                .replace("%1", str(engine.version))
                .replace("%2", engine.variant)
            )
            self.stale_label.setVisible(True)
            self.reanalyse_button.setVisible(True)
        self.engineChanged.emit(engine)

    @Slot()
    def reanalyse(self) -> bool:
        """Analyse the image on screen again with the current model (a new result, audited as such)."""
        if not self.files:
            return False
        return self._open_index()

    def set_model_status(self, text: str, tooltip: str = "") -> None:
        self.model_status_label.setText(text)
        self.model_status_label.setToolTip(tooltip or text)

    # ----- opening files ------------------------------------------------------------------------
    @Slot()
    def open_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self,
            self.tr("Open chest X-ray"),
            str(self.files[self.index].parent) if self.files else "",
            self.tr("Images (*.png *.jpg *.jpeg *.dcm *.dicom);;All files (*)"),
        )
        if files:
            self.open_files(files)

    @Slot()
    def open_triage_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, self.tr("Open folder for triage"), str(self.files[self.index].parent) if self.files else ""
        )
        if folder:
            self.open_triage(folder)

    def open_triage(self, folder: str | os.PathLike) -> TriageDialog:
        """Triage every image under ``folder`` in a non-modal dialog; double-clicking a row opens it here."""
        dialog = TriageDialog(self.engine, folder, self.audit, self)
        dialog.openRequested.connect(self.open_file)
        dialog.finished.connect(lambda _=0, d=dialog: self._forget_triage(d))
        self.triage_dialogs.append(dialog)
        dialog.show()
        return dialog

    def _forget_triage(self, dialog: TriageDialog) -> None:
        if dialog in self.triage_dialogs:
            self.triage_dialogs.remove(dialog)
        dialog.deleteLater()

    def open_files(self, paths: list[str | os.PathLike]) -> bool:
        """Make ``paths`` the list browsed with next/previous and open the first; False if empty.

        One file (File › Open, a drop, the command line) browses the images of its folder instead,
        starting at that file, so the neighbouring films page with PgDown/PgUp as they would in a
        reading list."""
        files = [Path(p) for p in paths]
        if not files:
            return False
        self.files, self.index = files, 0
        if len(files) == 1:
            neighbours = folder_images(files[0].parent)
            if files[0] in neighbours:
                self.files, self.index = neighbours, neighbours.index(files[0])
        return self._open_index()

    def open_file(self, path: str | os.PathLike) -> bool:
        """Open one file alone (a triage row: the triage table is the list); the prediction arrives later
        (``resultShown`` or ``errorShown``). False if missing."""
        self.files, self.index = [Path(path)], 0
        return self._open_index()

    @Slot()
    def next_image(self) -> None:
        if self.index < len(self.files) - 1:
            self.index += 1
            self._open_index()

    @Slot()
    def previous_image(self) -> None:
        if self.index > 0:
            self.index -= 1
            self._open_index()

    def _open_index(self) -> bool:
        path = self.files[self.index]
        self._update_actions()
        self.setWindowTitle(
            self.tr("%1 (%2 / %3) — PneumoScan")
            .replace("%1", path.name)
            .replace("%2", str(self.index + 1))
            .replace("%3", str(len(self.files)))
        )
        self.file_label.setText(path.name)
        self.file_label.setToolTip(str(path))
        try:
            path.stat()
        except (FileNotFoundError, NotADirectoryError):
            self._fail(self.tr("Cannot open %1: no such file").replace("%1", str(path)))
            return False
        except OSError:
            pass  # permission denied and the like: the worker's load says exactly what
        self._request += 1
        request = self._request
        worker = PredictWorker(request, path, self.engine, self.audit, superseded=self._superseded(request))
        worker.signals.finished.connect(self._on_finished)
        worker.signals.failed.connect(self._on_failed)
        worker.signals.displayed.connect(self._on_displayed)
        worker.signals.displayFailed.connect(self._on_display_failed)
        self._pending[self._request] = worker.signals
        self._clear()
        self._show_error(None)
        self._update_actions()
        self.statusBar().showMessage(self.tr("Analysing %1…").replace("%1", path.name))
        self.analysisStarted.emit(path)
        self.pool.start(worker)
        return True

    def _superseded(self, request: int):
        """For a worker thread: whether the user has opened another file since ``request`` (True once closed)."""

        def superseded() -> bool:
            try:
                return self._request != request
            except RuntimeError:  # the window is gone
                return True

        return superseded

    def is_busy(self) -> bool:
        return bool(self._pending)

    @Slot(object)
    def _on_finished(self, result: ViewResult) -> None:
        signals = self._pending.pop(result.request, None)
        if result.preview and signals is not None:
            self._displaying[result.request] = signals
        if result.request != self._request:
            return  # the user has moved on to another file
        self.current = result
        self._gray12 = result.display
        self.reset_window_level()  # each image opens at its own stored window or full range, never the last one's
        # The scene is in the file's pixels whatever is drawn: a preview is scaled up to them, so zoom,
        # pan and the heat map stay where they are when the full-resolution pixels replace it.
        w, h = result.size
        dh, dw = result.display.shape[:2]
        self.image_item.setTransform(QTransform.fromScale(w / dw, h / dh))
        self.overlay_item.setPixmap(QPixmap.fromImage(qimage(result.overlay)))
        oh, ow = result.overlay.shape[:2]
        self.overlay_item.setTransform(QTransform.fromScale(w / ow, h / oh))  # covers the image exactly
        self.overlay_item.setVisible(self._overlay_wanted())
        self.scene.setSceneRect(QRectF(0, 0, w, h))
        self.view.fit()
        self._show_prediction(result.prediction)
        self._show_error(None)
        status = (
            self.tr("%1 — %2 × %3 px — %4")
            .replace("%1", result.path.name)
            .replace("%2", str(w))
            .replace("%3", str(h))
            .replace(
                "%4",
                label_text(result.prediction.label) if result.prediction.suitable else self.tr("no result (withheld)"),
            )
        )
        if result.image.meta.window_problem:  # a DICOM whose stored window is unusable: say what was done
            status += f" — {result.image.meta.window_problem}"
        self.statusBar().showMessage(status)
        self._update_actions()
        self.resultShown.emit(result)

    @Slot(int, object, object)
    def _on_displayed(self, request: int, image, levels) -> None:
        """A preview's full-resolution pixels: drawn in its place, at the window the user has set."""
        self._displaying.pop(request, None)
        if self.current is None or self.current.request != request or request != self._request:
            return
        self.current = self.current.with_display(image, levels)
        self._gray12 = levels
        self._apply_window_level()
        self.image_item.setTransform(QTransform())
        self.displayShown.emit(self.current)

    @Slot(int, str)
    def _on_display_failed(self, request: int, reason: str) -> None:
        self._displaying.pop(request, None)
        if self.current is not None and self.current.request == request and request == self._request:
            self.statusBar().showMessage(
                self.tr("%1 is shown at reduced resolution: %2")
                .replace("%1", self.current.path.name)
                .replace("%2", reason)
            )

    @Slot(int, str)
    def _on_failed(self, request: int, reason: str) -> None:
        self._pending.pop(request, None)
        if request != self._request:
            return
        name = self.files[self.index].name if self.files else ""
        self._fail(self.tr("Cannot open %1: %2").replace("%1", name).replace("%2", reason))

    def _clear(self) -> None:
        """No image and no result: the previous file's result is never shown beside another file's name."""
        self.current = None
        self._gray12 = None
        self.image_item.setPixmap(QPixmap())
        self.image_item.setTransform(QTransform())
        self.overlay_item.setPixmap(QPixmap())
        self.overlay_item.setVisible(False)
        self.scene.setSceneRect(QRectF())
        self._show_prediction(None)

    def _fail(self, message: str) -> None:
        self._clear()
        self._show_error(message)
        self.statusBar().showMessage(message)
        self._update_actions()
        self.errorShown.emit(message)

    # ----- window / level (display only: the model always sees the original image) ---------------
    def window_level(self) -> tuple[float, float]:
        """(level, width) as fractions of the image's gray range (for a DICOM, the full modality range)."""
        return self.level_slider.value() / WL_STEPS, self.width_slider.value() / WL_STEPS

    def default_window_level(self) -> tuple[float, float]:
        """Where the current image opens and R returns: a DICOM's stored window, else the full range."""
        stored = self.current.image.display_window if self.current is not None else None
        return stored if stored is not None else (0.5, 1.0)

    def set_window_level(self, level: float, width: float) -> None:
        """Set the window, clamped to what the sliders reach (level 0–1, width 0.1 %–100 % of the range)."""
        for slider, value in ((self.level_slider, level), (self.width_slider, width)):
            slider.blockSignals(True)
            slider.setValue(min(slider.maximum(), max(slider.minimum(), round(value * WL_STEPS))))
            slider.blockSignals(False)
        self._apply_window_level()  # one repaint for both

    @Slot()
    def reset_window_level(self) -> None:
        self.set_window_level(*self.default_window_level())
        if self.statusBar().currentMessage() == self._wl_message:
            self.statusBar().clearMessage()  # "Window level …" no longer describes what is shown

    @Slot(float, float)
    def _on_window_drag(self, dx: float, dy: float) -> None:
        """Right-drag: right widens the window, down raises the level (as in PACS viewers)."""
        if self.current is None:
            return
        level, width = self.window_level()
        self.set_window_level(min(1.0, max(0.0, level + dy / 400.0)), min(1.0, max(1 / WL_STEPS, width + dx / 400.0)))

    @Slot()
    def _apply_window_level(self) -> None:
        if self._gray12 is None:
            return
        shown = window_lut(*self.window_level())[self._gray12]
        self.image_item.setPixmap(QPixmap.fromImage(qimage(shown)))
        level, width = self.window_level()
        if (level, width) != self._slider_values(*self.default_window_level()):
            self._wl_message = (
                self.tr("Window level %1 %, width %2 %")
                .replace("%1", f"{level * 100:.0f}")
                .replace("%2", f"{width * 100:.0f}")
            )
            self.statusBar().showMessage(self._wl_message, 3000)

    def _slider_values(self, level: float, width: float) -> tuple[float, float]:
        """(level, width) as ``window_level`` reads it back after ``set_window_level(level, width)``."""
        steps = min(WL_STEPS, max(0, round(level * WL_STEPS))), min(WL_STEPS, max(1, round(width * WL_STEPS)))
        return steps[0] / WL_STEPS, steps[1] / WL_STEPS

    # ----- heat map and zoom --------------------------------------------------------------------
    @Slot(bool)
    def set_heatmap_visible(self, on: bool) -> None:
        if self.heatmap_action.isChecked() != on:
            self.heatmap_action.setChecked(on)  # re-enters through toggled
            return
        self.overlay_item.setVisible(self._overlay_wanted())
        self._update_actions()

    def _overlay_wanted(self) -> bool:
        """The heat map is drawn when it is on and the result is a verdict (or the expert asked for withheld ones)."""
        if self.current is None or not self.heatmap_action.isChecked():
            return False
        return self.current.prediction.suitable or self.show_withheld

    @Slot(int)
    def set_heatmap_opacity(self, value: int) -> None:
        self.overlay_item.setOpacity(value / 100.0)

    @Slot(float)
    def _on_zoom(self, scale: float) -> None:
        self.zoom_label.setText(self.tr("Zoom %1 %").replace("%1", f"{scale * 100:.0f}") if self.current else "")

    # ----- drag and drop ------------------------------------------------------------------------
    @staticmethod
    def _dropped_files(mime) -> list[Path]:
        return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []

    def dragEnterEvent(self, event) -> None:
        if self._dropped_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        files = self._dropped_files(event.mimeData())
        if files:
            event.acceptProposedAction()
            self.open_files(files)

    def closeEvent(self, event) -> None:
        for dialog in list(self.triage_dialogs):
            dialog.shutdown()
        self.pool.clear()
        self.pool.waitForDone(10_000)  # let a running prediction finish before the engine goes away
        super().closeEvent(event)
