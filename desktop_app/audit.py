"""The local audit log: every result the app produced, in SQLite (WAL), exportable as CSV.

A row is written per prediction. ``label`` is the model's label; when the image was not suitable
(``suitable`` 0) it was withheld from the radiologist, and ``withheld_reason`` says why (``suitable``
is NULL on rows written before the suitability guard existed). ``confirmed_label`` stays empty
until the radiologist confirms or corrects the result, which is what later feeds labelled data back
to the hub (a withheld image may be labelled too). The ``exported_*`` columns say which labelled
batch sent the row's image to the hub, with which label and as which file (sha256 of the written
image): the hub refuses a batch with nothing new or with an image it already holds under the other
label, so an image is sent once. Older audit files get the later columns on first open.

A damaged audit file (not a database, or failing SQLite's integrity check) is never written over:
``AuditLog.open_or_recover`` (the viewer's and ``predict``'s way in) moves it aside as
``<name>.damaged-<time>`` with its ``-wal``/``-shm`` files, copies into a new log every row that can
still be read from it, and says so in ``problem``; if even that fails, the results of the session are
kept in memory only and ``problem`` says they are not being recorded. The plain constructor raises
``AuditError`` instead (``pneumo-desktop self-test`` reports it and leaves the file alone).

One connection is shared by the GUI thread and the workers (prediction, triage, export), so every
access holds one lock. Listeners (``add_listener``) hear of each new or changed row, from whichever
thread made the change: a Qt listener should emit a signal, which Qt queues to the GUI thread.
"""

from __future__ import annotations

import csv
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from contract.package import CLASSES, sha256_of
from desktop_app.config import make_private
from desktop_app.engine import Prediction

logger = logging.getLogger(__name__)

COLUMNS = (
    "id",
    "time",
    "file_name",
    "file_path",
    "sha256",
    "label",
    "probability",
    "threshold",
    "model_version",
    "confirmed_label",
    "confirmed_at",
    "exported_batch",
    "exported_at",
    "exported_label",
    "exported_sha256",
    "suitable",
    "withheld_reason",
    "ood_score",
    "variant",
    "views",
    "last_viewed_at",
)
# added after the first release: migrated in place (``AuditLog._migrate``); older rows keep NULL there
ADDED_COLUMNS = {
    "exported_batch": "TEXT",
    "exported_at": "TEXT",
    "exported_label": "TEXT",
    "exported_sha256": "TEXT",
    "suitable": "INTEGER",
    "withheld_reason": "TEXT",
    "ood_score": "REAL",
    "variant": "TEXT",
    "views": "INTEGER",  # how often this file was shown with this model and variant; NULL (older rows): once
    "last_viewed_at": "TEXT",
}
LABELS = CLASSES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    label TEXT NOT NULL,
    probability REAL NOT NULL,
    threshold REAL NOT NULL,
    model_version INTEGER NOT NULL,
    confirmed_label TEXT,
    confirmed_at TEXT,
    exported_batch TEXT,
    exported_at TEXT,
    exported_label TEXT,
    exported_sha256 TEXT,
    suitable INTEGER,
    withheld_reason TEXT,
    ood_score REAL,
    variant TEXT,
    views INTEGER,
    last_viewed_at TEXT
)"""


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def result_record(prediction: Prediction, file: str | os.PathLike) -> dict:
    """The audit fields of one result (what ``record`` stores and ``pneumo-desktop predict`` prints)."""
    file = Path(file)
    return {
        "time": now_utc(),
        "file_name": file.name,
        "file_path": str(file.resolve()),
        "sha256": sha256_of(file),
        "label": prediction.label,
        "probability": float(prediction.probability),
        "threshold": float(prediction.threshold),
        "model_version": int(prediction.model_version),
        "suitable": bool(prediction.suitable),
        "withheld_reason": prediction.reason,
        "ood_score": float(prediction.ood),
        "variant": prediction.variant,
    }


INVESTIGATIONAL = "For investigational use — not a diagnosis"


def csv_notice(what: str) -> str:
    """The first line of every CSV the app exports (spreadsheets show it as the first row; readers
    skip it as a ``#`` comment): the results are investigational, and when and by what they were made."""
    from desktop_app import __version__

    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return f"# {INVESTIGATIONAL}. PneumoScan {__version__}, {what}, exported {stamp}\n"


class AuditError(RuntimeError):
    """The audit file cannot be opened as an audit log; the message says which file and why."""


class AuditLog:
    """``record`` a prediction, ``confirm`` a row, read ``rows()`` or ``export_csv``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.problem = ""  # what went wrong opening it (``open_or_recover``), for the user; "" when fine
        self._lock = threading.RLock()
        self._listeners: list[Callable[[dict], None]] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # private from creation: SQLite gives its -wal and -shm files the database file's mode
            for f in (
                self.path,
                self.path.with_name(self.path.name + "-wal"),
                self.path.with_name(self.path.name + "-shm"),
            ):
                if str(self.path) != ":memory:" and (f == self.path or f.exists()):
                    make_private(f)
            self._db = sqlite3.connect(self.path, check_same_thread=False)
        except (OSError, sqlite3.Error) as e:
            raise AuditError(f"Cannot open the audit log {self.path}: {e}") from None
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {check}")
            with self._db:
                self._db.execute(_SCHEMA)
            self._migrate()
        except sqlite3.Error as e:
            self._db.close()
            raise AuditError(f"The audit log {self.path} is damaged ({e})") from None

    @classmethod
    def open_or_recover(cls, path: str | os.PathLike) -> AuditLog:
        """The audit log at ``path``; a damaged one is set aside, its readable rows copied into a new
        one, and ``problem`` says what happened (module docstring). Never raises."""
        path = Path(path)
        try:
            return cls(path)
        except AuditError as e:
            damage = str(e)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = path.with_name(f"{path.name}.damaged-{stamp}")
        n = 1
        while aside.exists():  # never over an earlier damaged copy
            n += 1
            aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
        try:
            for suffix in ("", "-wal", "-shm"):
                part = Path(f"{path}{suffix}")
                if part.exists():
                    os.replace(part, Path(f"{aside}{suffix}"))
            log = cls(path)
        except (OSError, AuditError) as e:
            logger.error("%s; cannot set it aside (%s): results are kept in memory only", damage, e)
            log = cls(":memory:")
            log.problem = f"{damage}. It could not be set aside ({e}): results are NOT being recorded"
            return log
        saved, lost = log._salvage(aside)
        log.problem = f"{damage}. It was set aside as {aside.name}; " + (
            f"{saved} earlier result{'s' * (saved != 1)} recovered into a new log" if saved else "a new log was started"
        )
        if lost:
            log.problem += f" ({lost} could not be read: they are only in the set-aside file, if anywhere)"
        logger.error("%s", log.problem)
        return log

    def _salvage(self, damaged: Path) -> tuple[int, int]:
        """Copy every row of ``damaged`` that still reads into this (new, empty) log: (copied, unreadable)."""
        saved = 0
        try:
            old = sqlite3.connect(f"{damaged.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error:
            return 0, 0
        # Row by row, by id, up to the highest id the file still tells: a damaged page loses the rows on
        # it, not the ones after it (a scan stops at the first bad page).
        top = 0
        for sql in ("SELECT seq FROM sqlite_sequence WHERE name = 'results'", "SELECT max(id) FROM results"):
            try:
                top = max(top, int(old.execute(sql).fetchone()[0] or 0))
            except (sqlite3.Error, TypeError, ValueError):
                continue
        old.row_factory = sqlite3.Row
        ids = range(1, top + 1)
        try:
            with self._lock, self._db:
                for row_id in ids:
                    try:
                        row = old.execute("SELECT * FROM results WHERE id = ?", (row_id,)).fetchone()
                        rec = {k: row[k] for k in row.keys() if k in COLUMNS}
                        self._db.execute(
                            f"INSERT INTO results ({', '.join(rec)}) VALUES ({', '.join('?' * len(rec))})",
                            tuple(rec.values()),
                        )
                    except (sqlite3.Error, TypeError):
                        continue  # a damaged page or row: it is lost, the others are kept
                    saved += 1
        finally:
            old.close()
        return saved, top - saved  # rows are never deleted: every id up to the top was a result

    def _migrate(self) -> None:
        """Add the columns an audit file made by an older version lacks (existing rows keep their values)."""
        have = {r[1] for r in self._db.execute("PRAGMA table_info(results)")}
        for col, kind in ADDED_COLUMNS.items():
            if col in have:
                continue
            try:
                with self._db:
                    self._db.execute(f"ALTER TABLE results ADD COLUMN {col} {kind}")
            except sqlite3.OperationalError as e:  # another instance of the app added it first
                if "duplicate column" not in str(e):
                    raise
            logger.info("Audit log %s: added column %s", self.path, col)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----- change notification ------------------------------------------------------------------
    def add_listener(self, callback: Callable[[dict], None]) -> None:
        """Call ``callback(row)`` after every ``record`` and ``confirm`` (on the thread that made it)."""
        with self._lock:
            self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[dict], None]) -> None:
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def _notify(self, row: dict) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            try:
                callback(row)
            except Exception:  # a broken listener (a closed window) must never lose the audit write
                logger.warning("Audit listener %r failed", callback, exc_info=True)

    # ----- rows ---------------------------------------------------------------------------------
    def record(self, prediction: Prediction, file: str | os.PathLike) -> dict:
        """Store one result (the file's sha256 is computed here); return the row as a dict.

        One row per file and model: the same file (path and content) shown again by the same model
        version and variant, with the same threshold and result, counts a view on its row (``views``,
        ``last_viewed_at``) instead of adding one, and keeps the read recorded there. Another model,
        variant or operating point, or changed content, is a new row.
        """
        rec = result_record(prediction, file)
        with self._lock:
            with self._db:
                same = self._db.execute(
                    "SELECT id FROM results WHERE file_path = ? AND sha256 = ? AND model_version = ? "
                    "AND COALESCE(variant, 'fp32') = ? AND threshold = ? AND label = ? AND ABS(probability - ?) < 1e-9 "
                    "ORDER BY id DESC LIMIT 1",
                    (
                        rec["file_path"],
                        rec["sha256"],
                        rec["model_version"],
                        rec["variant"],
                        rec["threshold"],
                        rec["label"],
                        rec["probability"],
                    ),
                ).fetchone()
                if same is not None:
                    row_id = same[0]
                    self._db.execute(
                        "UPDATE results SET views = COALESCE(views, 1) + 1, last_viewed_at = ? WHERE id = ?",
                        (rec["time"], row_id),
                    )
                else:
                    rec |= {"views": 1, "last_viewed_at": rec["time"]}
                    row_id = self._db.execute(
                        f"INSERT INTO results ({', '.join(rec)}) VALUES ({', '.join('?' * len(rec))})",
                        tuple(rec.values()),
                    ).lastrowid
            row = self.row(row_id)
        self._notify(row)
        return row

    def row(self, row_id: int) -> dict:
        with self._lock:
            r = self._db.execute("SELECT * FROM results WHERE id = ?", (row_id,)).fetchone()
        if r is None:
            raise KeyError(f"No audit row {row_id}")
        return dict(r)

    def rows(self) -> list[dict]:
        """Every row, oldest first."""
        with self._lock:
            return [dict(r) for r in self._db.execute("SELECT * FROM results ORDER BY id")]

    def confirmed(self) -> list[dict]:
        """The rows the radiologist confirmed or corrected, in the order they were confirmed."""
        with self._lock:
            return [
                dict(r)
                for r in self._db.execute(
                    "SELECT * FROM results WHERE confirmed_label IS NOT NULL ORDER BY confirmed_at, id"
                )
            ]

    def confirm(self, row_id: int, label: str) -> dict:
        """Record the radiologist's label (NORMAL or PNEUMONIA) for a row, stamped with the current time."""
        if label not in LABELS:
            raise ValueError(f"Invalid label {label!r}. Supported: {', '.join(LABELS)}")
        with self._lock:
            with self._db:
                cur = self._db.execute(
                    "UPDATE results SET confirmed_label = ?, confirmed_at = ? WHERE id = ?", (label, now_utc(), row_id)
                )
            if cur.rowcount != 1:
                raise KeyError(f"No audit row {row_id}")
            row = self.row(row_id)
        self._notify(row)
        return row

    def exported(self) -> list[dict]:
        """The rows whose image went to the hub in a labelled batch, oldest export first."""
        with self._lock:
            return [
                dict(r)
                for r in self._db.execute(
                    "SELECT * FROM results WHERE exported_batch IS NOT NULL ORDER BY exported_at, id"
                )
            ]

    def mark_exported(self, batch_id: str, items: list[tuple[int, str, str]]) -> list[dict]:
        """Record that batch ``batch_id`` sent each ``(row id, label sent, sha256 of the file written)``;
        all rows or none. Returns the updated rows."""
        at = now_utc()
        with self._lock:
            with self._db:
                for row_id, label, sha in items:
                    cur = self._db.execute(
                        "UPDATE results SET exported_batch = ?, exported_at = ?, exported_label = ?,"
                        " exported_sha256 = ? WHERE id = ?",
                        (batch_id, at, label, sha, row_id),
                    )
                    if cur.rowcount != 1:
                        raise KeyError(f"No audit row {row_id}")
            rows = [self.row(row_id) for row_id, _, _ in items]
        for row in rows:
            self._notify(row)
        return rows

    def export_csv(self, path: str | os.PathLike) -> Path:
        """Write every row to ``path``: the investigational-use line (``csv_notice``), then the header
        (``COLUMNS``) and the rows."""
        path = Path(path)
        with open(path, "w", newline="", encoding="utf-8") as f:
            f.write(csv_notice("audit log"))
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(self.rows())
        return path
