"""The feed's keys handled the safe way: the root key apart and encrypted, the online keys private,
online keys rotated through a new root that installed apps follow, a stolen old key then worthless,
and a rotation killed half-way finished by the next refresh. Real TUF metadata, a real HTTP server,
the real client."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata

from feed.client import FeedClient, UpdateRefused
from feed.repository import FeedError, init_feed, offline_key_path, publish, refresh, rotate, status
from feed.server import serve
from tests.feed.test_feed import ROOT, make_package, tree

PASS = b"a long passphrase for the safe"


@pytest.fixture
def served():
    servers = []

    def start(folder):
        servers.append(serve(folder, "127.0.0.1", 0).start())
        return servers[-1]

    yield start
    for s in servers:
        s.close()


@pytest.fixture
def feed(tmp_path):
    """A feed made the safe way: root key encrypted and apart; version 1 published."""
    feed_dir, keys = tmp_path / "feed", tmp_path / "keys"
    trust_root = init_feed(feed_dir, keys, root_passphrase=PASS)
    shipped = tmp_path / "installer-root.json"  # what the installer shipped, before any rotation
    shutil.copyfile(trust_root, shipped)
    publish(feed_dir, keys, make_package(tmp_path / "pkg-1", 1))
    return feed_dir, keys, offline_key_path(keys), shipped


def _app(shipped, url, cache) -> FeedClient:
    return FeedClient(shipped, url, cache, timeout=5)


def test_the_root_key_is_written_apart_and_encrypted_and_the_online_keys_are_private(feed, tmp_path):
    feed_dir, keys, root_key, _ = feed
    assert sorted(p.name for p in keys.iterdir()) == ["snapshot.pem", "targets.pem", "timestamp.pem"]
    assert root_key.parent != keys and root_key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert {oct(p.stat().st_mode & 0o777) for p in [*keys.iterdir(), root_key]} == {"0o600"}
    with pytest.raises(FeedError, match="is encrypted: give its passphrase"):
        refresh(feed_dir, keys, root_key=root_key)
    with pytest.raises(FeedError, match="Wrong passphrase"):
        refresh(feed_dir, keys, root_key=root_key, passphrase=b"not the passphrase at all")
    assert refresh(feed_dir, keys, root_key=root_key, passphrase=PASS).roles["root"].version == 2
    with pytest.raises(FeedError, match="at least 12 characters"):
        init_feed(tmp_path / "f2", tmp_path / "k2", root_passphrase=b"short")

    # an online key others can read (copied with the wrong umask, a backup restored) is refused, unchanged
    before = tree(feed_dir)
    (keys / "timestamp.pem").chmod(0o644)
    with pytest.raises(FeedError, match=r"can be read or written by other users \(mode 0o644\).*chmod 600"):
        refresh(feed_dir, keys)
    assert tree(feed_dir) == before


def test_rotated_online_keys_are_followed_by_installed_apps_and_the_old_ones_are_worthless(feed, served, tmp_path):
    feed_dir, keys, root_key, shipped = feed
    app = _app(shipped, served(feed_dir).url, tmp_path / "app")
    assert app.check().version == 1
    stolen = {r: (keys / f"{r}.pem").read_bytes() for r in ("targets", "snapshot", "timestamp")}

    st = rotate(feed_dir, keys, root_key, passphrase=PASS)
    assert st.roles["root"].version == 2 and st.champion == 1
    assert all((keys / f"{r}.pem").read_bytes() != old for r, old in stolen.items())
    assert sorted(p.name for p in keys.iterdir()) == ["snapshot.pem", "targets.pem", "timestamp.pem"]
    assert app.check().version == 1  # the installed app walks root 1 → 2 and trusts the new keys
    assert Metadata.from_file(str(tmp_path / "app" / "metadata" / "root.json")).signed.version == 2
    publish(feed_dir, keys, make_package(tmp_path / "pkg-2", 2))
    assert app.check().version == 2
    fresh = _app(shipped, served(feed_dir).url, tmp_path / "new-install")  # an installer made before the rotation
    assert fresh.check().version == 2

    # whoever stole the old timestamp key signs a "newer" timestamp with it: refused
    evil = tmp_path / "evil"
    shutil.copytree(feed_dir, evil)
    ts = Metadata.from_file(str(evil / "metadata" / "timestamp.json"))
    ts.signed.version += 1
    ts.signatures.clear()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    ts.sign(CryptoSigner(load_pem_private_key(stolen["timestamp"], None)))
    ts.to_file(str(evil / "metadata" / "timestamp.json"))
    with pytest.raises(UpdateRefused, match="not signed by the trusted keys"):
        _app(shipped, served(evil).url, tmp_path / "app").check()

    with pytest.raises(FeedError, match="Only the online keys rotate"):
        rotate(feed_dir, keys, root_key, ("root",), passphrase=PASS)


KILLED_AFTER_ROOT = """
import os, signal, sys
from pathlib import Path
from feed import repository
real = repository._resign_root
def resign_then_die(*a, **k):
    real(*a, **k)
    os.kill(os.getpid(), signal.SIGKILL)  # power cut right after the new root is on disk
repository._resign_root = resign_then_die
feed_dir, keys, root_key = (Path(a) for a in sys.argv[1:4])
repository.rotate(feed_dir, keys, root_key, ("timestamp",), passphrase=sys.argv[4].encode())
"""


def test_a_rotation_killed_after_its_new_root_is_finished_by_the_next_refresh(feed, served, tmp_path):
    feed_dir, keys, root_key, shipped = feed
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_ROOT, str(feed_dir), str(keys), str(root_key), PASS.decode()],
        cwd=ROOT,
        env=os.environ,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL
    assert (keys / "timestamp.pem.new").exists() and status(feed_dir).roles["root"].version == 2
    app = _app(shipped, served(feed_dir).url, tmp_path / "app")
    with pytest.raises(UpdateRefused):  # timestamp still signed by the key root 2 replaced
        app.check()
    refresh(feed_dir, keys)  # the daily feed_refresh, or any publish: puts the new key in place, re-signs
    assert not (keys / "timestamp.pem.new").exists()
    assert app.check().version == 1


def test_cli_protect_an_unattended_feeds_root_key_then_rotate_with_it(tmp_path, capsys, monkeypatch):
    """The cycle creates a feed unattended (no passphrase set): status says the root key is on the
    hub unencrypted; protect-root encrypts it; rotate uses it with the passphrase."""
    from hub.cli_feed import add_feed_parser, run_feed
    from hub.config import HubPaths

    parser = argparse.ArgumentParser(prog="pneumo-hub")
    add_feed_parser(parser.add_subparsers(dest="command", required=True))
    for var in ("PNEUMO_FEED_DIR", "PNEUMO_FEED_KEYS", "PNEUMO_FEED_ROOT_PASSPHRASE"):
        monkeypatch.delenv(var, raising=False)
    paths = HubPaths(tmp_path / "home")
    run = lambda *argv: run_feed(parser.parse_args(["feed", *argv]), paths)  # noqa: E731
    init_feed(paths.feed, paths.feed_keys)  # what `up` and the cycle do without the passphrase variable
    root_key = paths.home / "feed-keys-offline" / "root.pem"
    assert run("status", "--no-registry") == 0
    assert "ROOT KEY ON THIS HUB" in (out := capsys.readouterr().out) and "NOT encrypted" in out

    (tmp_path / "pass").write_text(PASS.decode() + "\n")
    assert run("protect-root", "--passphrase-file", str(tmp_path / "pass")) == 0
    assert root_key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    capsys.readouterr()
    with pytest.raises(FeedError, match="no terminal to ask on"):
        run("rotate", "--root-key", str(root_key))
    monkeypatch.setenv("PNEUMO_FEED_ROOT_PASSPHRASE", PASS.decode())
    assert run("rotate", "--root-key", str(root_key), "--role", "timestamp") == 0
    assert "rotated the timestamp key(s): root is now v2" in capsys.readouterr().out
    shutil.move(root_key, tmp_path / "usb.pem")
    assert run("status", "--no-registry") == 0 and "ROOT KEY" not in capsys.readouterr().out
