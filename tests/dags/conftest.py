"""Airflow for the DAG tests: a private AIRFLOW_HOME on SQLite, set before airflow is imported."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-home-")
os.environ.update(
    {
        "AIRFLOW_HOME": _AIRFLOW_HOME,
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        "PNEUMO_DAG_RETRIES": "0",  # a failing task fails the run at once instead of waiting to retry
    }
)


@pytest.fixture(scope="session")
def airflow_db():
    """`airflow db migrate`, once per session (about 10 s)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=300,
    )
    return _AIRFLOW_HOME
