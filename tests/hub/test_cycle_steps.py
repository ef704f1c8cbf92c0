"""Cycle steps that need no training: bad batches never block the queue or touch the pool."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from hub import cycle, dvc
from hub.pool import Pool
from tests.conftest import ROOT, sample_files


@pytest.fixture
def cfg(hub_paths, tmp_path):
    return cycle.CycleConfig.from_env(hub_paths, {"incoming": str(tmp_path / "incoming"), "settle_seconds": 0})


def test_folder_that_is_not_a_batch_is_quarantined_and_good_batches_still_go_in(hub_paths, cfg):
    before = len(Pool(hub_paths.pool).entries())
    (cfg.incoming / "loose").mkdir(parents=True)
    shutil.copy(sample_files("NORMAL", 1)[0], cfg.incoming / "loose" / "x.jpeg")  # no label folder
    good = cfg.incoming / "good"
    (good / "PNEUMONIA").mkdir(parents=True)
    from PIL import Image, ImageOps

    for i, f in enumerate(sample_files("PNEUMONIA", 3)):
        ImageOps.mirror(Image.open(f)).save(good / "PNEUMONIA" / f"person{80000 + i}_virus_1.jpeg")
    batches = cycle.detect(hub_paths, cfg)
    assert batches == ["good", "loose"]
    assert cycle.validate(hub_paths, cfg, batches) == ["good"]
    record = json.loads((hub_paths.home / "batches" / "loose.json").read_text())
    assert record["status"] == "quarantined" and "neither split folders" in record["problems"][0]["reason"]
    cycle.ingest(hub_paths, cfg, ["good"])
    assert len(Pool(hub_paths.pool).entries()) == before + 3
    # a retry of both steps finds the work done and changes nothing
    assert cycle.validate(hub_paths, cfg, batches) == []
    cycle.ingest(hub_paths, cfg, ["good"])
    assert len(Pool(hub_paths.pool).entries()) == before + 3
    assert cycle.detect(hub_paths, cfg) == []


def test_bad_settings_are_refused_with_the_setting_named(hub_paths):
    for bad, needle in (
        ({"epochs": 0}, "Invalid epochs 0"),
        ({"epochs": "x"}, "Invalid epochs 'x'"),
        ({"bogus": 1}, "Unknown cycle settings ['bogus']"),
        ({"policy": {"min_recal": 1}}, "Unknown promotion policy keys"),
    ):
        with pytest.raises(ValueError) as e:
            cycle.CycleConfig.from_env(hub_paths, bad)
        assert needle in str(e.value)
    assert cycle.CycleConfig.from_env(hub_paths, {"warm_start": "false"}).warm_start is False


VALIDATE_AND_INGEST = """
import sys
from pathlib import Path
from hub import cycle
from hub.config import HubPaths
paths = HubPaths(Path(sys.argv[1]))
cfg = cycle.CycleConfig.from_env(paths, {"incoming": sys.argv[2], "settle_seconds": 0})
cycle.ingest(paths, cfg, cycle.validate(paths, cfg, cycle.detect(paths, cfg)))
"""


def _pool_dvc_current(home) -> bool:
    return "up to date" in dvc._dvc(home, "status", "pool.dvc")


def test_a_cycle_killed_in_dvc_add_finishes_the_batch_when_run_again(hub_paths, cfg):
    """Before: the retry found the images in the pool, quarantined the batch as "nothing new", and
    pool.dvc stayed out of date for good."""
    from PIL import Image, ImageOps

    before = len(Pool(hub_paths.pool).entries())
    batch = cfg.incoming / "clinic-7" / "PNEUMONIA"
    batch.mkdir(parents=True)
    for i, f in enumerate(sample_files("PNEUMONIA", 3, offset=4)):
        ImageOps.mirror(Image.open(f)).save(batch / f"person{81000 + i}_virus_1.jpeg")
    proc = subprocess.Popen(
        [sys.executable, "-c", VALIDATE_AND_INGEST, str(hub_paths.home), str(cfg.incoming)],
        cwd=ROOT,
        env=os.environ,
        start_new_session=True,
    )
    deadline, seen = time.monotonic() + 120, None
    while seen is None and time.monotonic() < deadline and proc.poll() is None:
        kids = psutil.Process(proc.pid).children(recursive=True)
        seen = next((k for k in kids if "add" in k.cmdline() and "dvc" in " ".join(k.cmdline())), None)
        time.sleep(0.01)
    assert seen is not None, "the ingest never ran dvc add"
    os.killpg(proc.pid, signal.SIGKILL)  # the worker dies: OOM killer, power, a pod evicted
    proc.wait(timeout=30)
    gone, alive = psutil.wait_procs([seen], timeout=30)  # reaped by init: DVC then frees its lock
    assert not alive
    # The state the crash left: the images copied in, the DVC version not made.
    assert len(Pool(hub_paths.pool).entries()) == before + 3
    assert not _pool_dvc_current(hub_paths.home)
    assert (cfg.incoming / "clinic-7").is_dir() and not (hub_paths.home / "batches" / "clinic-7.json").exists()

    # Airflow's retry (or the next cycle) runs the same steps again: they converge.
    good = cycle.validate(hub_paths, cfg, cycle.detect(hub_paths, cfg))
    assert good == ["clinic-7"]
    cycle.ingest(hub_paths, cfg, good)
    record = json.loads((hub_paths.home / "batches" / "clinic-7.json").read_text())
    assert record["status"] == "ingested"
    assert len(Pool(hub_paths.pool).entries()) == before + 3  # nothing twice
    assert _pool_dvc_current(hub_paths.home)
    assert not (hub_paths.quarantine / "clinic-7").exists()
