"""The signed model feed end to end: real TUF metadata, a real HTTP server on loopback, the real client.

Attacks are staged the way an attacker would: copy the served feed to a second folder, tamper
there, and serve that folder; the client must refuse with a clear message and install nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata

from contract.package import ModelPackage, PackageError, write_card
from feed.client import FeedClient, FeedUnreachable, UpdateRefused
from feed.repository import Expiry, FeedError, init_feed, offline_key_path, publish, refresh, status
from feed.server import FeedServer, serve

ROOT = Path(__file__).resolve().parents[2]


# ---- helpers ----------------------------------------------------------------------------------


def make_package(directory: Path, version: int, size: int = 4096, **card) -> Path:
    """A small model package (``card`` overrides fields of its card). The random bytes stand in for a
    real ONNX model (the export tests exercise real ones); the feed only moves and verifies bytes."""
    directory.mkdir(parents=True)
    (directory / "model.onnx").write_bytes(os.urandom(size))
    (directory / "reference.png").write_bytes(os.urandom(700))
    write_card(
        directory,
        {
            "version": version,
            "name": "pneumoscan-resnet18",
            "created_at": "2026-11-27T12:00:00+00:00",
            "metrics": {"accuracy": 0.9 + version / 100, "recall": 0.97, "n": 802},
            "classes": ["NORMAL", "PNEUMONIA"],
            "preprocessing": {"size": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
            "threshold": 0.42,
            "temperature": 1.31,
            "onnx": {"opset": 20, "input": "image", "outputs": ["logits", "probabilities", "cam", "ood"]},
            "suitability": {"method": "mahalanobis", "threshold": 2.1},
            "cam": {"units": "log-odds", "scale": 3.0},
            "files": {"model.onnx": {}, "reference.png": {}},
            "reference": {"file": "reference.png", "probabilities": [0.12, 0.88], "ood": 0.9, "tolerance": 1e-4},
            **card,
        },
    )
    return directory


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (but the lock file) and its bytes."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def installed(cache: Path) -> list[str]:
    packages = cache / "packages"
    return sorted(p.name for p in packages.iterdir()) if packages.is_dir() else []


def targets_file(feed_dir: Path, version: int, name: str) -> Path:
    """The served (consistent-snapshot) file of ``models/<version>/<name>``."""
    (path,) = (feed_dir / "targets" / "models" / str(version)).glob(f"*.{name}")
    return path


class Feed:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.dir, self.keys = tmp / "feed", tmp / "keys"
        self.root = init_feed(self.dir, self.keys)

    def publish(self, version: int, size: int = 4096, card: dict | None = None, **kw) -> Path:
        pkg = make_package(self.tmp / f"pkg-{version}-{time.monotonic_ns()}", version, size, **(card or {}))
        publish(self.dir, self.keys, pkg, **kw)
        return pkg


@pytest.fixture
def feed(tmp_path) -> Feed:
    return Feed(tmp_path)


@pytest.fixture
def served():
    """``served(folder[, handler])`` → a running FeedServer on a free loopback port; all closed at teardown."""
    servers: list[FeedServer] = []

    def start(folder: Path, handler=None) -> FeedServer:
        srv = FeedServer(folder, "127.0.0.1", 0, handler) if handler else serve(folder, "127.0.0.1", 0)
        servers.append(srv.start())
        return srv

    yield start
    for srv in servers:
        srv.close()


def client(feed: Feed, url: str, cache: Path | None = None) -> FeedClient:
    return FeedClient(feed.root, url, cache or feed.tmp / "app-cache", timeout=5)


def attack_copy(feed: Feed) -> Path:
    evil = feed.tmp / "evil"
    shutil.copytree(feed.dir, evil)
    return evil


# ---- the happy path ---------------------------------------------------------------------------


def test_publish_serve_download_verified_package_then_next_version(feed, served):
    assert oct(feed.keys.joinpath("targets.pem").stat().st_mode & 0o777) == "0o600"
    assert feed.root.read_bytes() == (feed.dir / "metadata" / "1.root.json").read_bytes()
    pkg1 = feed.publish(1)
    srv = served(feed.dir)
    app = client(feed, srv.url)

    offer = app.check()
    assert (offer.version, offer.threshold, offer.metrics["accuracy"]) == (1, 0.42, 0.91)
    assert offer.files == ("model.json", "model.onnx", "reference.png")
    got = app.download()
    assert got == feed.tmp / "app-cache" / "packages" / "1"
    assert ModelPackage.load(got).version == 1
    assert tree(got) == tree(pkg1)  # byte for byte what the hub published
    assert app.check(installed_version=1) is None

    pkg2 = feed.publish(2)
    assert app.check(installed_version=1).version == 2
    got2 = app.download(installed_version=1)
    assert got2.name == "2" and tree(got2) == tree(pkg2)
    assert installed(feed.tmp / "app-cache") == ["1", "2"]
    assert status(feed.dir).champion == 2


def test_unchanged_feed_costs_one_small_metadata_fetch(feed, served):
    feed.publish(1)
    srv = served(feed.dir)
    app = client(feed, srv.url)
    app.check()
    srv.clear_requests()
    assert app.check().version == 1
    fetched = [r.path for r in srv.wait_idle() if r.status == 200]
    assert fetched == ["/metadata/timestamp.json"]  # plus a 404 probe for the next root version


def test_corrupted_cached_package_is_replaced_by_a_fresh_download(feed, served):
    pkg = feed.publish(1)
    app = client(feed, served(feed.dir).url)
    got = app.download()
    (got / "model.onnx").write_bytes(b"bit rot")
    assert app.download() == got
    assert tree(got) == tree(pkg)


def publish_two_variants(feed: Feed, version: int) -> Path:
    """A package with an fp32 model of 40,000 bytes and an int8 one of 10,000, published."""
    pkg = make_package(feed.tmp / f"pkg-variants-{version}", version, size=40_000)
    (pkg / "model.int8.onnx").write_bytes(os.urandom(10_000))
    card = json.loads((pkg / "model.json").read_text())
    write_card(pkg, {**card, "files": {**card["files"], "model.int8.onnx": {}}})
    publish(feed.dir, feed.keys, pkg)
    return pkg


def sent_files(srv: FeedServer) -> dict[str, int]:
    """Package file name -> body bytes served since the last call."""
    sent: dict[str, int] = {}
    for r in srv.wait_idle():
        if r.path.startswith("/targets/models/") and r.status == 200:
            name = r.path.rsplit("/", 1)[1].split(".", 1)[1]
            sent[name] = sent.get(name, 0) + r.bytes
    srv.clear_requests()
    return sent


def test_a_variant_download_fetches_only_its_files_and_the_other_variant_later(feed, served):
    pkg = publish_two_variants(feed, 1)
    srv = served(feed.dir)
    app = client(feed, srv.url)
    offer = app.check()
    assert offer.size_for("int8") == offer.size - 40_000 and offer.size_for("fp32") == offer.size - 10_000
    srv.clear_requests()

    got = app.download(variant="int8")

    assert set(sent_files(srv)) == {"model.json", "model.int8.onnx", "reference.png"}
    assert not (got / "model.onnx").exists()
    assert ModelPackage.load(got, variant="int8").version == 1
    with pytest.raises(PackageError, match="model.onnx .the fp32 model. is missing"):
        ModelPackage.load(got, variant="fp32")

    # Switching variant: only the other model file comes, and the folder is then the whole package.
    assert app.download(variant="fp32") == got
    assert sent_files(srv) == {"model.onnx": 40_000}
    assert tree(got) == tree(pkg)

    # An older version's missing file is still fetched once a newer one is champion.
    shutil.rmtree(got)
    got = app.download(variant="int8")
    publish_two_variants(feed, 2)
    installed_card = shutil.copy(got / "model.json", feed.tmp / "installed-card.json")
    other_card = feed.tmp / "other-card.json"
    other_card.write_text(installed_card.read_text().replace('"threshold": 0.42', '"threshold": 0.43'))
    with pytest.raises(UpdateRefused, match="not the one the feed signed"):
        app.download_version(1, other_card, "fp32")
    sent_files(srv)
    assert app.download_version(1, installed_card, "fp32") == got
    assert sent_files(srv) == {"model.onnx": 40_000} and tree(got) == tree(pkg)


def test_a_damaged_file_of_a_partial_download_is_not_kept(feed, served):
    publish_two_variants(feed, 1)
    srv = served(feed.dir)
    app = client(feed, srv.url)
    got = app.download(variant="int8")
    (got / "model.int8.onnx").write_bytes(b"bit rot")
    sent_files(srv)

    assert app.download(variant="fp32") == got  # the damaged copy is discarded, then fp32's files come

    assert set(sent_files(srv)) == {"model.json", "model.onnx", "reference.png"}
    assert not (got / "model.int8.onnx").exists()
    ModelPackage.load(got, variant="fp32")


def test_publish_and_refresh_need_no_root_key_and_root_can_be_resigned_offline(feed, served):
    offline = feed.tmp / "usb-stick" / "root.pem"
    offline.parent.mkdir()
    shutil.move(offline_key_path(feed.keys), offline)
    feed.publish(1)
    app = client(feed, served(feed.dir).url)
    assert app.check().version == 1

    st = refresh(feed.dir, feed.keys, root_key=offline)
    assert st.roles["root"].version == 2
    assert app.check().version == 1  # the app follows the root chain from the root it shipped with
    with pytest.raises(FeedError, match="timestamp.pem is not a root key of this feed"):
        refresh(feed.dir, feed.keys, root_key=feed.keys / "timestamp.pem")


# ---- attacks: refused, nothing installed ------------------------------------------------------


def test_target_modified_after_signing_is_refused(feed, served):
    feed.publish(1)
    evil = attack_copy(feed)
    onnx = targets_file(evil, 1, "model.onnx")
    data = bytearray(onnx.read_bytes())
    data[100] ^= 0xFF  # same length, one byte flipped: a trojaned model
    onnx.write_bytes(bytes(data))
    app = client(feed, served(evil).url)
    with pytest.raises(UpdateRefused, match="models/1/model.onnx from the feed does not match its signed sha256"):
        app.download()
    assert installed(app.cache_dir) == []


def test_metadata_signed_by_unknown_key_is_refused(feed, served):
    feed.publish(1)
    evil = attack_copy(feed)
    ts = Metadata.from_file(str(evil / "metadata" / "timestamp.json"))
    ts.signed.version += 1
    ts.sign(CryptoSigner.generate_ed25519())  # the attacker's own key
    ts.to_file(str(evil / "metadata" / "timestamp.json"))
    app = client(feed, served(evil).url)
    with pytest.raises(UpdateRefused, match="not signed by the trusted keys"):
        app.download()
    assert installed(app.cache_dir) == []


def test_rollback_to_older_metadata_is_refused(feed, served):
    feed.publish(1)
    old = feed.tmp / "old-feed"
    shutil.copytree(feed.dir, old)  # what the attacker recorded while version 1 was current
    feed.publish(2)
    app = client(feed, served(feed.dir).url)
    assert app.check().version == 2  # the app has seen the newer metadata

    replay = client(feed, served(old).url)  # same cache: same app
    with pytest.raises(UpdateRefused, match="rollback"):
        replay.download()
    assert installed(app.cache_dir) == []


def test_frozen_metadata_is_refused_once_expired(feed, served):
    feed.publish(1, expiry=Expiry(timestamp=timedelta(seconds=3)))
    app = client(feed, served(feed.dir).url)  # the server keeps serving this timestamp forever
    assert app.check().version == 1
    expires = status(feed.dir).roles["timestamp"].expires
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1)
    with pytest.raises(UpdateRefused, match="expired"):
        app.download()
    assert installed(app.cache_dir) == []


def test_metadata_signed_long_ago_is_refused_by_a_new_client(feed, served):
    feed.publish(1)
    refresh(feed.dir, feed.keys, now=datetime.now(UTC) - timedelta(days=30))
    app = client(feed, served(feed.dir).url)
    with pytest.raises(UpdateRefused, match="expired"):
        app.check()


@pytest.mark.parametrize("role", ["targets", "snapshot"])
def test_mix_and_match_of_metadata_from_different_publishes_is_refused(feed, served, role):
    feed.publish(1)
    feed.publish(2)
    evil = attack_copy(feed)
    meta = evil / "metadata"
    current = max((p for p in meta.glob(f"*.{role}.json")), key=lambda p: int(p.name.split(".")[0]))
    previous = meta / f"{int(current.name.split('.')[0]) - 1}.{role}.json"
    shutil.copy(previous, current)  # the current name, an older publish's content (champion v1)
    app = client(feed, served(evil).url)
    with pytest.raises(UpdateRefused, match="mix-and-match"):
        app.download()
    assert installed(app.cache_dir) == []


def test_target_larger_than_announced_is_refused(feed, served):
    feed.publish(1)
    evil = attack_copy(feed)
    with open(targets_file(evil, 1, "model.onnx"), "ab") as f:
        f.write(os.urandom(10_000))
    app = client(feed, served(evil).url)
    with pytest.raises(UpdateRefused, match="more than the signed 4096 bytes of models/1/model.onnx"):
        app.download()
    assert installed(app.cache_dir) == []


class EndlessHandler(SimpleHTTPRequestHandler):
    """Streams zeros forever (no Content-Length) for timestamp.json and model files; serves the rest."""

    def do_GET(self):
        if not (
            self.path.endswith("/timestamp.json")
            and self.server.endless == "timestamp"
            or self.path.startswith("/targets/models/")
            and self.server.endless == "target"
        ):
            return super().do_GET()
        self.send_response(200)
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"\0" * 65536)
        except OSError:  # the client hung up
            pass

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("what", ["timestamp", "target"])
def test_endless_data_is_cut_off_and_refused(feed, served, what):
    feed.publish(1)
    srv = served(feed.dir, EndlessHandler)
    srv.endless = what
    app = client(feed, srv.url)
    t0 = time.monotonic()
    with pytest.raises(UpdateRefused, match="refusing endless data"):
        app.download()
    assert time.monotonic() - t0 < 10
    assert installed(app.cache_dir) == []


class DripHandler(SimpleHTTPRequestHandler):
    """Serves timestamp.json or the model files a few bytes at a time (a slow-retrieval attack); the rest normally."""

    def do_GET(self):
        slow = (
            self.path.endswith("/timestamp.json")
            if self.server.drip == "timestamp"
            else "/targets/models/" in self.path
        )
        if not slow:
            return super().do_GET()
        path = self.translate_path(self.path)
        try:
            data = Path(path).read_bytes()
        except OSError:
            return self.send_error(404)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            for i in range(0, len(data), 4):  # 4 bytes every 50 ms: 80 B/s, well under the pace set below
                self.wfile.write(data[i : i + 4])
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:  # the client gave up
            pass

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("what", ["timestamp", "target"])
def test_a_server_that_drips_bytes_is_given_up_on_time(feed, served, what):
    """A byte a second kept `update` busy for minutes (a model file: hours): every request must keep a pace."""
    from feed.client import FeedUnreachable, Pace

    feed.publish(1)
    srv = served(feed.dir, DripHandler)
    srv.drip = what
    app = FeedClient(feed.root, srv.url, feed.tmp / "app-cache", timeout=5, pace=Pace(min_rate=1024, grace=1.0))
    t0 = time.monotonic()
    with pytest.raises(FeedUnreachable, match="sends too slowly .* under the 1 KiB/s"):
        app.download()
    assert time.monotonic() - t0 < 8  # the grace, plus one read; the whole file would take minutes
    assert installed(app.cache_dir) == []
    # at the default pace a normal server is fine
    assert client(feed, served(feed.dir).url).download().name == "1"


def test_champion_older_than_installed_is_refused(feed, served):
    feed.publish(2)
    app = client(feed, served(feed.dir).url)
    with pytest.raises(UpdateRefused, match="older than the installed version 3"):
        app.check(installed_version=3)
    with pytest.raises(UpdateRefused, match="older than the installed version 3"):
        app.download(installed_version=3)
    assert installed(app.cache_dir) == []


def test_dead_server_fails_fast_with_a_clear_error(feed):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = client(feed, f"http://127.0.0.1:{port}")
    t0 = time.monotonic()
    with pytest.raises(FeedUnreachable, match=f"Cannot reach the feed at http://127.0.0.1:{port}"):
        app.check()
    with pytest.raises(FeedUnreachable):
        app.download()
    assert time.monotonic() - t0 < 5
    assert installed(app.cache_dir) == []


def test_server_that_never_answers_fails_within_a_bounded_time(feed):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()  # the kernel accepts connections; nobody ever answers
        app = FeedClient(feed.root, f"http://127.0.0.1:{s.getsockname()[1]}", feed.tmp / "app-cache", timeout=0.5)
        t0 = time.monotonic()
        with pytest.raises(FeedUnreachable, match="timed out"):
            app.check()
    assert time.monotonic() - t0 < 4  # about 4 tries x timeout


# ---- publishing -------------------------------------------------------------------------------


def test_publishing_a_version_not_above_the_champion_is_refused_and_changes_nothing(feed):
    feed.publish(2)
    before = tree(feed.dir)
    for version in (2, 1):
        with pytest.raises(FeedError, match=f"Refusing to publish version {version}: .* already version 2"):
            feed.publish(version)
    assert tree(feed.dir) == before


def test_publishing_a_tampered_package_is_refused_and_changes_nothing(feed):
    feed.publish(1)
    before = tree(feed.dir)
    pkg = make_package(feed.tmp / "pkg-tampered", 2)
    (pkg / "model.onnx").write_bytes(os.urandom(4096))  # altered after the card was written
    with pytest.raises(FeedError, match="model.onnx does not match its sha256"):
        publish(feed.dir, feed.keys, pkg)
    assert tree(feed.dir) == before


def _publish_signed_but_wrong(feed: Feed, monkeypatch, version: int, card: dict, custom: dict | None = None):
    """What a holder of the stolen targets key can publish: our publisher refuses such cards, so its
    check is switched off here, and ``custom`` replaces fields of the signed TUF metadata."""
    from contract import package as package_module
    from feed import repository

    with monkeypatch.context() as m:
        m.setattr(package_module, "validate_card", lambda c: None)
        if custom:
            real = repository._canonical
            m.setattr(
                repository,
                "_canonical",
                lambda v: real({**v, **custom} if isinstance(v, dict) and "threshold" in v else v),
            )
        feed.publish(version, card=card)


@pytest.mark.parametrize(
    "card, reason",
    [
        ({"threshold": 1.5}, "Invalid threshold 1.5"),  # every result NORMAL
        ({"threshold": -0.5}, "Invalid threshold -0.5"),  # every result PNEUMONIA
        ({"threshold": float("nan")}, "Invalid threshold nan"),
        ({"classes": ["PNEUMONIA", "NORMAL"]}, "Invalid classes"),  # labels inverted
        ({"temperature": 0}, "Invalid temperature 0"),
        ({"preprocessing": {"size": 224, "mean": [0.5] * 3, "std": [0.0] * 3}}, "Invalid preprocessing std"),
    ],
)
def test_a_signed_but_wrong_card_is_refused_and_nothing_installed(feed, served, monkeypatch, card, reason):
    feed.publish(1)
    app = client(feed, served(feed.dir).url)
    assert app.download().name == "1"
    _publish_signed_but_wrong(feed, monkeypatch, 2, card)
    assert app.check(installed_version=1).version == 2  # signed: TUF itself has nothing against it
    with pytest.raises(UpdateRefused, match=f"fails its model card check: {re.escape(reason)}"):
        app.download(installed_version=1)
    assert installed(app.cache_dir) == ["1"]


def test_a_card_that_disagrees_with_the_signed_metadata_is_refused(feed, served, monkeypatch):
    """`update --check` showed the metadata's threshold while predictions used the card's."""
    app = client(feed, served(feed.dir).url)
    _publish_signed_but_wrong(feed, monkeypatch, 1, {"threshold": 0.42}, custom={"threshold": 0.9})
    assert app.check().threshold == 0.9
    with pytest.raises(UpdateRefused, match="card says threshold 0.42 but the feed's signed metadata says 0.9"):
        app.download()
    assert installed(app.cache_dir) == []


def test_a_package_over_the_size_cap_is_refused_before_any_download(feed, served, monkeypatch):
    from feed import client as feed_client

    monkeypatch.setattr(feed_client, "MAX_PACKAGE_BYTES", 2**20)  # the real cap is 256 MiB
    feed.publish(1, size=2 * 2**20)
    srv = served(feed.dir)
    app = client(feed, srv.url)
    with pytest.raises(
        UpdateRefused, match="version 1 is 2 MiB, over the 1 MiB a model package may be: not downloaded"
    ):
        app.check()
    assert not any("/targets/models/" in r.path for r in srv.wait_idle()), "no model file was fetched"
    assert installed(app.cache_dir) == []


def test_a_disk_too_full_for_the_package_is_said_and_nothing_is_half_written(feed, served, monkeypatch):
    import collections

    feed.publish(1)
    app = client(feed, served(feed.dir).url)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))  # 1 KB left
    with pytest.raises(UpdateRefused, match="Not enough free disk space for version 1"):
        app.download()
    assert installed(app.cache_dir) == []


def test_publishing_a_card_the_app_would_refuse_is_refused_and_changes_nothing(feed):
    feed.publish(1)
    before = tree(feed.dir)
    with pytest.raises(FeedError, match="Refusing to publish .*Invalid threshold 1.5"):
        feed.publish(2, card={"threshold": 1.5})
    assert tree(feed.dir) == before


def test_init_refuses_to_overwrite_a_feed(feed):
    with pytest.raises(FeedError, match="already holds a feed"):
        init_feed(feed.dir, feed.tmp / "other-keys")
    with pytest.raises(FeedError, match="already holds"):
        init_feed(feed.tmp / "feed2", feed.keys)
    with pytest.raises(FeedError, match="inside the feed folder"):
        init_feed(feed.tmp / "feed3", feed.tmp / "feed3" / "keys")


def _consistent_state(feed_dir: Path) -> list[str]:
    """What a reader following timestamp → snapshot → targets finds missing or wrong right now."""
    meta = feed_dir / "metadata"
    ts = json.loads((meta / "timestamp.json").read_bytes())["signed"]
    snap = json.loads((meta / f"{ts['meta']['snapshot.json']['version']}.snapshot.json").read_bytes())["signed"]
    targets = json.loads((meta / f"{snap['meta']['targets.json']['version']}.targets.json").read_bytes())["signed"]
    problems = []
    for path, info in targets["targets"].items():
        d, _, base = path.rpartition("/")
        f = feed_dir / "targets" / d / f"{info['hashes']['sha256']}.{base}"
        if not f.is_file() or f.stat().st_size != info["length"]:
            problems.append(path)
    return problems


def test_a_reader_never_sees_half_a_publish(feed):
    packages = [make_package(feed.tmp / f"p{v}", v, size=300_000) for v in range(1, 7)]
    problems, reads, done = [], [0], threading.Event()

    def reader():
        while not done.is_set():
            try:
                problems.extend(_consistent_state(feed.dir))
            except (OSError, ValueError, KeyError) as e:  # a missing or half-written metadata file
                problems.append(repr(e))
            reads[0] += 1

    t = threading.Thread(target=reader)
    t.start()
    try:
        for pkg in packages:
            publish(feed.dir, feed.keys, pkg)
    finally:
        done.set()
        t.join()
    assert problems == [] and reads[0] > 5
    assert status(feed.dir).champion == 6


def test_publish_writes_files_then_targets_then_snapshot_then_timestamp(feed, monkeypatch):
    order: list[str] = []
    real_replace = os.replace

    def recording_replace(src, dst):
        order.append(str(Path(dst).relative_to(feed.dir)))
        real_replace(src, dst)

    pkg = make_package(feed.tmp / "pkg", 1)
    monkeypatch.setattr(os, "replace", recording_replace)
    publish(feed.dir, feed.keys, pkg)
    monkeypatch.undo()
    kinds = ["file" if o.startswith("targets/") else Path(o).name.lstrip("0123456789.") for o in order]
    assert kinds == ["file"] * 4 + ["targets.json", "snapshot.json", "timestamp.json"]


# ---- CLI and packaging ------------------------------------------------------------------------


def test_cli_init_publish_status_refresh(tmp_path, capsys, monkeypatch):
    import argparse

    from hub.cli_feed import add_feed_parser, run_feed
    from hub.config import HubPaths

    parser = argparse.ArgumentParser(prog="pneumo-hub")
    add_feed_parser(parser.add_subparsers(dest="command", required=True))
    monkeypatch.delenv("PNEUMO_FEED_DIR", raising=False)
    monkeypatch.delenv("PNEUMO_FEED_KEYS", raising=False)
    paths = HubPaths(tmp_path / "home")
    run = lambda *argv: run_feed(parser.parse_args(["feed", *argv]), paths)  # noqa: E731

    monkeypatch.delenv("PNEUMO_FEED_ROOT_PASSPHRASE", raising=False)
    with pytest.raises(FeedError, match="no terminal to ask on"):  # pytest's stdin is no terminal
        run("init")
    assert not (paths.home / "feed").exists()
    (tmp_path / "pass").write_text("correct horse battery staple\n")
    assert run("init", "--passphrase-file", str(tmp_path / "pass")) == 0
    out = capsys.readouterr().out
    assert "off this machine" in out and "feed refresh --root-key" in out and "feed rotate" in out
    assert (paths.home / "feed" / "metadata" / "root.json").is_file()
    # the root key apart from the online keys, encrypted; the online keys private
    assert not (paths.home / "feed-keys" / "root.pem").exists()
    assert (paths.home / "feed-keys-offline" / "root.pem").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY")
    assert {oct(k.stat().st_mode & 0o777) for k in (paths.home / "feed-keys").iterdir()} == {"0o600"}
    assert run("publish", str(make_package(tmp_path / "pkg", 1))) == 0
    assert run("refresh", "--timestamp-days", "2") == 0
    capsys.readouterr()
    assert run("status", "--json", "--no-registry") == 0  # the registry comparison: tests/dags/test_cycle.py
    st = json.loads(capsys.readouterr().out)
    assert st["champion"] == 1 and st["expired"] == [] and st["roles"]["timestamp"]["version"] == 3
    # a 2-day timestamp is inside its warning window: status says so before clients refuse the feed
    assert st["expiring"] == ["timestamp"]
    assert st["root_key_on_hub"] == [{"path": str(paths.home / "feed-keys-offline" / "root.pem"), "encrypted": True}]
    assert run("status", "--no-registry") == 0
    out = capsys.readouterr().out
    assert "EXPIRES SOON: timestamp" in out and "ROOT KEY ON THIS HUB" in out
    shutil.move(paths.home / "feed-keys-offline" / "root.pem", tmp_path / "usb-root.pem")  # taken offline
    assert run("refresh") == 0 and run("status", "--no-registry") == 0
    out = capsys.readouterr().out
    assert "EXPIRES SOON" not in out and "ROOT KEY" not in out
    with pytest.raises(FeedError, match="already version 1"):
        run("publish", str(make_package(tmp_path / "pkg-again", 1)))


def test_client_imports_no_hub_torch_mlflow_or_airflow():
    code = (
        "import sys, feed.client; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'mlflow', 'airflow', 'hub'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_feed_is_served_and_read_without_the_hubs_cryptography_package(feed):
    """The bundle's build venv (desktop + installer extras) has no `cryptography`: `build.py --feed`
    serves and reads a feed folder all the same (before: ModuleNotFoundError at import)."""
    feed.publish(1)
    code = (
        "import sys; sys.modules['cryptography'] = None\n"  # as if not installed
        "from feed.server import serve\nfrom feed.repository import status\nfrom feed.client import FeedClient\n"
        f"srv = serve({str(feed.dir)!r}, '127.0.0.1', 0).start()\n"
        f"offer = FeedClient({str(feed.root)!r}, srv.url, {str(feed.tmp / 'nocrypto-cache')!r}).check()\n"
        f"print(offer.version, status({str(feed.dir)!r}).champion)\nsrv.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1"]
