"""The radiologist's read of the shown result: confirm or correct it, recorded in the audit log.

``FeedbackBox`` sits in the main window's result panel (``attach``). It acts on the audit row of the
result on screen, so it is enabled only when that result was recorded, and it starts afresh with each
new result. A read given elsewhere (the audit log dialog) for the same row shows up here too.
"""

from __future__ import annotations

import logging
import sqlite3

from PySide6.QtCore import QCoreApplication, Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QButtonGroup, QFrame, QHBoxLayout, QLabel, QMenu, QPushButton, QVBoxLayout, QWidget

from desktop_app.audit import LABELS
from desktop_app.ui.format import label_text

logger = logging.getLogger(__name__)


# One scheme in the main window and the audit log: Ctrl+1 confirms NORMAL, Ctrl+2 PNEUMONIA (the labels' order).
CONFIRM_KEYS = {"NORMAL": "Ctrl+1", "PNEUMONIA": "Ctrl+2"}


class FeedbackBox(QFrame):
    """ "Your read": NORMAL / PNEUMONIA buttons for the current result, and what was recorded."""

    confirmed = Signal(dict)  # the audit row, after the read was recorded
    _rowChanged = Signal(dict)  # from the audit log's listener, on whichever thread changed it

    def __init__(self, audit, parent: QWidget | None = None):
        super().__init__(parent)
        self.audit = audit
        self.row: dict | None = None
        self.setObjectName("feedback-box")
        self.setFrameShape(QFrame.Shape.StyledPanel)

        caption = QLabel(self.tr("Your read"))
        caption.setStyleSheet("color: #666; font-size: 11px;")
        self.buttons: dict[str, QPushButton] = {}
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        row = QHBoxLayout()
        texts = {"NORMAL": self.tr("Confirm NORMAL"), "PNEUMONIA": self.tr("Confirm PNEUMONIA")}
        # the same keys as in the audit log's dialog (``CONFIRM_KEYS``), shown in the Result menu
        self.actions: dict[str, QAction] = {}
        for label in LABELS:
            b = QPushButton(texts[label])
            b.setCheckable(True)
            b.setToolTip(
                self.tr("Record %1 as your read (%2)")
                .replace("%1", label_text(label))
                .replace("%2", QKeySequence(CONFIRM_KEYS[label]).toString(QKeySequence.SequenceFormat.NativeText))
            )
            a = QAction(texts[label], self)
            a.setShortcut(QKeySequence(CONFIRM_KEYS[label]))
            a.triggered.connect(lambda _=False, lab=label: self.confirm(label=lab))
            self.actions[label] = a
            b.clicked.connect(lambda _=False, lab=label: self.confirm(label=lab))
            self.group.addButton(b)
            self.buttons[label] = b
            row.addWidget(b)
        self.state_label = QLabel()
        self.state_label.setWordWrap(True)
        self.state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Room for two lines from the start: the panel is narrow and the text changes after layout.
        self.state_label.setMinimumHeight(self.state_label.fontMetrics().lineSpacing() * 2 + 4)
        self.state_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.addWidget(caption)
        lay.addLayout(row)
        lay.addWidget(self.state_label)

        self._rowChanged.connect(self._on_row_changed)
        self._listener = self._rowChanged.emit  # kept: the same callable must be removed later
        self.audit.add_listener(self._listener)
        self._update()

    def detach(self) -> None:
        """Stop listening to the audit log (before the box goes away)."""
        self.audit.remove_listener(self._listener)

    # ----- state --------------------------------------------------------------------------------
    @Slot(object)
    def set_result(self, result) -> None:
        """Show the read of ``result`` (a ``ViewResult``, or None when no result is shown)."""
        self.row = dict(result.audit_row) if result is not None and result.audit_row else None
        self._update()

    def confirm(self, label: str) -> bool:
        """Record ``label`` as the radiologist's read of the current result; False if it could not be."""
        if self.row is None:
            return False
        try:
            self.row = self.audit.confirm(self.row["id"], label)
        except (sqlite3.Error, KeyError) as e:
            logger.warning("Cannot record the read of audit row %s: %s", self.row["id"], e)
            self._update(self.tr("Your read could not be recorded: %1").replace("%1", str(e)))
            return False
        self._update()
        self.confirmed.emit(self.row)
        return True

    @Slot(dict)
    def _on_row_changed(self, row: dict) -> None:
        if self.row is not None and row["id"] == self.row["id"]:
            self.row = row
            self._update()

    def state_text(self) -> str:
        if self.row is None:
            return self.tr("Open an image to give your read.")
        read, model = self.row["confirmed_label"], self.row["label"]
        if self.row.get("suitable") == 0:  # withheld: the model gave no verdict to agree with
            if read is None:
                return self.tr("No model result for this image: your read is still recorded.")
            return self.tr("Recorded: %1 (the model gave no result).").replace("%1", label_text(read))
        if read is None:
            return self.tr("Not confirmed yet: the model says %1.").replace("%1", label_text(model))
        if read == model:
            return self.tr("Recorded: %1, agreeing with the model.").replace("%1", label_text(read))
        return (
            self.tr("Recorded: corrected to %1 (the model said %2).")
            .replace("%1", label_text(read))
            .replace("%2", label_text(model))
        )

    def _update(self, error: str | None = None) -> None:
        read = self.row["confirmed_label"] if self.row else None
        self.group.setExclusive(False)  # so that no button may be checked
        for label, b in self.buttons.items():
            b.setEnabled(self.row is not None)
            b.setChecked(label == read)
            self.actions[label].setEnabled(self.row is not None)
        self.group.setExclusive(True)
        self.state_label.setText(error or self.state_text())
        self.state_label.setStyleSheet("color: #b00020;" if error else "")


def attach(window, audit) -> FeedbackBox | None:
    """Put a ``FeedbackBox`` in ``window``'s result panel, following its results; None without an audit log."""
    if audit is None:
        return None
    box = FeedbackBox(audit)
    window.feedback_layout.addWidget(box)
    # between View and Model: what the radiologist does with a result
    menu = QMenu(QCoreApplication.translate("FeedbackBox", "&Result"), window)
    menu.addActions(list(box.actions.values()))
    window.menuBar().insertMenu(window.model_menu.menuAction(), menu)
    window.result_menu = menu
    window.resultShown.connect(box.set_result)
    window.errorShown.connect(lambda _message: box.set_result(None))
    window.analysisStarted.connect(lambda _path: box.set_result(None))  # no confirming A while B loads
    window.destroyed.connect(lambda *_: box.detach())
    box.set_result(window.current)
    return box
