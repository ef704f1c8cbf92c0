"""Shared fixtures. Everything runs on the bundled sample (sample_data/), never on ../shared."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

for _k, _v in {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "DVC_NO_ANALYTICS": "1",
               "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False", "SCARF_ANALYTICS": "false",
               "GIT_PYTHON_REFRESH": "quiet"}.items():
    os.environ.setdefault(_k, _v)
os.environ.pop("MLFLOW_TRACKING_URI", None)  # tests choose their own store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "chest_xray"


@pytest.fixture(scope="session")
def sample_root() -> Path:
    assert SAMPLE.is_dir(), "bundled sample missing"
    return SAMPLE


def sample_files(label: str, n: int, offset: int = 0) -> list[Path]:
    return sorted((SAMPLE / "train" / label).glob("*.jpeg"))[offset:offset + n]


@pytest.fixture(scope="session")
def _imported_home(tmp_path_factory) -> Path:
    from hub import datastore
    from hub.config import HubPaths

    home = tmp_path_factory.mktemp("hub-home")
    paths = HubPaths(home)
    datastore.import_data(paths, SAMPLE, "sample")
    datastore.split(paths)
    return home


@pytest.fixture
def hub_paths(_imported_home, tmp_path):
    """A hub home with the sample imported and split (a private copy per test)."""
    from hub.config import HubPaths

    home = tmp_path / "home"
    shutil.copytree(_imported_home, home, symlinks=True)
    return HubPaths(home)
