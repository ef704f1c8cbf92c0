"""Batch triage: predict every X-ray under a folder off the GUI thread, most suspicious first, export CSV.

``TriageModel`` holds the rows (a Qt table model, tested with no window); ``TriageProxy`` sorts it by
probability, highest first, with failed files last; ``TriageWorker`` walks the folder and predicts in a
``QThreadPool``, reporting only through signals; ``TriageDialog`` shows the table, progress, Cancel and
"Export CSV…".

Longer than most modules: the table model, its worker and its dialog are one feature, and the
model is tested with no window open.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import threading
from pathlib import Path

from PySide6.QtCore import QModelIndex, QObject, QSortFilterProxyModel, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from contract.package import sha256_of
from contract.preprocess import ImageError
from desktop_app.audit import csv_notice
from desktop_app.engine import POSITIVE, Engine
from desktop_app.images import IMAGE_SUFFIXES, is_dicom
from desktop_app.ui.format import SORT_ROLE, RowsTableModel, label_text, percent, reason_text
from desktop_app.ui.worker import Job, failure_reason

logger = logging.getLogger(__name__)

# Sorted on the probability column, most suspicious first: results, then the withheld group, then failures.
WITHHELD_SORT_KEY = -0.5
ERROR_SORT_KEY = -1.0
CSV_COLUMNS = ("file", "label", "probability", "status", "p_pneumonia", "sha256", "path")


def find_images(folder: str | os.PathLike) -> list[Path]:
    """Every file under ``folder`` (recursively, sorted) that is PNG/JPEG/DICOM by suffix or DICM preamble."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.suffix.lower() in IMAGE_SUFFIXES or is_dicom(p):
                found.append(p)
    return found


@dataclasses.dataclass(frozen=True)
class TriageRow:
    """One file's result: a prediction, or ``error`` (the reason) when the file could not be used.

    A ``withheld`` row (the reason) is an image the model is not fit to judge: ``label`` and
    ``probability`` are the model's, but no verdict is shown for it.
    """

    path: Path
    name: str  # relative to the triaged folder
    label: str | None = None
    probability: float | None = None
    sha256: str | None = None
    error: str | None = None
    audit_id: int | None = None
    withheld: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def verdict(self) -> bool:
        """A label to show and sort by: predicted and suitable."""
        return self.ok and self.withheld is None


class TriageModel(RowsTableModel):
    """Rows in arrival order; ``Qt.DisplayRole`` is what is shown, ``SORT_ROLE`` the value to sort on."""

    COL_FILE, COL_LABEL, COL_PROBABILITY, COL_STATUS, COL_SHA256 = range(5)

    def __init__(self, parent: QObject | None = None):
        super().__init__(
            [
                self.tr("File"),
                self.tr("Result"),
                self.tr("Probability of pneumonia"),
                self.tr("Status"),
                self.tr("SHA-256"),
            ],
            parent,
        )  # in COL_ order
        self.rows: list[TriageRow] = []

    # ----- content ------------------------------------------------------------------------------
    def add_row(self, row: TriageRow) -> None:
        n = len(self.rows)
        self.beginInsertRows(QModelIndex(), n, n)
        self.rows.append(row)
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self.rows.clear()
        self.endResetModel()

    def status_text(self, row: TriageRow) -> str:
        if not row.ok:
            return self.tr("Error: %1").replace("%1", row.error)
        if row.withheld:
            return self.tr("Withheld: %1").replace("%1", row.withheld)
        return self.tr("Done")

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        row, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == self.COL_FILE:
                return row.name
            if col == self.COL_LABEL:
                return label_text(row.label) if row.verdict else self.tr("No result") if row.ok else ""
            if col == self.COL_PROBABILITY:
                return percent(row.probability) if row.verdict else ""
            if col == self.COL_STATUS:
                return self.status_text(row)
            if col == self.COL_SHA256:
                return row.sha256 or ""
        elif role == SORT_ROLE:
            if col == self.COL_PROBABILITY:
                return float(row.probability) if row.verdict else WITHHELD_SORT_KEY if row.ok else ERROR_SORT_KEY
            return self.data(index, Qt.ItemDataRole.DisplayRole)
        elif role == Qt.ItemDataRole.ToolTipRole:
            if col == self.COL_FILE:
                return str(row.path)
            if col == self.COL_STATUS and not row.verdict:
                return row.error or row.withheld
        elif role == Qt.ItemDataRole.TextAlignmentRole and col == self.COL_PROBABILITY:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        elif role == Qt.ItemDataRole.ForegroundRole:
            if col == self.COL_LABEL and row.verdict and row.label == POSITIVE:
                return QBrush(QColor("#b00020"))
            if col == self.COL_STATUS and not row.ok:
                return QBrush(QColor("#b00020"))
            if col in (self.COL_LABEL, self.COL_STATUS) and row.withheld:
                return QBrush(QColor("#8a6d00"))
        elif role == Qt.ItemDataRole.FontRole and col == self.COL_LABEL and row.verdict and row.label == POSITIVE:
            f = QFont()
            f.setBold(True)
            return f
        return None


class TriageProxy(QSortFilterProxyModel):
    """Sorts on ``SORT_ROLE`` (numbers for probability), by default most suspicious first; keeps sorting
    as rows arrive."""

    def __init__(self, source: TriageModel, parent: QObject | None = None):
        super().__init__(parent)
        self.setSourceModel(source)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)
        self.sort(TriageModel.COL_PROBABILITY, Qt.SortOrder.DescendingOrder)

    def row_at(self, proxy_row: int) -> TriageRow:
        return self.sourceModel().rows[self.mapToSource(self.index(proxy_row, 0)).row()]


class TriageSignals(QObject):
    progress = Signal(int, int)  # done, total
    row = Signal(object)  # TriageRow
    cancelled = Signal()
    finished = Signal()  # always last, after a cancel too


class TriageWorker(Job):
    """Walks ``folder`` and predicts every image; touches no widget, only emits ``signals``.

    ``cancel()`` (any thread) stops it between files: no row is emitted after it returns from the
    current file, then ``cancelled`` and ``finished`` are emitted.
    """

    def __init__(self, folder: str | os.PathLike, engine: Engine, audit=None):
        super().__init__(TriageSignals(), auto_delete=False)  # the dialog owns it: ``cancel`` works after the run
        self.folder, self.engine, self.audit = Path(folder), engine, audit
        self._stop = threading.Event()

    def cancel(self) -> None:
        self._stop.set()

    @property
    def is_cancelled(self) -> bool:
        return self._stop.is_set()

    def _one(self, path: Path) -> TriageRow | None:
        name = path.relative_to(self.folder).as_posix()
        try:
            prediction = self.engine.predict(self.engine.load(path, display=False))
        except Exception as e:  # every failure becomes an error row; the walk carries on
            logger.warning("Triage: cannot use %s: %s", path, e, exc_info=not isinstance(e, (ImageError, OSError)))
            return TriageRow(path, name, error=failure_reason(e))
        if self._stop.is_set():  # cancelled while predicting: nothing recorded, nothing shown
            return None
        try:
            if self.audit is not None:
                rec = self.audit.record(prediction, path)
                sha, audit_id = rec["sha256"], rec["id"]
            else:
                sha, audit_id = sha256_of(path), None
        except Exception as e:
            logger.warning("Triage: cannot record %s: %s", path, e, exc_info=True)
            return TriageRow(path, name, error=f"result could not be recorded ({type(e).__name__}: {e})")
        return TriageRow(
            path,
            name,
            prediction.label,
            float(prediction.probability),
            sha,
            audit_id=audit_id,
            withheld=None if prediction.suitable else reason_text(prediction),
        )

    def work(self) -> None:
        files = find_images(self.folder)
        total = len(files)
        self.signals.progress.emit(0, total)
        for done, path in enumerate(files, 1):
            if self._stop.is_set():
                break
            row = self._one(path)
            if row is None or self._stop.is_set():
                break
            self.signals.row.emit(row)
            self.signals.progress.emit(done, total)

    def failed(self, error: Exception) -> None:  # the rows so far stay; the dialog finishes as usual
        logger.error("Triage of %s failed", self.folder, exc_info=error)

    def done(self) -> None:
        if self._stop.is_set():
            self.signals.cancelled.emit()
        self.signals.finished.emit()


class TriageDialog(QDialog):
    """Triage one folder: starts at once; the table fills as results arrive, most suspicious first."""

    rowAdded = Signal(object)  # TriageRow, after it is in the table
    triageFinished = Signal(bool)  # cancelled?
    openRequested = Signal(object)  # Path: the user double-clicked a row

    def __init__(self, engine: Engine, folder: str | os.PathLike, audit=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.engine, self.folder, self.audit = engine, Path(folder), audit
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.worker: TriageWorker | None = None
        self._signals: TriageSignals | None = None
        self.running = False
        self.cancelled = False
        self.total = 0

        self.setWindowTitle(self.tr("Batch triage — %1").replace("%1", self.folder.name or str(self.folder)))
        self.resize(900, 600)
        self.model = TriageModel(self)
        self.proxy = TriageProxy(self.model, self)

        self.folder_label = QLabel(self.tr("Folder: %1").replace("%1", str(self.folder)))
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_label.setWordWrap(True)

        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(TriageModel.COL_PROBABILITY, Qt.SortOrder.DescendingOrder)
        self.view.setColumnHidden(TriageModel.COL_SHA256, True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.verticalHeader().setVisible(False)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(TriageModel.COL_FILE, QHeaderView.ResizeMode.Stretch)
        for col in (TriageModel.COL_LABEL, TriageModel.COL_PROBABILITY):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(TriageModel.COL_STATUS, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(TriageModel.COL_STATUS, 260)
        self.view.doubleClicked.connect(self._on_double_click)

        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setFormat(self.tr("%v of %m"))
        self.status_label = QLabel()
        self.disclaimer_label = QLabel(self.tr("For investigational use — not a diagnosis"))
        self.disclaimer_label.setStyleSheet(
            "font-weight: bold; color: #5d4200; background: #fff4ce;"
            " border: 1px solid #e0c060; border-radius: 4px; padding: 4px 8px;"
        )

        self.export_button = QPushButton(self.tr("Export CSV…"))
        self.export_button.clicked.connect(self.export_dialog)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton(self.tr("Close"))
        self.close_button.clicked.connect(self.reject)

        lay = QVBoxLayout(self)
        lay.addWidget(self.folder_label)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.progress)
        self.status_label.setWordWrap(True)  # its own line: a long message is never cut off
        lay.addWidget(self.status_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.disclaimer_label)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)
        lay.addLayout(buttons)

        self.start()

    # ----- running ------------------------------------------------------------------------------
    def start(self) -> None:
        """(Re)start triage of the folder, clearing the table."""
        if self.running:
            return
        self.model.clear()
        self.cancelled = False
        self.running = True
        self.total = 0
        self.progress.setRange(0, 0)
        self.worker = TriageWorker(self.folder, self.engine, self.audit)
        self._signals = self.worker.signals
        self._signals.progress.connect(self._on_progress)
        self._signals.row.connect(self._on_row)
        self._signals.finished.connect(self._on_finished)
        self.status_label.setText(self.tr("Looking for images…"))
        self.pool.start(self.worker)
        self._update_actions()

    @Slot()
    def cancel(self) -> None:
        """Stop after the current file; rows already shown stay."""
        if self.running and self.worker is not None:
            self.worker.cancel()
            self.cancelled = True
            self.status_label.setText(self.tr("Cancelling…"))
            self._update_actions()

    def is_running(self) -> bool:
        return self.running

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self.total = total
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done if total else 1)
        if not self.cancelled:
            self.status_label.setText(self.tr("%1 of %2 analysed").replace("%1", str(done)).replace("%2", str(total)))

    @Slot(object)
    def _on_row(self, row: TriageRow) -> None:
        self.model.add_row(row)
        self._update_actions()
        self.rowAdded.emit(row)

    @Slot()
    def _on_finished(self) -> None:
        self.running = False
        n, errors = len(self.model.rows), sum(not r.ok for r in self.model.rows)
        if self.cancelled:
            msg = self.tr("Cancelled: %1 of %2 analysed").replace("%1", str(n)).replace("%2", str(self.total))
        elif self.total == 0:
            msg = self.tr("No PNG, JPEG or DICOM images in this folder")
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        else:
            msg = self.tr("Done: %1 images").replace("%1", str(n))
        if errors:
            msg += self.tr(", %1 could not be read").replace("%1", str(errors))
        self.status_label.setText(msg)
        self._update_actions()
        self.triageFinished.emit(self.cancelled)

    def _update_actions(self) -> None:
        """The one place that sets every button's enabled state from the dialog's state."""
        self.cancel_button.setEnabled(self.running and not self.cancelled)
        self.export_button.setEnabled(not self.running and self.model.rowCount() > 0)

    # ----- table and export ---------------------------------------------------------------------
    def displayed_rows(self) -> list[TriageRow]:
        """The rows in the order the table shows them."""
        return [self.proxy.row_at(r) for r in range(self.proxy.rowCount())]

    def displayed_text(self) -> list[list[str]]:
        """The visible cells, row by row, as shown."""
        cols = [c for c in range(self.model.columnCount()) if not self.view.isColumnHidden(c)]
        return [[self.proxy.index(r, c).data() or "" for c in cols] for r in range(self.proxy.rowCount())]

    def export_csv(self, path: str | os.PathLike) -> Path:
        """Write the table's rows in the displayed order, after the investigational-use line: the shown
        columns first, then the exact probability, the sha256 and the full path."""
        path = Path(path)
        m = self.model
        with open(path, "w", newline="", encoding="utf-8") as f:
            f.write(csv_notice(f"triage of {self.folder}"))
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS)
            for r in range(self.proxy.rowCount()):
                row = self.proxy.row_at(r)
                cells = [
                    self.proxy.index(r, c).data() or ""
                    for c in (m.COL_FILE, m.COL_LABEL, m.COL_PROBABILITY, m.COL_STATUS)
                ]
                w.writerow(cells + [repr(row.probability) if row.verdict else "", row.sha256 or "", str(row.path)])
        return path

    @Slot()
    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, self.tr("Export triage as CSV"), str(self.folder / "triage.csv"), self.tr("CSV files (*.csv)")
        )
        if not path:
            return
        try:
            self.export_csv(path)
        except OSError as e:
            QMessageBox.warning(
                self,
                self.tr("Export failed"),
                self.tr("Cannot write %1: %2").replace("%1", path).replace("%2", e.strerror or str(e)),
            )
            return
        self.status_label.setText(self.tr("Exported to %1").replace("%1", path))

    @Slot(QModelIndex)
    def _on_double_click(self, index: QModelIndex) -> None:
        row = self.proxy.row_at(index.row())
        if row.ok:
            self.openRequested.emit(row.path)

    # ----- closing ------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Cancel and wait for the worker, so the engine and audit log outlive it."""
        if self.worker is not None and self.running:
            self.worker.cancel()
        self.pool.waitForDone(10_000)

    def reject(self) -> None:
        self.shutdown()
        super().reject()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)
