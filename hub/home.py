"""Where a hub home lives, and moving it: a copied or restored home must never write into the original.

MLflow's embedded store keeps absolute locations (an experiment's ``artifact_location``, every
run's ``artifact_uri``, a model version's ``source``), and the hub's own records (``cycles/*.json``,
``batches/*.json``, quarantine reports, Airflow's generated ``airflow.cfg``) keep absolute paths
too. A home copied to another folder (a restored backup, a second test hub) would go on reading
and writing the original's files through them.

So the home records where it is (``home.json``, written by the first command that uses it).
``check`` refuses to work in a home whose record names another folder — a ``HomeMoved`` error that
says to run ``pneumo-hub rehome`` — and ``rehome`` rewrites every stored absolute path that starts
with the old folder to the new one (the SQLite databases' text columns and the records above),
then records the new place. Images, checkpoints and MLflow's artifact files hold no paths and are
not touched. A home behind an MLflow server with its own database (compose) keeps its artifact
locations in that server (``mlflow-artifacts:/``, relative): only the hub's records move.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

from contract.atomic import write_atomic
from hub.config import HubPaths, SettingsError

logger = logging.getLogger(__name__)
MARKER = "home.json"
# folders of the home that hold data, not paths: never rewritten (and large)
_DATA_DIRS = {"pool", "mlartifacts", "runs", "cache", "packages", "ingested", ".dvc", "logs", "feed", "feed-keys"}
_TEXT_SUFFIXES = {".json", ".cfg", ".toml", ".yaml", ".yml"}


class HomeMoved(SettingsError):
    """The home's record names another folder: it was copied or restored here."""


def _marker(paths: HubPaths) -> Path:
    return paths.home / MARKER


def recorded(paths: HubPaths) -> Path | None:
    try:
        return Path(json.loads(_marker(paths).read_text())["home"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check(paths: HubPaths) -> None:
    """Record the home's place on first use; refuse a home that was recorded somewhere else."""
    if not paths.home.is_dir():
        return  # nothing here yet: the first command that creates it records it next time
    here = paths.home.resolve()
    was = recorded(paths)
    if was is None:
        write_atomic(_marker(paths), json.dumps({"home": str(here)}))
        return
    if was != here:
        raise HomeMoved(
            f"This hub home was at {was} and is now at {here} (copied or restored?): its MLflow store and "
            f"records still point at {was}, so working here would read and write there. Run "
            f"`pneumo-hub --home {here} rehome` first."
        )


def _rewrite_sqlite(db: Path, old: str, new: str) -> int:
    """Replace the ``old`` folder prefix by ``new`` in every text column of every table; rows changed."""
    changed = 0
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
            columns = [r[1] for r in info if "CHAR" in r[2].upper() or "TEXT" in r[2].upper()]
            for col in columns:
                cur = conn.execute(
                    f'UPDATE "{table}" SET "{col}" = replace("{col}", ?, ?) WHERE instr("{col}", ?) > 0',
                    (old + "/", new + "/", old + "/"),
                )
                changed += cur.rowcount
                cur = conn.execute(f'UPDATE "{table}" SET "{col}" = ? WHERE "{col}" = ?', (new, old))
                changed += cur.rowcount
    return changed


def _text_files(home: Path):
    for p in home.iterdir():
        if p.name in _DATA_DIRS:
            continue
        if p.is_file() and p.suffix in _TEXT_SUFFIXES:
            yield p
        elif p.is_dir() and not p.is_symlink():
            yield from (f for f in p.rglob("*") if f.is_file() and f.suffix in _TEXT_SUFFIXES and "logs" not in f.parts)


def rehome(paths: HubPaths, old: Path | None = None) -> dict:
    """Re-root a copied home: every stored path under ``old`` (default: the recorded place) now points here."""
    here = paths.home.resolve()
    old = Path(old).resolve() if old is not None else recorded(paths)
    if old is None:
        raise SettingsError(f"{here} has no record of where it was ({MARKER}): say it with --from OLD_FOLDER")
    if old == here:
        write_atomic(_marker(paths), json.dumps({"home": str(here)}))
        return {"from": str(old), "to": str(here), "database_rows": 0, "files": 0}
    rows = 0
    for db in (paths.mlflow_db, paths.home / "airflow" / "airflow.db"):
        if db.is_file():
            rows += _rewrite_sqlite(db, str(old), str(here))
    files = 0
    for f in _text_files(paths.home):
        if f.name == MARKER:
            continue
        text = f.read_text(encoding="utf-8", errors="surrogateescape")
        if str(old) in text:
            moved = text.replace(str(old) + "/", str(here) + "/").replace(f'"{old}"', f'"{here}"')
            moved = moved.replace(f"= {old}\n", f"= {here}\n")
            if moved != text:
                write_atomic(f, moved.encode("utf-8", errors="surrogateescape"))
                files += 1
    write_atomic(_marker(paths), json.dumps({"home": str(here)}))
    logger.info("Re-rooted %s from %s: %d database rows, %d files", here, old, rows, files)
    return {"from": str(old), "to": str(here), "database_rows": rows, "files": files}
