"""How things are shown in the UI (one definition, shared by the viewer, the triage table and the audit log)."""

from __future__ import annotations

import re

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


# The reasons the app's readers give (contract.preprocess, desktop_app.images), in the UI's language: the
# fixed phrase is translated, the detail in parentheses (a library's own words) stays as it is.
_REASONS: list[tuple[re.Pattern, object]] = [
    (
        re.compile(r"^image data is corrupt or truncated(.*)$", re.S),
        lambda m: QCoreApplication.translate("Reasons", "image data is corrupt or truncated%1").replace("%1", m[1]),
    ),
    (
        re.compile(r"^not an image file \(format not recognised\)$"),
        lambda m: QCoreApplication.translate("Reasons", "not an image file (format not recognised)"),
    ),
    (
        re.compile(r"^empty file \(0 bytes\)$"),
        lambda m: QCoreApplication.translate("Reasons", "empty file (0 bytes)"),
    ),
    (
        re.compile(r"^cannot read file: permission denied"),
        lambda m: QCoreApplication.translate(
            "Reasons", "cannot read file: permission denied (this user may not read it; ask IT)"
        ),
    ),
    (
        re.compile(r"^cannot read file: (.*) does not exist$", re.S),
        lambda m: QCoreApplication.translate("Reasons", "cannot read file: %1 does not exist").replace("%1", m[1]),
    ),
    (
        re.compile(r"^cannot read file: (.*) is a folder, not a file$", re.S),
        lambda m: QCoreApplication.translate("Reasons", "cannot read file: %1 is a folder, not a file").replace(
            "%1", m[1]
        ),
    ),
    (
        re.compile(r"^image too small: (\d+)x(\d+) \(minimum side (\d+) px\)$"),
        lambda m: (
            QCoreApplication.translate("Reasons", "image too small: %1x%2 (minimum side %3 px)")
            .replace("%1", m[1])
            .replace("%2", m[2])
            .replace("%3", m[3])
        ),
    ),
    (
        re.compile(r"^image too large: (\d+)x(\d+) pixels \(limit ([\d,]+)\)$"),
        lambda m: (
            QCoreApplication.translate("Reasons", "image too large: %1x%2 pixels (limit %3)")
            .replace("%1", m[1])
            .replace("%2", m[2])
            .replace("%3", m[3])
        ),
    ),
    (
        re.compile(r"^unsupported colour mode (.*): expected grayscale or RGB$", re.S),
        lambda m: QCoreApplication.translate(
            "Reasons", "unsupported colour mode %1: expected grayscale or RGB"
        ).replace("%1", m[1]),
    ),
    (
        re.compile(r"^not a DICOM file \(no DICM preamble or readable header\)$"),
        lambda m: QCoreApplication.translate("Reasons", "not a DICOM file (no DICM preamble or readable header)"),
    ),
    (
        re.compile(r"^DICOM header is corrupt or truncated(.*)$", re.S),
        lambda m: QCoreApplication.translate("Reasons", "DICOM header is corrupt or truncated%1").replace("%1", m[1]),
    ),
    (
        re.compile(r"^DICOM file holds no image \(no Pixel Data\)$"),
        lambda m: QCoreApplication.translate("Reasons", "DICOM file holds no image (no Pixel Data)"),
    ),
    (
        re.compile(r"^DICOM pixel data cannot be decoded(.*)$", re.S),
        lambda m: QCoreApplication.translate("Reasons", "DICOM pixel data cannot be decoded%1").replace("%1", m[1]),
    ),
]


def error_text(reason: str) -> str:
    """Why a file could not be used, in the UI's language (an unknown reason as it is)."""
    for pattern, say in _REASONS:
        m = pattern.match(reason)
        if m:
            return say(m)
    return reason
