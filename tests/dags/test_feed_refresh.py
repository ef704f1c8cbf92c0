"""feed_refresh keeps a feed that publishes nothing valid past its original expiry (real dag.test, real TUF)."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pendulum
import pytest

from feed import repository
from feed.client import FeedClient, UpdateRefused
from feed.server import FeedServer
from hub.config import HubPaths

ROOT = Path(__file__).resolve().parents[2]


def _check(paths: HubPaths, cache: Path):
    with FeedServer(paths.feed, "127.0.0.1", 0).start() as server:
        return FeedClient(paths.feed / "metadata" / "root.json", server.url, cache).check()


def _refresh_dag():
    spec = importlib.util.spec_from_file_location("feed_refresh_dag", ROOT / "dags" / "continuous_training.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.feed_refresh()


def test_the_daily_refresh_revives_a_feed_whose_timestamp_expired(tmp_path, monkeypatch, airflow_db):
    paths = HubPaths(tmp_path / "home")
    monkeypatch.setenv("PNEUMO_HOME", str(paths.home))
    # a feed last signed 8 days ago: its 7-day timestamp has run out, and every clinic refuses it
    repository.init_feed(paths.feed, paths.feed_keys, now=datetime.now(UTC) - timedelta(days=8))
    with pytest.raises(UpdateRefused):
        _check(paths, tmp_path / "clinic")

    dr = _refresh_dag().test(logical_date=pendulum.now("UTC"))
    assert {ti.task_id: ti.state for ti in dr.get_task_instances()} == {"refresh": "success"}

    assert _check(paths, tmp_path / "clinic") is None  # accepted again: no model yet, no error
    st = repository.status(paths.feed)
    assert st.roles["timestamp"].expires > datetime.now(UTC) + timedelta(days=6)
    assert st.expired() == []


def test_the_refresh_of_a_hub_without_a_feed_does_nothing(tmp_path, monkeypatch, airflow_db):
    paths = HubPaths(tmp_path / "home")
    monkeypatch.setenv("PNEUMO_HOME", str(paths.home))
    dr = _refresh_dag().test(logical_date=pendulum.now("UTC"))
    assert {ti.task_id: ti.state for ti in dr.get_task_instances()} == {"refresh": "success"}
    assert not paths.feed.exists()
