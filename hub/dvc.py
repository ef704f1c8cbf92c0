"""DVC tracking of the pool: every import makes a new DVC version of ``pool/``.

The hub home is a DVC repository without git (``dvc init --no-scm``); ``pool.dvc`` holds the
directory hash DVC computed, which runs record beside the content fingerprint.
A remote (``dvc remote add``) can be configured by the ML team to push versions off the machine.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger(__name__)


class DvcError(RuntimeError):
    pass


def _dvc(home: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=home, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DvcError(f"dvc {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def ensure_repo(home: Path) -> None:
    if not (home / ".dvc").is_dir():
        home.mkdir(parents=True, exist_ok=True)
        _dvc(home, "init", "--no-scm", "-q")
        _dvc(home, "config", "core.analytics", "false")


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
