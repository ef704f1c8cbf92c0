"""The optional approval step for real: `pneumo-hub up` with PNEUMO_REQUIRE_APPROVAL, a dropped batch,
and Airflow's own scheduler parks the promotion until a person answers through the REST API (what the
UI's Required Actions page calls): nothing is published before the answer; Approve publishes and is
recorded on the registry version; Reject (the second batch) keeps champion and feed and raises an alert."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from feed.client import FeedClient
from hub.demo import stage_batches
from tests.conftest import SAMPLE, free_port
from tests.e2e.hub_up import api, start_up, tiny_settings, token, wait_ready

pytestmark = pytest.mark.slow
RUNS = "/api/v2/dags/continuous_training/dagRuns"


def _drop(batch: Path, home: Path) -> None:
    shutil.move(str(batch), home / "incoming" / batch.name)


def _pending_request(base: str, tok: str, timeout_s: float = 600) -> dict:
    """The approval request the run waits on (polled as a reviewer's UI would)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = api(base, f"{RUNS}/~/hitlDetails?response_received=false", tok)["hitl_details"]
        if found:
            ti = found[0]["task_instance"]
            state = api(base, f"{RUNS}/{ti['dag_run_id']}/taskInstances/{ti['task_id']}", tok)["state"]
            # A person answers seconds to hours after the request is shown; this test would answer within
            # milliseconds, inside the window between the operator writing the request and the worker
            # parking the task, where Airflow (3.3.2) sometimes marks the task failed ("approve failed: None",
            # seen twice in CI). So answer, as a person would, a task that is waiting.
            if state in ("awaiting_input", "deferred"):
                return found[0]
        failed = [r for r in api(base, RUNS, tok)["dag_runs"] if r["state"] == "failed"]
        assert not failed, failed
        time.sleep(4)
    raise AssertionError("no approval request appeared")


def _answer(base: str, tok: str, request: dict, option: str) -> None:
    ti = request["task_instance"]
    api(
        base,
        f"{RUNS}/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/{ti['map_index']}/hitlDetails",
        tok,
        method="PATCH",
        body={"chosen_options": [option], "params_input": {}},
    )


def _why_failed(home: Path) -> str:
    """The end of every failed task's log and of the scheduler's and triggerer's, for the assertion message."""
    parts = []
    for log in sorted((home / "airflow").rglob("*.log")) + sorted((home / "logs").glob("*.log")):
        text = log.read_text(errors="replace")
        if "ERROR" in text or "failed" in text.lower() or log.parent.name == "logs":
            parts.append(f"--- {log.relative_to(home)}\n{text[-3000:]}")
    return "\n".join(parts)[-30000:]


def _wait_runs_done(base: str, tok: str, n: int, timeout_s: float = 300) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = api(base, RUNS, tok)["dag_runs"]
        if len(runs) >= n and all(r["state"] in ("success", "failed") for r in runs):
            return runs
        time.sleep(3)
    raise AssertionError(api(base, RUNS, tok)["dag_runs"])


def test_a_promotion_waits_for_a_person_and_records_the_answer(tmp_path, alert_sink):
    ports = {"mlflow": free_port(), "airflow": free_port(), "feed": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PNEUMO_", "MLFLOW_TRACKING"))}
    env.update(
        {
            "TORCH_HOME": str(tmp_path / "torch"),
            "PNEUMO_WATCH_SECONDS": "10",
            "PNEUMO_REQUIRE_APPROVAL": "1",
            "PNEUMO_ALERT_WEBHOOK": os.environ["PNEUMO_ALERT_WEBHOOK"],  # alert_sink's
        }
    )
    home = tmp_path / "home"
    settings_file = tiny_settings(home, env)

    proc = start_up(home, ports, env)
    try:
        out = wait_ready(proc, home)
        client = FeedClient(
            home / "feed" / "metadata" / "root.json", f"http://127.0.0.1:{ports['feed']}", tmp_path / "c"
        )
        assert "promotions wait for a person" in out and "/required_actions" in out
        base = f"http://127.0.0.1:{ports['airflow']}"
        tok = token(base, out.split("Airflow login: admin / ")[1].split()[0])

        first, second = stage_batches(SAMPLE / "train", tmp_path / "staging", names=("batch-1", "batch-2"))
        _drop(first, home)
        request = _pending_request(base, tok)
        # what the reviewer is shown: the policy's reasons and the gold figures per site with CIs
        assert "trained on ds-" in request["subject"], request["subject"]
        assert "would promote" in request["body"] and "| site |" in request["body"], request["body"]
        assert request["options"] == ["Approve", "Reject"] and request["defaults"] == ["Reject"]
        # nothing reached the clinics while the run waits (the feed holds no model yet)
        time.sleep(5)
        assert not (home / "feed" / "targets").exists() or not any((home / "feed" / "targets").rglob("model.json"))

        _answer(base, tok, request, "Approve")
        runs = _wait_runs_done(base, tok, 1)
        assert [r["state"] for r in runs] == ["success"], f"{runs}\n{_why_failed(home)}"
        offer = client.check()
        assert offer is not None and offer.version == 1

        from mlflow import MlflowClient

        ml = MlflowClient(f"http://127.0.0.1:{ports['mlflow']}")
        v1 = ml.get_model_version_by_alias("pneumoscan-resnet18", "champion")
        assert "review: approved by admin" in v1.description and "feed version: 1" in v1.description, v1.description

        # the second batch: a policy that promotes any challenger over the floors, and a person says no
        text = settings_file.read_text()
        for old, new in (
            ("recall_tolerance = 0.01", "recall_tolerance = 1.0"),
            ("min_accuracy_gain = 0.0", "min_accuracy_gain = -1.0"),
        ):
            assert old in text, old
            text = text.replace(old, new)
        settings_file.write_text(text)
        _drop(second, home)
        request = _pending_request(base, tok)
        _answer(base, tok, request, "Reject")
        runs = _wait_runs_done(base, tok, 2)
        assert [r["state"] for r in runs] == ["success", "success"], f"{runs}\n{_why_failed(home)}"
        assert ml.get_model_version_by_alias("pneumoscan-resnet18", "champion").version == v1.version
        assert client.check().version == 1  # the feed still offers the approved model
        rejected = [v for v in ml.search_model_versions("name = 'pneumoscan-resnet18'") if v.version != v1.version]
        assert rejected and "review: rejected by admin" in rejected[0].description, [v.description for v in rejected]
        assert "promotion_rejected" in [a["event"] for a in alert_sink]
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, rest
