"""One writer per hub home: a second cycle is refused with who holds the hub; a killed holder frees it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.lock import HubBusy, hub_lock
from tests.conftest import ROOT, sample_files

HOLD = """
import sys, time
from hub.lock import hub_lock
with hub_lock(sys.argv[1], "a cycle under test"):
    print("held", flush=True)
    time.sleep(600)
"""


def _holder(home: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home)], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=os.environ
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_cycle_is_refused_and_touches_nothing_until_the_holder_is_killed(tmp_path):
    home, incoming = tmp_path / "home", tmp_path / "incoming"
    batch = incoming / "batch-1" / "NORMAL"
    batch.mkdir(parents=True)
    for f in sample_files("NORMAL", 3):
        shutil.copy(f, batch / f.name)
    env = {**os.environ, "PNEUMO_INCOMING": str(incoming), "PNEUMO_BATCH_SETTLE_SECONDS": "0"}
    holder = _holder(home)
    try:
        out = subprocess.run(
            [str(Path(sys.executable).parent / "pneumo-hub"), "--home", str(home), "cycle"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert out.returncode == 1
        assert f"pid {holder.pid}, a cycle under test" in out.stderr and "Wait for it to finish" in out.stderr
        assert "Traceback" not in out.stderr
        assert sorted(p.name for p in batch.iterdir()) == sorted(f.name for f in sample_files("NORMAL", 3))
        assert not (home / "batches").exists() and not (home / "pool").exists(), "the refused cycle wrote nothing"
        with pytest.raises(HubBusy, match="a cycle under test"):
            with hub_lock(home, "this test"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    time.sleep(0.1)
    with hub_lock(home, "this test"):  # killed with -9: the kernel released the lock
        with hub_lock(home, "the same process again"):  # re-entrant, as run_once's steps take it
            assert "this test" in (home / "hub.lock").read_text()
    assert (home / "hub.lock").read_text() == "", "a released lock names no holder"
