"""Start `pneumo-hub up` as a subprocess and wait until it says every service answers (for the e2e tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from hub import settings
from hub.config import HubPaths

READY = "Ctrl-C stops everything"


def start_up(home: Path, ports: dict[str, int], env: dict[str, str]) -> subprocess.Popen:
    """``pneumo-hub --home HOME up --mlflow-port … --airflow-port … --feed-port …``, output piped."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "pneumo-hub"), "--home", str(home), "up"]
        + [a for name, port in ports.items() for a in (f"--{name}-port", str(port))],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def wait_ready(proc: subprocess.Popen, home: Path, timeout_s: float = 400) -> str:
    """What ``up`` printed until it was ready; fails with that and the Airflow log's tail if it never was."""
    lines = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if READY in line:
            break
    out = "".join(lines)
    log = home / "logs" / "airflow.log"
    assert READY in out, out + (log.read_text()[-3000:] if log.exists() else "")
    return out


def tiny_settings(home: Path, env: dict[str, str]) -> Path:
    """The hub settings file `up` would write for ``env`` (its TORCH_HOME: no ImageNet file, so
    ``weights = "none"``), made tiny (3 epochs at 64 px, 2 s settle, a lenient policy); its path."""
    os.environ["TORCH_HOME"], before = env["TORCH_HOME"], os.environ.get("TORCH_HOME")
    try:
        path, created = settings.ensure(HubPaths(home))
    finally:
        os.environ.pop("TORCH_HOME") if before is None else os.environ.__setitem__("TORCH_HOME", before)
    text = path.read_text()
    assert created and 'weights = "none"' in text
    for old, new in (
        ("epochs = 10", "epochs = 3"),
        ("batch_size = 32", "batch_size = 16"),
        ("image_size = 224", "image_size = 64"),
        ("num_workers = 1", "num_workers = 0"),
        ("settle_seconds = 60.0", "settle_seconds = 2.0"),
        ("min_recall = 0.9", "min_recall = 0.6"),
        ("min_accuracy = 0.8", "min_accuracy = 0.5"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return path


def api(base: str, path: str, tok: str, method: str = "GET", body: dict | None = None) -> dict:
    """One Airflow REST API call with a bearer token."""
    req = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {tok}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def token(base: str, password: str) -> str:
    """A bearer token for Airflow's simple auth manager's ``admin``."""
    req = urllib.request.Request(
        base + "/auth/token",
        method="POST",
        data=json.dumps({"username": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["access_token"]
