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
"""
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////nonexistent-dir/never/airflow.db"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
