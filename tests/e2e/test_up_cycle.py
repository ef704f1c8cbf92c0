"""The automatic loop for real: `pneumo-hub up` on non-default ports, a batch dropped into incoming/,
and Airflow's own scheduler runs the asset-triggered cycle to a signed feed version — no click, no
REST call, no run conf: the settings come from the hub settings file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import pytest

from feed.client import FeedClient
from tests.conftest import SAMPLE, free_port
from tests.e2e.hub_up import api, start_up, tiny_settings, token, wait_ready

pytestmark = pytest.mark.slow


def test_a_dropped_batch_becomes_a_feed_version_with_no_manual_step(tmp_path):
    ports = {"mlflow": free_port(), "airflow": free_port(), "feed": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PNEUMO_", "MLFLOW_TRACKING"))}
    env.update({"TORCH_HOME": str(tmp_path / "torch"), "PNEUMO_WATCH_SECONDS": "15"})
    home = tmp_path / "home"
    path = tiny_settings(home, env)

    started = time.monotonic()
    proc = start_up(home, ports, env)
    try:
        out = wait_ready(proc, home)
        assert f"automatic runs train and judge with {path}" in out
        assert f"into {home / 'incoming'}" in out

        # what a technician does: copy a labelled batch into the incoming folder, and nothing else
        batch = home / "incoming" / "batch-1"
        for label in ("NORMAL", "PNEUMONIA"):
            shutil.copytree(SAMPLE / "train" / label, batch / label)
        dropped = time.monotonic()

        client = FeedClient(
            home / "feed" / "metadata" / "root.json", f"http://127.0.0.1:{ports['feed']}", tmp_path / "c"
        )
        offer, deadline = None, time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                offer = client.check()
            except Exception:  # noqa: BLE001 - an empty feed has no champion yet; keep polling
                offer = None
            if offer is not None:
                break
            time.sleep(5)
        password = out.split("Airflow login: admin / ")[1].split()[0]
        base = f"http://127.0.0.1:{ports['airflow']}"
        tok = token(base, password)
        runs = api(base, "/api/v2/dags/continuous_training/dagRuns", tok)["dag_runs"]
        settle = time.monotonic() + 90  # publish is the last task: its run ends a moment after the feed has it
        while time.monotonic() < settle and any(r["state"] in ("queued", "running") for r in runs):
            time.sleep(3)
            runs = api(base, "/api/v2/dags/continuous_training/dagRuns", tok)["dag_runs"]
        assert offer is not None and offer.version == 1, (
            runs,
            (home / "logs" / "airflow.log").read_text()[-4000:],
        )
        print(
            f"\nbatch dropped -> feed version 1: {time.monotonic() - dropped:.0f} s ({dropped - started:.0f} s of up)"
        )
        # one run, started by the asset event (not a back-filled 02:00 run, and not one more per look of
        # the watch while the first trained), trained with the file's settings
        assert [(r["run_type"], r["state"]) for r in runs] == [("asset_triggered", "success")], runs
        cycle = json.loads(next((home / "cycles").glob("*.json")).read_text())
        from mlflow import MlflowClient

        params = MlflowClient(f"http://127.0.0.1:{ports['mlflow']}").get_run(cycle["challenger_run_id"]).data.params
        assert (params.get("image_size"), params.get("epochs"), params.get("weights")) == ("64", "3", "none"), params
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, rest
