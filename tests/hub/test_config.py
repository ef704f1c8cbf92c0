"""One hub configuration: every step reads the same places, and an empty variable counts as unset."""

from __future__ import annotations

import argparse

import pytest

from hub import cli_feed, services
from hub.config import HubPaths
from hub.cycle import CycleConfig
from tests.conftest import run_cli


def _places(paths: HubPaths) -> dict[str, set]:
    """Where the cycle, the feed commands and the services started by `up` put incoming, feed and keys."""
    cycle = CycleConfig.from_env(paths)
    feed, keys = cli_feed.feed_paths(argparse.Namespace(feed=None, keys=None), paths)
    env = services.service_env(paths, services.Ports())
    return {
        "incoming": {cycle.incoming, paths.incoming, env["PNEUMO_INCOMING"]},
        "feed": {cycle.feed_dir, feed, env["PNEUMO_FEED_DIR"]},
        "keys": {cycle.keys_dir, keys, env["PNEUMO_FEED_KEYS"]},
    }


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_variable_is_unset_everywhere(tmp_path, monkeypatch, empty):
    for name in (
        "PNEUMO_INCOMING",
        "PNEUMO_FEED_DIR",
        "PNEUMO_FEED_KEYS",
        "PNEUMO_POLICY",
        "PNEUMO_WARM_START",
        "PNEUMO_FEED_URL",
    ):
        monkeypatch.setenv(name, empty)
    paths = HubPaths.from_env(tmp_path / "home")
    places = _places(paths)
    home = tmp_path / "home"
    assert {str(p) for p in places["incoming"]} == {str(home / "incoming")}
    assert {str(p) for p in places["feed"]} == {str(home / "feed")}
    assert {str(p) for p in places["keys"]} == {str(home / "feed-keys")}
    assert services.service_env(paths, services.Ports(feed=9999))["PNEUMO_FEED_URL"] == "http://127.0.0.1:9999"


def test_a_set_variable_moves_the_place_for_every_step(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMO_FEED_DIR", str(tmp_path / "srv" / "feed"))
    monkeypatch.setenv("PNEUMO_FEED_KEYS", str(tmp_path / "vault"))
    monkeypatch.setenv("PNEUMO_INCOMING", str(tmp_path / "drop"))
    places = _places(HubPaths.from_env(tmp_path / "home"))
    assert {str(p) for p in places["feed"]} == {str(tmp_path / "srv" / "feed")}
    assert {str(p) for p in places["keys"]} == {str(tmp_path / "vault")}
    assert {str(p) for p in places["incoming"]} == {str(tmp_path / "drop")}


def test_feed_init_with_an_empty_feed_variable_writes_into_the_home(tmp_path):
    """`PNEUMO_FEED_DIR=` once meant the current folder to one command and $PNEUMO_HOME/feed to another."""
    work = tmp_path / "cwd"
    work.mkdir()
    home = tmp_path / "home"
    env = {"PNEUMO_FEED_DIR": "", "PNEUMO_FEED_KEYS": "", "PNEUMO_FEED_ROOT_PASSPHRASE": "twelve chars or more"}
    r = run_cli("--home", str(home), "feed", "init", env=env, cwd=work)
    assert r.returncode == 0, r.stderr
    assert (home / "feed" / "metadata" / "root.json").is_file() and (home / "feed-keys").is_dir()
    assert list(work.iterdir()) == []
