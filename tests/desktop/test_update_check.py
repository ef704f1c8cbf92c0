"""``pneumo-desktop update --check`` against a real TUF feed over a real loopback HTTP server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from desktop_app.main import main
from feed.repository import init_feed, publish
from feed.server import serve
from tests.conftest import ROOT, free_port


@pytest.fixture
def feed(tmp_path, package_dir):
    root = init_feed(tmp_path / "feed", tmp_path / "keys")
    publish(tmp_path / "feed", tmp_path / "keys", package_dir)
    with serve(tmp_path / "feed", "127.0.0.1", 0).start() as srv:
        yield srv.url, root


def test_update_check_reports_the_offer_then_nothing_new(feed, tmp_path, package_dir, capsys):
    url, root = feed
    args = ["update", "--check", "--feed-url", url, "--root", str(root), "--cache", str(tmp_path / "cache")]
    assert main(args) == 0
    offer = json.loads(capsys.readouterr().out)
    assert offer["update"] is True and offer["version"] == 7 and offer["installed_version"] is None
    assert "model.onnx" in offer["files"] and offer["threshold"] == 0.5
    assert main([*args, "--model-dir", str(package_dir)]) == 0
    assert json.loads(capsys.readouterr().out) == {"update": False, "installed_version": 7}


def test_update_check_offline_is_one_clear_line(feed, tmp_path, capsys):
    _, root = feed
    args = [
        "update",
        "--check",
        "--feed-url",
        f"http://127.0.0.1:{free_port()}",
        "--root",
        str(root),
        "--cache",
        str(tmp_path / "cache"),
    ]
    assert main(args) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("pneumo-desktop: Cannot reach the feed") and "\n" not in err


def test_a_feed_host_that_does_not_resolve_is_one_line_without_retry_warnings(feed, tmp_path):
    """Before: three urllib3 "Retrying (Retry(total=2 …" warnings came first (self-test, install.sh --verify)."""
    _, root = feed
    args = ["update", "--check", "--feed-url", "http://pneumo-feed.invalid", "--root", str(root)]
    out = subprocess.run(
        [sys.executable, "-m", "desktop_app.main", *args, "--cache", str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 3, out.stderr
    err = out.stderr.strip()
    assert err.startswith("pneumo-desktop: Cannot reach the feed at http://pneumo-feed.invalid"), err
    assert "\n" not in err and "Retrying" not in err
