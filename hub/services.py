"""`pneumo-hub up`: the embedded default's services on one machine, started and stopped together.

MLflow server (SQLite + local artifacts), Airflow standalone (SQLite; api-server, scheduler,
dag-processor, triggerer) with this project's DAGs, and the feed's static server. Ctrl-C (or
SIGTERM) stops all of them. Retraining runs inside Airflow's own processes, so it never blocks
the feed server or the web UIs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from hub.config import TELEMETRY_OFF, HubPaths, env_value

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class Ports:
    mlflow: int = 5000
    airflow: int = 8080
    feed: int = 8765


def service_env(paths: HubPaths, ports: Ports) -> dict[str, str]:
    """Environment shared by every service (same names as docker-compose.yml)."""
    airflow_home = paths.airflow_home()
    bin_dir = str(Path(sys.executable).parent)  # airflow standalone runs `airflow ...` children by name
    return {
        **os.environ,
        **TELEMETRY_OFF,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        **paths.env(),
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ports.mlflow}",
        "PNEUMO_FEED_URL": env_value("PNEUMO_FEED_URL", f"http://127.0.0.1:{ports.feed}"),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # the project's DAGs run as soon as they are first parsed: a batch dropped after `up` is picked up
        # with no click in the UI (the daily run does not back-fill: catchup off, no immediate cron run)
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": env_value("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False"),
        "AIRFLOW__API__PORT": str(ports.airflow),
        "AIRFLOW__API__HOST": "127.0.0.1",
        # tasks report to the execution API of this api-server: without it they call localhost:8080 and
        # every task of an `up --airflow-port N` hub fails with "Connection refused"
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{ports.airflow}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": env_value(
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{airflow_home / 'airflow.db'}"
        ),
    }


def _wait(url: str, procs: list[subprocess.Popen], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(1)
    return False


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        try:  # the group, even when its leader already exited: Airflow leaves children behind
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def up(paths: HubPaths, ports: Ports | None = None, out=sys.stdout) -> int:
    """Start the services, print where they are, block until Ctrl-C/SIGTERM, then stop them all."""
    ports = ports or Ports()
    env = service_env(paths, ports)
    paths.home.mkdir(parents=True, exist_ok=True)
    logs = paths.logs
    logs.mkdir(exist_ok=True)
    bin_dir = Path(sys.executable).parent
    feed_dir, keys_dir = paths.feed, paths.feed_keys
    if not (feed_dir / "metadata" / "root.json").exists():
        from feed.repository import ROOT_PASSPHRASE_ENV, env_passphrase, init_feed, offline_key_path

        init_feed(feed_dir, keys_dir, root_passphrase=env_passphrase())
        root_key = offline_key_path(keys_dir)
        print(
            f"created the feed at {feed_dir} (online keys in {keys_dir}); its root key is {root_key}, "
            + (
                "encrypted with $" + ROOT_PASSPHRASE_ENV
                if env_passphrase()
                else f"NOT encrypted (no ${ROOT_PASSPHRASE_ENV}): pneumo-hub feed protect-root"
            )
            + ", then take it offline (`pneumo-hub feed init --help`)",
            file=out,
        )
    paths.incoming.mkdir(parents=True, exist_ok=True)
    from hub import settings

    settings_path, created = settings.ensure(paths)
    if created:
        weights, why = settings.default_weights()
        print(f"wrote the hub settings {settings_path} (weights = {weights}: {why})", file=out)
    settings.load(paths)  # a broken file is said now, not at the first automatic run
    commands = {
        "mlflow": [
            str(bin_dir / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{paths.mlflow_db}",
            "--artifacts-destination",
            str(paths.mlflow_artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(ports.mlflow),
            "--workers",
            "1",
        ],
        "airflow": [str(bin_dir / "airflow"), "standalone"],
        "feed": [
            str(bin_dir / "pneumo-hub"),
            "--home",
            str(paths.home),
            "feed",
            "serve",
            "--feed",
            str(feed_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(ports.feed),
        ],
    }
    procs: list[subprocess.Popen] = []
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for name, cmd in commands.items():
            log = open(logs / f"{name}.log", "ab")
            # own process group: Ctrl-C reaches us once, and we stop each service with its children
            procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        urls = {
            "MLflow": f"http://127.0.0.1:{ports.mlflow}",
            "Airflow": f"http://127.0.0.1:{ports.airflow}",
            "feed": f"http://127.0.0.1:{ports.feed}/metadata/root.json",
        }
        checks = {
            "MLflow": urls["MLflow"] + "/health",
            "Airflow": urls["Airflow"] + "/api/v2/monitor/health",
            "feed": urls["feed"],
        }
        for name, url in checks.items():
            if stop["now"]:
                break
            if not _wait(url, procs, 300):
                print(f"{name} did not start; see the logs in {logs}", file=out)
                return 1
            print(f"{name:8} {urls[name]}", file=out)
        pw_file = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
        if pw_file.exists():
            creds = json.loads(pw_file.read_text())
            print("Airflow login: " + ", ".join(f"{u} / {p}" for u, p in creds.items()), file=out)
        print(
            f"drop labelled batches (a folder with NORMAL/ and PNEUMONIA/) into {paths.incoming}: "
            f"incoming_watch looks every {env.get('PNEUMO_WATCH_SECONDS') or 600} s",
            file=out,
        )
        print(f"automatic runs train and judge with {settings_path}   logs: {logs}", file=out)
        if (env.get("PNEUMO_REQUIRE_APPROVAL") or "").strip().lower() in ("1", "true", "yes", "on"):
            print(
                "promotions wait for a person: Airflow › Browse › Required Actions "
                f"({urls['Airflow']}/required_actions)",
                file=out,
            )
        print("Ctrl-C stops everything.", file=out, flush=True)
        while not stop["now"]:
            if any(p.poll() is not None for p in procs):
                print(f"a service exited; see the logs in {logs}; stopping the others", file=out)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        _stop(procs)
        for s, h in old.items():
            signal.signal(s, h)
        print("stopped.", file=out, flush=True)
