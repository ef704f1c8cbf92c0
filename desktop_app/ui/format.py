"""How things are shown in the UI (one definition, shared by the viewer, the triage table and the audit log)."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QCoreApplication, QLocale, QModelIndex, Qt

SORT_ROLE = Qt.ItemDataRole.UserRole  # what a table sorts on (numbers where the text would sort wrong)


def percent(p: float) -> str:
    """A probability or threshold with one decimal in the UI's language: ``87.3 %``, in French ``87,3 %``."""
    return f"{QLocale().toString(p * 100, 'f', 1)} %"


def label_text(label: str | None) -> str:
    """A class label (``NORMAL`` / ``PNEUMONIA``) in the UI's language; anything else as it is."""
    if label == "NORMAL":
        return QCoreApplication.translate("Labels", "NORMAL")
    if label == "PNEUMONIA":
        return QCoreApplication.translate("Labels", "PNEUMONIA")
    return label or ""


class RowsTableModel(QAbstractTableModel):
    """A flat table over ``self.rows`` with ``self.headers`` (one per column); subclasses give ``data``."""

    def __init__(self, headers: list[str], parent=None):
        super().__init__(parent)
        self.rows: list = []
        self.headers = headers

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.headers)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.headers[section]
        return super().headerData(section, orientation, role)


def model_date(created_at: str) -> str:
    """The date part of the card's ISO timestamp (``2026-11-27``)."""
    return created_at[:10]


def reason_text(prediction) -> str:
    """Why a result was withheld, in the UI's language (``Prediction.reason_code`` / ``reason``)."""
    if prediction.reason_code == "atypical":
        return QCoreApplication.translate("Suitability", "unlike the images this model was trained on")
    return prediction.reason or ""
