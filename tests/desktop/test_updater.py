"""Background model updates: a real TUF feed over real HTTP, real onnxruntime, real Qt (offscreen).

Version 7 (the ``package_dir`` fixture) is the model installed with the app; version 8 is another
random-init ResNet18 with another threshold, so a prediction tells which model made it.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import

import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from contract.package import write_card
from desktop_app.audit import AuditLog
from desktop_app.config import Settings
from desktop_app.engine import Engine
from desktop_app.images import load_image
from desktop_app.models import ModelStore
from desktop_app.ui.update_controller import UpdateController
from desktop_app.ui.window import MainWindow
from desktop_app.updater import ModelUpdater, Outcome, Status
from feed.repository import init_feed, publish
from feed.server import FeedServer, serve
from tests.conftest import free_port
from tests.desktop.conftest import make_package

TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def package_v8(tmp_path_factory) -> Path:
    return make_package(
        tmp_path_factory.mktemp("pkg"),
        version=8,
        seed=1,
        threshold=0.3,
        temperature=1.0,
        images_per_class=2,
        int8=False,
        created_at="2026-12-01T12:00:00+00:00",
    )


class Feed:
    """A TUF feed served over loopback HTTP, with version 7 published as champion."""

    def __init__(self, tmp: Path, first: Path):
        self.dir, self.keys = tmp / "feed", tmp / "feed-keys"
        self.root = init_feed(self.dir, self.keys)
        publish(self.dir, self.keys, first)
        self.server = serve(self.dir, "127.0.0.1", 0).start()
        self.url = self.server.url

    def publish(self, package: Path) -> None:
        publish(self.dir, self.keys, package)

    def tamper(self, version: int, name: str) -> None:
        """Flip one byte of a served target, as an attacker with write access to the server would."""
        (path,) = (self.dir / "targets" / "models" / str(version)).glob(f"*.{name}")
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    def model_downloads(self) -> list[str]:
        return [r.path for r in self.server.wait_idle() if r.path.startswith("/targets/models/")]


@pytest.fixture
def feed(tmp_path, package_dir):
    f = Feed(tmp_path, package_dir)
    yield f
    f.server.close()


@pytest.fixture
def store(tmp_path, package_dir) -> ModelStore:
    """The app's store: version 7 installed with the app, nothing from the feed yet."""
    return ModelStore(tmp_path / "user-data" / "models", package_dir)


def updater(store: ModelStore, url: str, root: Path | None, tmp: Path, **kw) -> ModelUpdater:
    return ModelUpdater(store, url, root, tmp / "user-data" / "feed", **kw)


def store_files(store: ModelStore) -> dict[str, bytes]:
    return (
        {str(p.relative_to(store.root)): p.read_bytes() for p in sorted(store.root.rglob("*")) if p.is_file()}
        if store.root.is_dir()
        else {}
    )


def probability(engine: Engine, image: Path) -> float:
    return engine.predict(load_image(image)).probability


# ---- the updater, no Qt -----------------------------------------------------------------------


def test_newer_version_is_verified_installed_and_activated(feed, store, tmp_path, package_v8, package_dir, jpeg):
    up = updater(store, feed.url, feed.root, tmp_path)
    assert up.update_once().status is Status.UP_TO_DATE
    feed.publish(package_v8)

    outcome = up.update_once()

    assert outcome.status is Status.UPDATED and outcome.version == 8 and outcome.reason == ""
    assert outcome.engine.version == 8 and outcome.engine.package.directory == store.root / "8"
    assert store.active_version() == 8 and store.previous_version() == 7 and list(store.installed()) == [7, 8]
    # The switched-to model is the published one, and answers differently from version 7.
    p8 = probability(outcome.engine, jpeg)
    assert p8 == pytest.approx(probability(Engine(package_v8), jpeg), abs=1e-6)
    assert abs(p8 - probability(Engine(package_dir), jpeg)) > 1e-3
    # Once installed, the same feed has nothing new.
    assert up.update_once().status is Status.UP_TO_DATE and store.active_version() == 8


def test_unchanged_feed_is_up_to_date_without_downloading_a_model(feed, store, tmp_path):
    before = store_files(store)
    outcome = updater(store, feed.url, feed.root, tmp_path).update_once()
    assert outcome.status is Status.UP_TO_DATE and outcome.version == 7
    assert feed.model_downloads() == [] and store_files(store) == before


def test_tampered_model_on_the_feed_is_refused_and_the_store_is_unchanged(feed, store, tmp_path, package_v8):
    feed.publish(package_v8)
    feed.tamper(8, "model.onnx")
    before = store_files(store)

    outcome = updater(store, feed.url, feed.root, tmp_path).update_once()

    assert outcome.status is Status.REFUSED and outcome.version == 7 and outcome.engine is None
    assert "models/8/model.onnx from the feed does not match its signed sha256" in outcome.reason
    assert store_files(store) == before and list(store.installed()) == [7] and store.active_version() == 7


def test_model_failing_its_reference_check_is_refused_before_install(feed, store, tmp_path, package_v8):
    """Signed and hash-correct, but the model does not give the card's reference output: never installed."""
    bad = tmp_path / "bad-8"
    shutil.copytree(package_v8, bad)
    card = json.loads((bad / "model.json").read_text())
    card["reference"]["probabilities"] = [round(1 - p, 6) for p in card["reference"]["probabilities"]]
    write_card(bad, card)
    feed.publish(bad)
    before = store_files(store)

    outcome = updater(store, feed.url, feed.root, tmp_path).update_once()

    assert outcome.status is Status.REFUSED and "reference image" in outcome.reason
    assert store_files(store) == before and store.active_version() == 7 and not (store.root / "8").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A real 160 MiB filesystem (tmpfs) at ``tmp_path / "disk"``; skipped where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here (needs root): {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


class _FillsTheDisk(SimpleHTTPRequestHandler):
    """Serves the feed; before sending a model file, something else on the PC fills the disk."""

    def do_GET(self) -> None:
        if self.path.endswith("model.onnx") and self.server.fill:
            self.server.fill = False
            free = shutil.disk_usage(self.server.filler.parent).free
            with open(self.server.filler, "wb") as f:
                f.write(b"\0" * (free - 256 * 1024))
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


def test_a_disk_that_fills_up_during_a_download_gives_exit_4_and_installs_nothing(
    feed, tmp_path, package_v8, small_disk
):
    """Before: a traceback. The free-space check passes; the disk then fills while the model downloads."""
    feed.publish(package_v8)
    server = FeedServer(feed.dir, "127.0.0.1", 0, _FillsTheDisk)
    server.filler, server.fill = small_disk / "someone-else.bin", True
    server.start()
    data = small_disk / "user-data"
    env = {**os.environ, "PNEUMO_DESKTOP_DATA": str(data)}
    cmd = [sys.executable, "-m", "desktop_app.main", "update", "--feed-url", server.url, "--root", str(feed.root)]
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root, timeout=120)
        assert out.returncode == 4 and "Traceback" not in out.stderr, out.stderr
        result = json.loads(out.stdout)
        assert result["status"] == "refused" and result["version"] is None  # no model from the feed yet
        assert "disk filled up" in result["reason"] and "nothing was installed" in result["reason"]
        assert not (data / "models" / "8").exists()
        assert not list((data / "feed" / "packages").glob(".incoming-*"))  # no half-written download left
        server.filler.unlink()  # space is freed: the next check installs it
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root, timeout=120)
        assert out.returncode == 0 and json.loads(out.stdout)["status"] == "updated", out.stderr
        assert ModelStore(data / "models", None).active_version() == 8
    finally:
        server.close()


def test_dead_server_is_offline_quickly_and_changes_nothing(feed, store, tmp_path):
    up = updater(store, f"http://127.0.0.1:{free_port()}", feed.root, tmp_path)
    start = time.monotonic()
    outcome = up.update_once()
    assert time.monotonic() - start < 5
    assert outcome.status is Status.OFFLINE and outcome.version == 7
    assert outcome.reason.startswith("Cannot reach the feed") and store_files(store) == {}


def test_without_feed_or_root_updates_are_off(feed, store, tmp_path):
    for url, root, missing in (("", feed.root, "feed_url"), (feed.url, None, "trusted_root")):
        outcome = updater(store, url, root, tmp_path).update_once()
        assert outcome.status is Status.NOT_CONFIGURED and missing in outcome.reason and outcome.version == 7
    outcome = updater(store, feed.url, tmp_path / "missing-root.json", tmp_path).update_once()
    assert outcome.status is Status.NOT_CONFIGURED and "Cannot read the trusted root" in outcome.reason
    assert feed.server.wait_idle() == []


def test_rolled_back_version_is_not_taken_again_but_a_newer_one_is(feed, store, tmp_path, package_v8):
    up = updater(store, feed.url, feed.root, tmp_path)
    feed.publish(package_v8)
    assert up.update_once().status is Status.UPDATED
    assert up.roll_back().version == 7 and store.active_version() == 7
    assert up.update_once().status is Status.UP_TO_DATE and store.active_version() == 7
    nine = tmp_path / "pkg-9"
    shutil.copytree(package_v8, nine)
    write_card(nine, {**json.loads((nine / "model.json").read_text()), "version": 9})
    feed.publish(nine)
    outcome = up.update_once()
    assert outcome.status is Status.UPDATED and outcome.version == 9 and store.active_version() == 9


def test_a_rolled_back_version_the_feed_still_serves_is_said_and_can_be_allowed_again(
    feed, store, tmp_path, package_v8, package_dir, capsys
):
    """Before: `update` said "up to date" and `--check` reported version 8 as installed while the app ran 7."""
    from desktop_app.main import main

    up = updater(store, feed.url, feed.root, tmp_path)
    feed.publish(package_v8)
    assert up.update_once().status is Status.UPDATED
    assert up.roll_back().version == 7
    outcome = up.update_once()
    assert outcome.status is Status.UP_TO_DATE and outcome.version == 7 and outcome.rolled_back == 8
    assert "version 8, which was rolled back on this computer" in outcome.reason
    assert "Allow version 8 again" in outcome.reason and "update --allow 8" in outcome.reason

    # the command line says the same, and takes it back on request (the installed copy: no download)
    (tmp_path / "admin" / "config.toml").write_text(f"builtin_model = {json.dumps(str(package_dir))}\n")
    args = ["update", "--feed-url", feed.url, "--root", str(feed.root), "--cache", str(tmp_path / "user-data" / "feed")]
    assert main([*args, "--check"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == {"update": False, "installed_version": 7, "rolled_back": 8}
    assert "update --allow 8" in out.err
    feed.server.clear_requests()
    assert main([*args, "--allow", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 8
    assert store.active_version() == 8 and feed.model_downloads() == []
    assert up.update_once() == Outcome(Status.UP_TO_DATE, 8)


def test_a_model_damaged_on_disk_is_downloaded_again_by_the_next_check(feed, store, tmp_path, package_v8, jpeg):
    """Before: the app fell back to the older model, and `update` said "up to date" for ever."""
    up = updater(store, feed.url, feed.root, tmp_path)
    feed.publish(package_v8)
    assert up.update_once().status is Status.UPDATED
    good = store_files(store)
    onnx = store.root / "8" / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a bad sector, an antivirus, a careless hand
    onnx.write_bytes(bytes(data))
    engine, warnings = store.open_engine()
    assert engine.version == 7 and any("version 8" in w for w in warnings)  # falls back, says so
    outcome = up.update_once()
    assert outcome.status is Status.UPDATED and outcome.version == 8, outcome.reason
    assert store_files(store) == good  # the damaged file replaced by the verified one
    engine, warnings = store.open_engine()
    assert engine.version == 8 and warnings == []
    assert probability(outcome.engine, jpeg) == probability(Engine(package_v8), jpeg)
    assert up.update_once().status is Status.UP_TO_DATE
    # A version rolled back from is not repaired: it stays out of use.
    up.roll_back()
    onnx.write_bytes(bytes(data))
    assert up.update_once().status is Status.UP_TO_DATE and store.active_version() == 7


class _ForwardProxy(BaseHTTPRequestHandler):
    """A minimal HTTP forward proxy (what a hospital's proxy does for plain http://), with Basic auth."""

    def do_GET(self) -> None:
        if self.headers.get("Proxy-Authorization") != self.server.expected_auth:
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="hospital"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.seen.append(self.path)
        self.server.agents.add(self.headers["User-Agent"])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.path, timeout=5) as r:
                code, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, body = e.code, e.read()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_configured_proxy_carries_every_request(feed, store, tmp_path, package_v8):
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _ForwardProxy)
    proxy.seen, proxy.agents = [], set()
    proxy.expected_auth = "Basic " + base64.b64encode(b"clinic:s3cret").decode()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        feed.publish(package_v8)
        port = proxy.server_address[1]
        wrong = updater(store, feed.url, feed.root, tmp_path, proxy=f"http://clinic:guess@127.0.0.1:{port}")
        outcome = wrong.update_once()
        assert outcome.status is Status.OFFLINE and "407" in outcome.reason and "guess" not in outcome.reason
        up = updater(store, feed.url, feed.root, tmp_path, proxy=f"http://clinic:s3cret@127.0.0.1:{port}")
        assert up.update_once().status is Status.UPDATED and store.active_version() == 8
        served = [r.path for r in feed.server.wait_idle()]
        assert served and sorted(proxy.seen) == sorted(f"{feed.url}{p}" for p in served)
        assert len(proxy.agents) == 1 and proxy.agents.pop().startswith("PneumoScan python-tuf/")
    finally:
        proxy.shutdown()
        proxy.server_close()
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    outcome = updater(
        store, feed.url, feed.root, tmp_path, proxy=f"http://clinic:s3cret@{dead_proxy[7:]}"
    ).update_once()
    assert (
        outcome.status is Status.OFFLINE and f"through the proxy http://clinic:***@{dead_proxy[7:]}" in outcome.reason
    )
    assert "s3cret" not in outcome.reason  # the password never reaches the status bar or the log


# ---- in the window ----------------------------------------------------------------------------


@pytest.fixture
def window(qtbot, store, tmp_path):
    engine, warnings = store.open_engine()
    assert engine.version == 7 and warnings == []
    audit = AuditLog(tmp_path / "audit.db")
    w = MainWindow(engine, audit)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    audit.close()


def controller(window, store, url, root, tmp_path, interval_hours: float = 0.0) -> UpdateController:
    c = UpdateController(updater(store, url, root, tmp_path), interval_hours)
    c.attach(window)
    return c


def predict(qtbot, window, path: Path):
    with qtbot.waitSignal(window.resultShown, timeout=TIMEOUT_MS) as blocker:
        assert window.open_file(path)
    return blocker.args[0].prediction


def check(qtbot, c: UpdateController):
    with qtbot.waitSignal(c.checkFinished, timeout=TIMEOUT_MS) as blocker:
        assert c.check_now()
        assert c.is_busy()  # returned before the check ran: it is off the GUI thread
    return blocker.args[0]


def status(window) -> str:
    return window.model_status_label.text()


def test_model_published_while_running_is_used_for_the_next_prediction_then_rolled_back(
    qtbot, window, feed, store, tmp_path, package_v8, jpeg
):
    c = controller(window, store, feed.url, feed.root, tmp_path, interval_hours=0.3 / 3600)  # every 0.3 s
    check_action, rollback_action, allow_action = window.model_menu.actions()[-3:]
    assert check_action.text() == "Check for updates now" and rollback_action.text() == "Roll back to previous model"
    assert not allow_action.isVisible()
    with qtbot.waitSignal(c.checkFinished, timeout=TIMEOUT_MS):
        c.start()
    assert status(window) == "Model version 7 — up to date" and not rollback_action.isEnabled()
    assert predict(qtbot, window, jpeg).model_version == 7

    feed.publish(package_v8)  # no call into the app: the timer's next check finds it
    with qtbot.waitSignal(window.engineChanged, timeout=TIMEOUT_MS):
        pass
    c.set_interval(0)
    qtbot.waitUntil(lambda: not c.is_busy(), timeout=TIMEOUT_MS)
    assert status(window) == "Updated to model version 8"
    assert "model version 8" in window.statusBar().currentMessage()
    # the result on screen is version 7's: the panel says so and offers to analyse again
    assert window.stale_label.isVisible() and window.result_label.text() in ("NORMAL", "PNEUMONIA")
    assert window.stale_label.text() == "This result is from model version 7 (fp32); the model is now version 8 (fp32)."
    assert window.reanalyse_button.text() == "Analyse again with version 8 (fp32)"
    with qtbot.waitSignal(window.resultShown, timeout=TIMEOUT_MS) as blocker:
        window.reanalyse_button.click()
    pred = blocker.args[0].prediction
    assert not window.stale_label.isVisible() and not window.reanalyse_button.isVisible()
    assert pred.model_version == 8 and pred.threshold == pytest.approx(0.3)
    assert pred.probability == pytest.approx(probability(Engine(package_v8), jpeg), abs=1e-6)
    assert window.model_label.text().startswith("version 8")

    assert rollback_action.isEnabled()
    with qtbot.waitSignal(window.engineChanged, timeout=TIMEOUT_MS):
        rollback_action.trigger()
    assert status(window) == "Rolled back to model version 7" and not rollback_action.isEnabled()
    assert predict(qtbot, window, jpeg).model_version == 7
    # A later check does not switch back to the version the user rolled back from, and says so.
    assert check(qtbot, c).status is Status.UP_TO_DATE
    assert window.engine.version == 7 and status(window) == "Model version 7 — version 8 rolled back"
    assert "The feed's model is version 8, which was rolled back" in window.model_status_label.toolTip()
    assert predict(qtbot, window, jpeg).model_version == 7
    # Model › Allow version 8 again takes it back, for the next analysis
    assert allow_action.isVisible() and allow_action.text() == "Allow version 8 again"
    with qtbot.waitSignal(window.engineChanged, timeout=TIMEOUT_MS):
        allow_action.trigger()
    assert window.engine.version == 8 and store.active_version() == 8 and not allow_action.isVisible()
    assert predict(qtbot, window, jpeg).model_version == 8


def test_tampered_update_is_refused_and_the_old_model_keeps_working(
    qtbot, window, feed, store, tmp_path, package_v8, jpeg
):
    c = controller(window, store, feed.url, feed.root, tmp_path)
    feed.publish(package_v8)
    feed.tamper(8, "model.onnx")
    outcome = check(qtbot, c)
    assert outcome.status is Status.REFUSED
    assert status(window) == "Update refused — using model version 7"
    assert "does not match its signed sha256" in window.model_status_label.toolTip()
    assert predict(qtbot, window, jpeg).model_version == 7
    assert list(store.installed()) == [7] and window.engine.version == 7


def test_server_down_at_start_the_app_predicts_and_says_offline(qtbot, window, feed, store, tmp_path, jpeg):
    settings = Settings(
        feed_url=f"http://127.0.0.1:{free_port()}",
        trusted_root=str(feed.root),
        check_interval_hours=6,
        builtin_model=str(store.builtin),
    )  # data_dir: the test's
    c = UpdateController.from_settings(settings)
    c.attach(window)
    assert c.updater.store.root == store.root and c.timer.interval() == 6 * 3_600_000
    with qtbot.waitSignal(c.checkFinished, timeout=TIMEOUT_MS) as blocker:
        c.start()
    assert blocker.args[0].status is Status.OFFLINE and c.timer.isActive()
    assert status(window) == "Offline — using model version 7"
    assert "Cannot reach the feed" in window.model_status_label.toolTip()
    assert predict(qtbot, window, jpeg).model_version == 7


def test_one_check_at_a_time_and_closing_waits_for_it(qtbot, window, feed, store, tmp_path, package_v8):
    c = controller(window, store, feed.url, feed.root, tmp_path)
    feed.publish(package_v8)
    results = []
    c.checkFinished.connect(results.append)
    assert c.check_now() and not c.check_now() and not c.roll_back()
    assert not window.model_menu.actions()[-2].isEnabled()
    window.close()  # waits for the running check; its result no longer touches the window
    assert c.pool.activeThreadCount() == 0
    qtbot.wait(100)
    assert results == [] and window.engine.version == 7 and not c.check_now()
    assert store.active_version() == 8  # the check itself completed: the next start uses version 8


# ---- variants: an int8 clinic downloads the int8 model only -----------------------------------


@pytest.fixture(scope="module")
def package_v9(tmp_path_factory) -> Path:
    """Version 9 with both variants (version 8 has fp32 only)."""
    return make_package(
        tmp_path_factory.mktemp("pkg"),
        version=9,
        seed=2,
        threshold=0.35,
        images_per_class=2,
        int8=True,
        created_at="2026-12-02T12:00:00+00:00",
    )


def model_bytes(feed) -> dict[str, int]:
    """Bytes sent per package file name since the last call (consistent names: <sha256>.<file>)."""
    sent: dict[str, int] = {}
    for r in feed.server.wait_idle():
        if r.path.startswith("/targets/models/") and r.status == 200:
            name = r.path.rsplit("/", 1)[1].split(".", 1)[1]
            sent[name] = sent.get(name, 0) + r.bytes
    feed.server.clear_requests()
    return sent


def test_an_int8_clinic_downloads_only_the_int8_model_and_fetches_fp32_when_switched(
    feed, store, tmp_path, package_v9, jpeg
):
    up = updater(store, feed.url, feed.root, tmp_path, variant="int8")
    assert up.update_once().status is Status.UP_TO_DATE
    feed.publish(package_v9)
    feed.server.clear_requests()

    outcome = up.update_once()

    assert outcome.status is Status.UPDATED and outcome.version == 9 and outcome.engine.variant == "int8"
    sent = model_bytes(feed)
    assert set(sent) == {"model.json", "model.int8.onnx", "reference.png"}  # no fp32 model
    assert sent["model.int8.onnx"] == (package_v9 / "model.int8.onnx").stat().st_size
    assert not (store.root / "9" / "model.onnx").exists()
    assert sum(sent.values()) < (package_v9 / "model.onnx").stat().st_size / 3
    int8_probability = probability(outcome.engine, jpeg)

    # Switched to fp32 while offline: the same model, in the form it has, says so.
    engine, warnings = store.open_engine("fp32")
    assert (engine.version, engine.variant) == (9, "int8")
    assert warnings and "fp32 file is not downloaded yet" in warnings[0]

    # The next check fetches the fp32 file alone; the int8 one is not downloaded again.
    up.variant = "fp32"
    outcome = up.update_once()
    assert outcome.status is Status.UPDATED and (outcome.version, outcome.engine.variant) == (9, "fp32")
    assert set(model_bytes(feed)) == {"model.onnx"}
    assert probability(outcome.engine, jpeg) == pytest.approx(probability(Engine(package_v9), jpeg), abs=1e-6)
    assert int8_probability == pytest.approx(probability(Engine(package_v9, "int8"), jpeg), abs=1e-6)
    assert store.open_engine("fp32")[1] == [] and store.open_engine("int8")[1] == []
    assert up.update_once().status is Status.UP_TO_DATE and model_bytes(feed) == {}


def test_a_tampered_fp32_file_fetched_later_is_refused_and_the_int8_model_keeps_working(
    feed, store, tmp_path, package_v9, jpeg
):
    up = updater(store, feed.url, feed.root, tmp_path, variant="int8")
    feed.publish(package_v9)
    assert up.update_once().status is Status.UPDATED
    before = store_files(store)
    feed.tamper(9, "model.onnx")

    up.variant = "fp32"
    outcome = up.update_once()

    assert outcome.status is Status.REFUSED and "model.onnx" in outcome.reason
    assert store_files(store) == before  # nothing half-written into the installed copy
    engine, warnings = store.open_engine("fp32")
    assert (engine.version, engine.variant) == (9, "int8") and warnings
    assert engine.predict(load_image(jpeg)).model_version == 9


def test_switching_variant_in_the_window_runs_the_model_it_has_then_fetches_the_new_file(
    qtbot, feed, store, tmp_path, package_v9, jpeg
):
    feed.publish(package_v9)
    assert updater(store, feed.url, feed.root, tmp_path, variant="int8").update_once().status is Status.UPDATED
    engine, _ = store.open_engine("int8")
    audit = AuditLog(tmp_path / "audit.db")
    window = MainWindow(engine, audit)
    qtbot.addWidget(window)
    window.show()
    c = UpdateController(updater(store, feed.url, feed.root, tmp_path, variant="int8"), 0)
    c.attach(window)
    feed.server.clear_requests()

    with qtbot.waitSignal(c.checkFinished, timeout=TIMEOUT_MS) as blocker:
        c.reload_model("fp32")  # what the settings dialog does on a variant change

    assert blocker.args[0].status is Status.UPDATED
    assert (window.engine.version, window.engine.variant) == (9, "fp32")
    assert status(window) == "Model version 9 — now fp32"
    assert set(model_bytes(feed)) == {"model.onnx"}
    pred = predict(qtbot, window, jpeg)
    assert pred.model_version == 9
    assert pred.probability == pytest.approx(probability(Engine(package_v9), jpeg), abs=1e-6)
    c.shutdown()
    window.close()
    audit.close()
