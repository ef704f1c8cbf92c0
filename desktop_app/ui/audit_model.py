"""The audit log as Qt models, tested with no window open: ``AuditModel`` holds the rows (kept current
through the audit log's listener, so results recorded by the viewer or a triage show up live) and the
radiologist's read per row; ``AuditProxy`` sorts (newest first) and filters them by text and status.
"""

from __future__ import annotations

from PySide6.QtCore import QDateTime, QModelIndex, QObject, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor

from contract.package import POSITIVE
from desktop_app.ui.format import SORT_ROLE, RowsTableModel, label_text, percent

ALL, UNCONFIRMED, CONFIRMED, CORRECTED = range(4)  # the status filter


class AuditModel(RowsTableModel):
    """Audit rows (dicts, as ``AuditLog.rows`` gives them), newest first."""

    (
        COL_TIME,
        COL_FILE,
        COL_LABEL,
        COL_PROBABILITY,
        COL_THRESHOLD,
        COL_MODEL,
        COL_READ,
        COL_CONFIRMED_AT,
        COL_EXPORTED,
        COL_VIEWS,
        COL_SHA256,
    ) = range(11)

    def __init__(self, parent: QObject | None = None):
        super().__init__(
            [
                self.tr("Time"),
                self.tr("File"),
                self.tr("Model result"),
                self.tr("Probability"),
                self.tr("Threshold"),
                self.tr("Model version"),
                self.tr("Your read"),
                self.tr("Read at"),
                self.tr("Sent in batch"),
                self.tr("Views"),
                self.tr("SHA-256"),
            ],
            parent,
        )
        self.rows: list[dict] = []
        self._index: dict[int, int] = {}  # audit id → position in ``rows``

    def load(self, rows: list[dict]) -> None:
        self.beginResetModel()
        self.rows = sorted(rows, key=lambda r: r["id"], reverse=True)
        self._index = {r["id"]: i for i, r in enumerate(self.rows)}
        self.endResetModel()

    def upsert(self, row: dict) -> None:
        """A new row goes on top; a changed one is updated in place."""
        i = self._index.get(row["id"])
        if i is not None:
            self.rows[i] = row
            self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.headers) - 1))
            return
        self.beginInsertRows(QModelIndex(), 0, 0)
        self.rows.insert(0, row)
        self._index = {r["id"]: i for i, r in enumerate(self.rows)}
        self.endInsertRows()

    @staticmethod
    def local_time(iso: str | None) -> str:
        """An audit timestamp (ISO, UTC) in the computer's time zone, to the second."""
        if not iso:
            return ""
        t = QDateTime.fromString(iso, Qt.DateFormat.ISODate)
        return t.toLocalTime().toString("yyyy-MM-dd HH:mm:ss") if t.isValid() else iso

    @staticmethod
    def withheld(row: dict) -> bool:
        """The model gave no verdict for this row (NULL: recorded before the guard existed, a verdict)."""
        return row.get("suitable") == 0

    def read_text(self, row: dict) -> str:
        read = row["confirmed_label"]
        if read is None:
            return ""
        if read == row["label"] or self.withheld(row):  # nothing to correct when the model gave no verdict
            return label_text(read)
        return self.tr("%1 (corrected)").replace("%1", label_text(read))

    def exported_tip(self, row: dict) -> str | None:
        if not row.get("exported_batch"):
            return None
        return (
            self.tr("Sent to the hub as %1 on %2")
            .replace("%1", label_text(row["exported_label"]))
            .replace("%2", self.local_time(row["exported_at"]))
        )

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        row, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return {
                self.COL_TIME: lambda: self.local_time(row["time"]),
                self.COL_FILE: lambda: row["file_name"],
                self.COL_LABEL: lambda: (
                    self.tr("No result (withheld)") if self.withheld(row) else label_text(row["label"])
                ),
                self.COL_PROBABILITY: lambda: "" if self.withheld(row) else percent(row["probability"]),
                self.COL_THRESHOLD: lambda: percent(row["threshold"]),
                self.COL_MODEL: lambda: f"{row['model_version']} ({row.get('variant') or 'fp32'})",
                self.COL_VIEWS: lambda: str(row.get("views") or 1),
                self.COL_READ: lambda: self.read_text(row),
                self.COL_CONFIRMED_AT: lambda: self.local_time(row["confirmed_at"]),
                self.COL_EXPORTED: lambda: row.get("exported_batch") or "",
                self.COL_SHA256: lambda: row["sha256"][:16],
            }[col]()
        if role == SORT_ROLE:
            return {
                self.COL_TIME: row["id"],
                self.COL_PROBABILITY: row["probability"],
                self.COL_THRESHOLD: row["threshold"],
                self.COL_MODEL: row["model_version"] * 2 + (row.get("variant") == "int8"),
                self.COL_VIEWS: row.get("views") or 1,
                self.COL_CONFIRMED_AT: row["confirmed_at"] or "",
            }.get(col, self.data(index))
        if role == Qt.ItemDataRole.ToolTipRole:
            return {
                self.COL_FILE: row["file_path"],
                self.COL_SHA256: row["sha256"],
                self.COL_TIME: row["time"],
                self.COL_VIEWS: self.tr("Last shown %1").replace(
                    "%1", self.local_time(row.get("last_viewed_at") or row["time"])
                ),
                self.COL_EXPORTED: self.exported_tip(row),
                self.COL_LABEL: row.get("withheld_reason") if self.withheld(row) else None,
            }.get(col)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (
            self.COL_PROBABILITY,
            self.COL_THRESHOLD,
            self.COL_MODEL,
        ):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == self.COL_LABEL and self.withheld(row):
                return QBrush(QColor("#8a6d00"))
            if col == self.COL_LABEL and row["label"] == POSITIVE:
                return QBrush(QColor("#b00020"))
            if col == self.COL_READ and row["confirmed_label"] not in (None, row["label"]) and not self.withheld(row):
                return QBrush(QColor("#8a4b00"))
        return None


class AuditProxy(QSortFilterProxyModel):
    """Newest first by default; ``set_text`` keeps rows whose file name or labels contain it,
    ``set_status`` keeps all, unconfirmed, confirmed or corrected rows."""

    def __init__(self, source: AuditModel, parent: QObject | None = None):
        super().__init__(parent)
        self.setSourceModel(source)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)
        self.text, self.status = "", ALL
        self.sort(AuditModel.COL_TIME, Qt.SortOrder.DescendingOrder)

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self.text = text.strip().casefold()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_status(self, status: int) -> None:
        self.beginFilterChange()
        self.status = status
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def row_at(self, proxy_row: int) -> dict:
        return self.sourceModel().rows[self.mapToSource(self.index(proxy_row, 0)).row()]

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:
        m: AuditModel = self.sourceModel()
        row = m.rows[source_row]
        read = row["confirmed_label"]
        if (
            self.status == UNCONFIRMED
            and read is not None
            or self.status == CONFIRMED
            and read is None
            or self.status == CORRECTED
            and (read in (None, row["label"]) or m.withheld(row))
        ):
            return False
        if not self.text:
            return True
        haystack = [row["file_name"], row["label"], read or "", label_text(row["label"]), m.read_text(row)]
        return any(self.text in s.casefold() for s in haystack)
