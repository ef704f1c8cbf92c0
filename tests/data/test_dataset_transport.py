"""A dataset version travels between hub homes that share no disk by DVC (a real `dvc push`/`pull`
through a remote folder), and a worker trains only on exactly the version the run is for."""

from __future__ import annotations

import shutil

import pytest

from hub import dataset
from hub.config import HubPaths
from hub.pool import DataError, Pool
from tests.conftest import SAMPLE


def test_a_worker_with_an_empty_home_fetches_exactly_the_version(hub_paths, tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMO_DVC_REMOTE", str(tmp_path / "remote"))
    ref = dataset.ref(hub_paths)  # on the hub's host: pushed
    assert ref["version"] == dataset.training_view(hub_paths).version and ref["pool"].endswith(".dir")
    assert any((tmp_path / "remote").rglob("*"))

    worker = HubPaths(tmp_path / "worker")
    view = dataset.checkout(worker, ref)
    assert view.version == ref["version"]
    assert view.counts() == dataset.training_view(hub_paths).counts()
    a, b = (Pool(p.pool).known_hashes() for p in (hub_paths, worker))
    assert a == b and len(a) > 100


def test_a_worker_holding_an_older_version_is_brought_to_the_run_s_version(hub_paths, tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMO_DVC_REMOTE", str(tmp_path / "remote"))
    worker = HubPaths(tmp_path / "worker")
    old = dataset.ref(hub_paths)
    dataset.checkout(worker, old)
    # the hub ingests a new batch (the second site) and moves on to a new version
    dataset.import_data(hub_paths, SAMPLE.parent / "site_b", site="nih-cc")
    dataset.split(hub_paths)
    new = dataset.ref(hub_paths)
    assert new["version"] != old["version"]
    assert dataset.checkout(worker, new).version == new["version"]
    assert "nih-cc" in dataset.training_view(worker).counts_by_site()


def test_a_version_the_worker_cannot_have_is_an_error_never_a_silent_retrain(hub_paths, tmp_path, monkeypatch):
    worker = HubPaths(tmp_path / "worker")
    shutil.copytree(hub_paths.home, worker.home, symlinks=True)
    ref = dataset.ref(hub_paths, push=False)
    # no remote: a worker whose pool differs says so and what to set
    dataset.import_data(worker, SAMPLE.parent / "site_b", site="nih-cc")
    dataset.split(worker)
    with pytest.raises(DataError, match="PNEUMO_DVC_REMOTE"):
        dataset.checkout(worker, ref)
    # a remote that gives other content for the hashes than the run's fingerprint: refused
    monkeypatch.setenv("PNEUMO_DVC_REMOTE", str(tmp_path / "remote"))
    dataset.ref(hub_paths)
    with pytest.raises(DataError, match="refusing to train"):
        dataset.checkout(worker, ref | {"version": "ds-0000000000000000"})
