"""`pneumo-hub up` brings up MLflow, Airflow (with our DAGs) and the feed, and Ctrl-C stops them all."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.request

import pytest

from tests.conftest import free_port
from tests.e2e.hub_up import start_up, wait_ready

pytestmark = pytest.mark.slow


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
        return r.status, r.read()


def _send(url: str, method: str, body: dict, headers: dict) -> dict:
    req = urllib.request.Request(
        url, method=method, data=json.dumps(body).encode(), headers={**headers, "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_up_serves_everything_and_ctrl_c_stops_it(tmp_path):
    ports = {"mlflow": free_port(), "airflow": free_port(), "feed": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    proc = start_up(tmp_path / "home", ports, env)
    try:
        out = wait_ready(proc, tmp_path / "home")
        assert f"http://127.0.0.1:{ports['airflow']}" in out and "Airflow login: admin / " in out

        assert _get(f"http://127.0.0.1:{ports['mlflow']}/health")[0] == 200
        status, root = _get(f"http://127.0.0.1:{ports['feed']}/metadata/root.json")
        assert status == 200 and json.loads(root)["signed"]["_type"] == "root"
        # our DAGs are loaded by Airflow's dag-processor: ask its REST API with the printed login
        password = out.split("Airflow login: admin / ")[1].split()[0]
        req = urllib.request.Request(
            f"http://127.0.0.1:{ports['airflow']}/auth/token",
            method="POST",
            data=json.dumps({"username": "admin", "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            token = json.loads(r.read())["access_token"]
        dags = set()
        deadline = time.monotonic() + 180
        while "continuous_training" not in dags and time.monotonic() < deadline:
            _, body = _get(f"http://127.0.0.1:{ports['airflow']}/api/v2/dags", {"Authorization": f"Bearer {token}"})
            dags = {d["dag_id"] for d in json.loads(body)["dags"]}
            time.sleep(3)
        assert {"continuous_training", "incoming_watch"} <= dags

        # a task really runs on these non-default ports: the scheduler's worker reports to the execution
        # API of this api-server (with Airflow's default URL every task failed with "Connection refused")
        api, auth = f"http://127.0.0.1:{ports['airflow']}/api/v2", {"Authorization": f"Bearer {token}"}
        _send(f"{api}/dags/incoming_watch", "PATCH", {"is_paused": False}, auth)
        run = _send(f"{api}/dags/incoming_watch/dagRuns", "POST", {"logical_date": None}, auth)["dag_run_id"]
        state, deadline = "queued", time.monotonic() + 240
        while state not in ("success", "failed") and time.monotonic() < deadline:
            time.sleep(3)
            _, body = _get(f"{api}/dags/incoming_watch/dagRuns/{run}", auth)
            state = json.loads(body)["state"]
        _, body = _get(f"{api}/dags/incoming_watch/dagRuns/{run}/taskInstances", auth)
        tasks = {t["task_id"]: t["state"] for t in json.loads(body)["task_instances"]}
        assert state == "success" and tasks.get("new_batches") == "success", (state, tasks)
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, rest
    assert "stopped." in rest
    time.sleep(1)
    assert not any(_port_open(p) for p in ports.values()), "a service is still listening after Ctrl-C"
