"""DVC tracking of the pool: every import makes a new DVC version of ``pool/``.

The hub home is a DVC repository without git (``dvc init --no-scm``); ``pool.dvc`` holds the
directory hash DVC computed, which runs record beside the content fingerprint, and ``splits.json.dvc``
the hash of the persisted split.

``PNEUMO_DVC_REMOTE`` (a folder, or any DVC remote URL such as ``s3://bucket/pneumoscan``; the same on
every worker) is the hub's DVC remote, ``pneumo``: each dataset version a cycle trains on is pushed
there, and a worker that does not hold that version pulls exactly it by its hashes (``pull``), so
Airflow workers need no shared disk (``hub.dataset.checkout``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from hub.config import env_value

logger = logging.getLogger(__name__)


class DvcError(RuntimeError):
    pass


def _dvc(home: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=home, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DvcError(f"dvc {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


REMOTE = "pneumo"


def remote_url() -> str | None:
    """``PNEUMO_DVC_REMOTE``: a URL as given, a plain path made absolute; None when unset."""
    url = env_value("PNEUMO_DVC_REMOTE")
    if not url:
        return None
    return url if "://" in url else str(Path(url).expanduser().resolve())


def ensure_repo(home: Path) -> None:
    if not (home / ".dvc").is_dir():
        home.mkdir(parents=True, exist_ok=True)
        _dvc(home, "init", "--no-scm", "-q")
        _dvc(home, "config", "core.analytics", "false")
    url = remote_url()
    if url and f"url = {url}\n" not in (home / ".dvc" / "config").read_text() + "\n":
        _dvc(home, "remote", "add", "--default", "--force", REMOTE, url)


def push(home: Path, *targets: str) -> None:
    """Push the tracked versions of ``targets`` to the remote (nothing to do without one)."""
    ensure_repo(home)
    if remote_url():
        _dvc(home, "push", "-q", *[f"{t}.dvc" for t in targets])


def pull(home: Path, hashes: dict[str, str]) -> None:
    """Make each target (``{"pool": "<md5>.dir", "splits.json": "<md5>"}``) exactly that version,
    fetched from the remote; what this home held there before is replaced."""
    ensure_repo(home)
    if not remote_url():
        raise DvcError("No DVC remote: set PNEUMO_DVC_REMOTE (the same on every worker) to fetch a dataset version")
    for target, md5 in hashes.items():
        (home / f"{target}.dvc").write_text(f"outs:\n- md5: {md5}\n  hash: md5\n  path: {target}\n")
    _dvc(home, "pull", "--force", "-q", *[f"{t}.dvc" for t in hashes])


def track(home: Path, target: str = "pool") -> str:
    """``dvc add`` the folder; return the directory hash DVC recorded."""
    ensure_repo(home)
    _dvc(home, "add", "-q", target)
    return tracked_hash(home, target)


def tracked_hash(home: Path, target: str = "pool") -> str | None:
    dvc_file = home / f"{target}.dvc"
    if not dvc_file.exists():
        return None
    for line in dvc_file.read_text().splitlines():
        line = line.strip().lstrip("- ")
        if line.startswith("md5:"):
            return line.split(":", 1)[1].strip()
    return None
