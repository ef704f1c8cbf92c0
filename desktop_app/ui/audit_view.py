"""The audit log dialog: every recorded result, newest first; confirm or correct, export CSV or a labelled batch.

The rows are ``audit_model.AuditModel`` (sorted and filtered by ``AuditProxy``); ``AuditDialog`` is the
non-modal window; ``attach`` adds "Audit log…" and "Export labelled batch…" to
the main window's Tools menu. The labelled batch is written off the GUI thread (``ExportWorker``).

Longer than most modules: the dialog, its export worker and the menu hookup of one feature; the
rows are ``audit_model``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QObject,
    Qt,
    QThreadPool,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_app.audit import LABELS
from desktop_app.labelled_export import BatchExportError, ExportResult, Skipped, export_labelled_batch, plan_export
from desktop_app.ui.audit_model import AuditModel, AuditProxy
from desktop_app.ui.feedback import CONFIRM_KEYS
from desktop_app.ui.format import label_text
from desktop_app.ui.worker import Job

logger = logging.getLogger(__name__)

MAX_SKIPPED_SHOWN = 5


class ExportSignals(QObject):
    progress = Signal(int, int)  # done, total
    finished = Signal(object)  # ExportResult, or the error message (str)


class ExportWorker(Job):
    """Writes the labelled batch: ``signals.progress``, then ``signals.finished`` (result or message)."""

    def __init__(self, audit, out_dir: str | os.PathLike, batch_id: str | None = None):
        super().__init__(ExportSignals())
        self.audit, self.out_dir, self.batch_id = audit, Path(out_dir), batch_id

    def work(self) -> None:
        from desktop_app.config import load_settings
        from desktop_app.labelled_export import patient_secret

        settings = load_settings()  # the site and its patient key, as the admin set them
        self.signals.finished.emit(
            export_labelled_batch(
                self.audit,
                self.out_dir,
                self.batch_id,
                self.signals.progress.emit,
                site=settings.site,
                secret=patient_secret(settings),
            )
        )

    def failed(self, error: Exception) -> None:  # the user gets a message
        if isinstance(error, BatchExportError):
            self.signals.finished.emit(str(error))
            return
        logger.error("Export of a labelled batch to %s failed", self.out_dir, exc_info=error)
        self.signals.finished.emit(f"{type(error).__name__}: {error}")


class AuditDialog(QDialog):
    """Non-modal: the audit log as a table, the radiologist's read per row, CSV and labelled-batch export."""

    openRequested = Signal(object)  # Path: the user double-clicked a row
    exportFinished = Signal(object)  # ExportResult, or the error message (str)
    _rowChanged = Signal(dict)  # from the audit log's listener, on whichever thread changed it

    def __init__(self, audit, parent: QWidget | None = None):
        super().__init__(parent)
        self.audit = audit
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._export_signals: ExportSignals | None = None
        self.last_export: ExportResult | str | None = None
        self.setWindowTitle(self.tr("Audit log"))
        self.setModal(False)
        self.resize(1000, 600)

        self.model = AuditModel(self)
        self.proxy = AuditProxy(self.model, self)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText(self.tr("Filter by file name or label"))
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.set_text)
        self.status_combo = QComboBox()
        self.status_combo.addItems(
            [self.tr("All results"), self.tr("Not yet confirmed"), self.tr("Confirmed"), self.tr("Corrected")]
        )
        self.status_combo.currentIndexChanged.connect(self.proxy.set_status)

        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(AuditModel.COL_TIME, Qt.SortOrder.DescendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.verticalHeader().setVisible(False)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setColumnHidden(AuditModel.COL_SHA256, True)  # in the CSV; the file's tooltip has its path
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.doubleClicked.connect(self._on_double_click)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(AuditModel.COL_FILE, QHeaderView.ResizeMode.Stretch)

        self.confirm_buttons: dict[str, QPushButton] = {}
        self.confirm_actions: dict[str, QAction] = {}
        for label, text, key in (
            ("NORMAL", self.tr("Confirm NORMAL"), CONFIRM_KEYS["NORMAL"]),
            ("PNEUMONIA", self.tr("Confirm PNEUMONIA"), CONFIRM_KEYS["PNEUMONIA"]),
        ):
            b = QPushButton(text)
            b.setToolTip(
                self.tr("Record %1 as your read of the selected results (%2)")
                .replace("%1", label_text(label))
                .replace("%2", key)
            )
            b.clicked.connect(lambda _=False, lab=label: self.confirm_selected(lab))
            a = QAction(text, self)
            a.setShortcut(QKeySequence(key))
            a.triggered.connect(lambda _=False, lab=label: self.confirm_selected(lab))
            self.addAction(a)
            self.confirm_buttons[label], self.confirm_actions[label] = b, a
        self.csv_button = QPushButton(self.tr("Export CSV…"))
        self.csv_button.clicked.connect(self.export_csv_dialog)
        self.batch_button = QPushButton(self.tr("Export labelled batch…"))
        self.batch_button.setToolTip(
            self.tr("Write the confirmed images not sent before, de-identified, as a batch for the hub")
        )
        self.batch_button.clicked.connect(self.export_batch_dialog)
        self.close_button = QPushButton(self.tr("Close"))
        self.close_button.clicked.connect(self.close)
        self.count_label = QLabel()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.status_combo)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel(self.tr("Your read of the selected results:")))
        for b in self.confirm_buttons.values():
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.count_label)
        lay.addLayout(row)
        lay.addWidget(self.status_label)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.csv_button)
        buttons.addWidget(self.batch_button)
        buttons.addWidget(self.close_button)
        lay.addLayout(buttons)

        self.view.selectionModel().selectionChanged.connect(self._update_actions)
        for signal in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset, self.proxy.dataChanged):
            signal.connect(self._update_actions)
        self._rowChanged.connect(self.model.upsert)
        self._listener = self._rowChanged.emit  # kept: the same callable must be removed later
        self.audit.add_listener(self._listener)
        self.refresh()

    # ----- content ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload every row from the audit log (rows written by another program too)."""
        try:
            self.model.load(self.audit.rows())
        except sqlite3.Error as e:
            self.status_label.setText(self.tr("Cannot read the audit log: %1").replace("%1", str(e)))
        self._update_actions()

    def detach(self) -> None:
        """Stop listening to the audit log (before the dialog goes away)."""
        self.audit.remove_listener(self._listener)

    def displayed_rows(self) -> list[dict]:
        """The rows in the order the table shows them (after sorting and filtering)."""
        return [self.proxy.row_at(r) for r in range(self.proxy.rowCount())]

    def selected_rows(self) -> list[dict]:
        return [self.proxy.row_at(i.row()) for i in self.view.selectionModel().selectedRows()]

    def select_ids(self, ids: list[int]) -> None:
        """Select the displayed rows with these audit ids (what a click or Ctrl+click does)."""
        self.view.clearSelection()
        sel = self.view.selectionModel()
        for r in range(self.proxy.rowCount()):
            if self.proxy.row_at(r)["id"] in ids:
                sel.select(
                    self.proxy.index(r, 0),
                    QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows,
                )

    def confirm_selected(self, label: str) -> int:
        """Record ``label`` as the read of every selected row; return how many were recorded."""
        rows = self.selected_rows()
        done = 0
        try:
            for row in rows:
                self.audit.confirm(row["id"], label)  # the listener updates the table
                done += 1
        except (sqlite3.Error, KeyError) as e:
            logger.warning("Cannot record a read in the audit log: %s", e)
            self.status_label.setText(self.tr("Your read could not be recorded: %1").replace("%1", str(e)))
            return done
        if done:
            self.status_label.setText(
                self.tr("Recorded %1 as your read of %2 result(s).")
                .replace("%1", label_text(label))
                .replace("%2", str(done))
            )
        return done

    def _update_actions(self, *_args) -> None:
        """The one place that sets every button's enabled state from the dialog's state."""
        has_selection = self.view.selectionModel().hasSelection()
        for label in LABELS:
            self.confirm_buttons[label].setEnabled(has_selection)
            self.confirm_actions[label].setEnabled(has_selection)
        self.csv_button.setEnabled(bool(self.model.rows))
        self.batch_button.setEnabled(not self.is_exporting())
        total, confirmed = len(self.model.rows), sum(r["confirmed_label"] is not None for r in self.model.rows)
        self.count_label.setText(
            self.tr("%1 results, %2 confirmed").replace("%1", str(total)).replace("%2", str(confirmed))
        )

    def _context_menu(self, pos) -> None:
        if not self.view.selectionModel().hasSelection():
            return
        menu = QMenu(self)
        menu.addActions(list(self.confirm_actions.values()))
        menu.exec(self.view.viewport().mapToGlobal(pos))

    @Slot(QModelIndex)
    def _on_double_click(self, index: QModelIndex) -> None:
        self.openRequested.emit(Path(self.proxy.row_at(index.row())["file_path"]))

    # ----- CSV ----------------------------------------------------------------------------------
    def export_csv(self, path: str | os.PathLike) -> Path:
        """Every audit row (not only the filtered ones) to ``path``, as ``AuditLog.export_csv`` writes it."""
        path = self.audit.export_csv(path)
        self.status_label.setText(self.tr("Exported the audit log to %1").replace("%1", str(path)))
        return path

    @Slot()
    def export_csv_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, self.tr("Export audit log as CSV"), "audit-log.csv", self.tr("CSV files (*.csv)")
        )
        if not path:
            return
        try:
            self.export_csv(path)
        except (OSError, sqlite3.Error) as e:
            QMessageBox.warning(
                self,
                self.tr("Export failed"),
                self.tr("Cannot write %1: %2")
                .replace("%1", path)
                .replace("%2", getattr(e, "strerror", None) or str(e)),
            )

    # ----- labelled batch -----------------------------------------------------------------------
    def is_exporting(self) -> bool:
        return self._export_signals is not None

    @Slot()
    def export_batch_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Export labelled batch to folder"))
        if folder:
            self.export_batch(folder)

    def export_batch(self, folder: str | os.PathLike, batch_id: str | None = None) -> bool:
        """Start writing the confirmed images as a hub batch under ``folder`` (off the GUI thread);
        ``exportFinished`` tells the outcome. False (with a message) if it cannot start."""
        if self.is_exporting():
            return False
        try:
            plan = plan_export(self.audit)
        except sqlite3.Error as e:
            self._show_export(self.tr("Cannot read the audit log: %1").replace("%1", str(e)))
            return False
        if not plan.confirmed:
            self._show_export(self.tr("Nothing to export yet: confirm or correct some results first."))
            return False
        if not plan.rows:  # everything was sent before: say so, write nothing
            self._show_export(ExportResult(batch_id or "", None, None, None, [], plan.skipped, plan.already_sent))
            return False
        confirmed = len(plan.rows)
        worker = ExportWorker(self.audit, folder, batch_id)
        self._export_signals = worker.signals
        worker.signals.progress.connect(self._on_export_progress)
        worker.signals.finished.connect(self._on_export_finished)
        self.status_label.setText(self.tr("Exporting %1 images…").replace("%1", str(confirmed)))
        self._update_actions()
        self.pool.start(worker)
        return True

    @Slot(int, int)
    def _on_export_progress(self, done: int, total: int) -> None:
        self.status_label.setText(
            self.tr("Exporting: %1 of %2 images…").replace("%1", str(done)).replace("%2", str(total))
        )

    @Slot(object)
    def _on_export_finished(self, outcome) -> None:
        self._export_signals = None
        self._update_actions()
        self._show_export(outcome)

    def _show_export(self, outcome) -> None:
        self.last_export = outcome
        self.status_label.setText(self.export_summary(outcome))
        self.exportFinished.emit(outcome)

    def skip_reason(self, skipped: Skipped) -> str:
        code, detail = skipped.code, skipped.detail
        if code == "sent_as_other":
            return (
                self.tr(
                    "already sent to the hub as %1 (batch %2): not sent again; tell the ML team so that "
                    "they correct the label there"
                )
                .replace("%1", label_text(skipped.sent_label))
                .replace("%2", skipped.sent_batch)
            )
        text = {
            "missing": self.tr("the file is no longer there"),
            "changed": self.tr("the file changed since it was analysed"),
            "burned_in": self.tr("the DICOM declares burned-in annotation (its pixels may identify the patient)"),
            "unreadable": self.tr("the file cannot be read or de-identified"),
            "check_failed": self.tr("the exported copy did not match the original's pixels"),
            "conflict": self.tr("the same image was confirmed NORMAL for one file and PNEUMONIA for another"),
            "duplicate": self.tr("the same image as another exported file"),
        }.get(code, code)
        return f"{text} ({detail})" if detail else text

    def export_summary(self, outcome) -> str:
        """What the user reads after an export: where, how many per label, what was skipped and why."""
        if isinstance(outcome, str):
            return self.tr("Export failed: %1").replace("%1", outcome)
        n = outcome.counts()
        if outcome.batch_dir is None and not outcome.skipped:
            text = self.tr(
                "Nothing new to export: every confirmed image was already sent to the hub. Nothing was written."
            )
        elif outcome.batch_dir is None:
            text = self.tr("Nothing was written: no new confirmed image could be exported.")
        else:
            text = (
                self.tr("Wrote %1 images (NORMAL %2, PNEUMONIA %3) to %4.")
                .replace("%1", str(len(outcome.written)))
                .replace("%2", str(n["NORMAL"]))
                .replace("%3", str(n["PNEUMONIA"]))
                .replace("%4", str(outcome.batch_dir))
            )
            if outcome.already_sent:
                text += " " + self.tr("%1 confirmed images were sent before and were left out.").replace(
                    "%1", str(outcome.already_sent)
                )
        if outcome.mark_error:
            text += "\n" + self.tr(
                "Warning: the audit log could not record this export (%1); the next export "
                "will send these images again."
            ).replace("%1", outcome.mark_error)
        if outcome.skipped:
            text += " " + self.tr("Skipped %1:").replace("%1", str(len(outcome.skipped)))
            text += "".join(f"\n• {s.file_name}: {self.skip_reason(s)}" for s in outcome.skipped[:MAX_SKIPPED_SHOWN])
            if len(outcome.skipped) > MAX_SKIPPED_SHOWN:
                text += "\n" + self.tr("…and %1 more (see the log).").replace(
                    "%1", str(len(outcome.skipped) - MAX_SKIPPED_SHOWN)
                )
        return text


class AuditTools(QObject):
    """The Tools menu entries of one main window and the (single, lazily made) audit dialog."""

    def __init__(self, window, audit):
        super().__init__(window)
        self.window, self.audit = window, audit
        self._dialog: AuditDialog | None = None
        self.log_action = QAction(self.tr("&Audit log…"), window)
        self.log_action.setShortcut(QKeySequence("Ctrl+L"))
        self.log_action.triggered.connect(self.show_log)
        self.export_action = QAction(self.tr("Export &labelled batch…"), window)
        self.export_action.triggered.connect(self.export_batch_dialog)
        window.tools_menu.addActions([self.log_action, self.export_action])
        window.destroyed.connect(lambda *_: self._dialog is not None and self._dialog.detach())

    def dialog(self) -> AuditDialog:
        if self._dialog is None:
            self._dialog = AuditDialog(self.audit, self.window)
            self._dialog.openRequested.connect(self.window.open_file)
        return self._dialog

    @Slot()
    def show_log(self) -> AuditDialog:
        d = self.dialog()
        d.show()
        d.raise_()
        d.activateWindow()
        return d

    @Slot()
    def export_batch_dialog(self) -> None:
        self.show_log().export_batch_dialog()


def attach(window, audit) -> AuditTools | None:
    """Add "Audit log…" (Ctrl+L) and "Export labelled batch…" to ``window.tools_menu``; None without an audit log."""
    return AuditTools(window, audit) if audit is not None else None
