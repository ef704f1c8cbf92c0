"""The DAG files parse with no errors, touch no database or network while parsing, and have the documented graph."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "detect": ["validate"],
    "validate": ["ingest"],
    "ingest": ["has_work"],
    "has_work": ["train", "score", "judge", "promote", "publish"],
    "train": ["score"],
    "score": ["judge"],
    "judge": ["promote"],
    "promote": ["publish"],
    "publish": [],
}


def test_dagbag_imports_and_graph(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    dag = bag.get_dag("continuous_training")
    assert dag.max_active_runs == 1 and "pneumoscan" in dag.tags
    assert {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks} == {k: sorted(v) for k, v in EXPECTED.items()}
    assert all(t.retries >= 0 for t in dag.tasks)
    watch = bag.get_dag("incoming_watch")
    assert [o.name for o in watch.get_task("announce").outlets] == ["pneumoscan-incoming"]
    assert [t.task_id for t in bag.get_dag("feed_refresh").tasks] == ["refresh"]


def test_with_approval_required_a_person_answers_between_judge_and_promote(airflow_db, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("PNEUMO_REQUIRE_APPROVAL", "1")
    monkeypatch.setenv("PNEUMO_APPROVAL_HOURS", "2")
    dag = DagBag(dag_folder=str(ROOT / "dags")).get_dag("continuous_training")
    graph = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
    assert graph["judge"] == ["approve"] and graph["approve"] == ["review"] and graph["review"] == ["promote"]
    ask = dag.get_task("approve")
    assert ask.options == ["Approve", "Reject"] and ask.defaults == ["Reject"]  # no answer: the champion stays
    assert ask.response_timeout.total_seconds() == 7200


def test_parsing_uses_no_database_network_or_torch():
    """Parse in a fresh interpreter whose database URL points nowhere and whose sockets refuse to open."""
    code = f"""
import socket, sys
def refuse(*a, **k): raise RuntimeError("network used while parsing")
socket.socket.connect = refuse
socket.create_connection = refuse
import importlib.util
spec = importlib.util.spec_from_file_location("ct", {str(ROOT / "dags" / "continuous_training.py")!r})
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
heavy = [m for m in ("torch", "mlflow", "hub.cycle", "onnxruntime") if m in sys.modules]
assert not heavy, heavy
retries = {{t.task_id: t.retries for t in mod.continuous_training().tasks}}
assert set(retries.values()) == {{2}}, retries  # the production default, with PNEUMO_DAG_RETRIES unset
"""
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////nonexistent-dir/never/airflow.db"}
    env.pop("PNEUMO_DAG_RETRIES", None)
    for approval in ("", "1"):
        r = subprocess.run(
            [sys.executable, "-c", code.replace("{2}", "{0, 2}" if approval else "{2}")],
            capture_output=True,
            text=True,
            env={**env, "PNEUMO_REQUIRE_APPROVAL": approval},
            timeout=120,
        )
        assert r.returncode == 0, (approval, r.stderr[-2000:])


def test_the_watch_finds_a_batch_without_loading_torch(tmp_path):
    """incoming_watch runs every 10 minutes: listing folders must not load torch (0.8 GB, seconds)."""
    (tmp_path / "incoming" / "batch-1" / "NORMAL").mkdir(parents=True)
    (tmp_path / "incoming" / "batch-1" / "NORMAL" / "a.jpeg").write_bytes(b"not read here")
    code = """
import sys
from hub import cycle
from hub.config import HubPaths
paths = HubPaths.from_env()
cfg = cycle.CycleConfig.from_env(paths, {"settle_seconds": 0})
assert cycle.detect(paths, cfg) == ["batch-1"]
# announced once, not on every look while its run trains; again if still there an hour later
assert cycle.announce(paths, cfg) == ["batch-1"]
assert cycle.announce(paths, cfg) == []
import time, shutil
assert cycle.announce(paths, cfg, now=time.time() + 3700) == ["batch-1"]
# a batch that left (ingested, quarantined) is forgotten: put back, it is announced at once
shutil.move(str(cfg.incoming / "batch-1"), str(cfg.incoming.parent / "away"))
assert cycle.announce(paths, cfg) == []
shutil.move(str(cfg.incoming.parent / "away"), str(cfg.incoming / "batch-1"))
assert cycle.announce(paths, cfg) == ["batch-1"]
heavy = [m for m in ("torch", "torchvision", "mlflow", "onnxruntime") if m in sys.modules]
assert not heavy, heavy
"""
    env = {**os.environ, "PNEUMO_HOME": str(tmp_path / "home"), "PNEUMO_INCOMING": str(tmp_path / "incoming")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
