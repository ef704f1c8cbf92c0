"""Start `pneumo-hub up` as a subprocess and wait until it says every service answers (for the e2e tests)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

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
