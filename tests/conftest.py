"""Shared fixtures. Everything runs on the bundled sample (sample_data/), never on ../shared."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

for _k, _v in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "1",
    "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
    "SCARF_ANALYTICS": "false",
    "GIT_PYTHON_REFRESH": "quiet",
}.items():
    os.environ.setdefault(_k, _v)
os.environ.pop("MLFLOW_TRACKING_URI", None)  # tests choose their own store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "chest_xray"


@pytest.fixture(autouse=True)
def _no_logging_into_closed_streams():
    """A CLI's ``main()`` run inside a test calls ``logging.basicConfig``, whose handler writes to that
    test's captured stderr; once the capture is closed, every later log line would print "Logging
    error" into other tests' output. Drop such handlers after each test (torn down after capsys)."""
    import logging

    yield
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, logging.StreamHandler) and getattr(h.stream, "closed", False):
            root.removeHandler(h)


@pytest.fixture(scope="session")
def sample_root() -> Path:
    assert SAMPLE.is_dir(), "bundled sample missing"
    return SAMPLE


def sample_files(label: str, n: int, offset: int = 0) -> list[Path]:
    return sorted((SAMPLE / "train" / label).glob("*.jpeg"))[offset : offset + n]


@pytest.fixture(scope="session")
def _imported_home(tmp_path_factory) -> Path:
    from hub import dataset
    from hub.config import HubPaths

    home = tmp_path_factory.mktemp("hub-home")
    paths = HubPaths(home)
    dataset.import_data(paths, SAMPLE, "sample")
    dataset.split(paths)
    return home


@pytest.fixture
def hub_paths(_imported_home, tmp_path):
    """A hub home with the sample imported and split (a private copy per test)."""
    from hub.config import HubPaths

    home = tmp_path / "home"
    shutil.copytree(_imported_home, home, symlinks=True)
    return HubPaths(home)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on loopback: SQLite backend, proxied artifact store."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"mlflow server did not come up: {(root / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def run_cli(*args: str, env: dict | None = None, timeout: int = 600, cwd=None) -> subprocess.CompletedProcess:
    """The installed `pneumo-hub` console script, as a user runs it."""
    exe = Path(sys.executable).parent / "pneumo-hub"
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd
    )


def train_on_sample(imported_home: Path, tmp: Path, cfg, temperature: float, threshold: float):
    """A private copy of the imported hub home, a model trained on its train split by ``cfg`` and saved
    as a trained-model folder with that calibration: (HubPaths, dataset view, trained-model folder)."""
    from hub import dataset
    from hub.config import HubPaths
    from hub.pool import TRAIN, VAL
    from hub.train import fit
    from hub.trained_model import ModelInfo, TrainedModel

    shutil.copytree(imported_home, tmp / "home")
    paths = HubPaths(tmp / "home")
    view = dataset.training_view(paths)
    result = fit(cfg, view.files(TRAIN), view.files(VAL), tmp / "ckpt")
    info = ModelInfo(
        preprocess=cfg.spec().to_dict(),
        temperature=temperature,
        threshold=threshold,
        target_sensitivity=0.95,
        dataset_version=view.version,
        gold_metrics={"accuracy": 0.5},
    )
    return paths, view, TrainedModel(result.model, info).save(tmp / "trained_model")


@pytest.fixture
def alert_sink(monkeypatch):
    """A real HTTP server on loopback standing in for the team's webhook; ``PNEUMO_ALERT_WEBHOOK`` points at it.

    Yields the list of alert bodies (parsed JSON) it received, in order."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("PNEUMO_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_address[1]}/hook")
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
