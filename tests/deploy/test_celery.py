"""The continuous-training loop on Airflow's CeleryExecutor across two workers that share no disk.

Real parts on loopback: redis-server (the broker), PostgreSQL (Airflow's metadata database and
Celery's result backend), an MLflow server, Airflow's api-server, scheduler and dag-processor, and
two `airflow celery worker` processes, each with its own hub home (PNEUMO_HOME):

* the hub worker (queue ``hub``) holds the incoming folder, the pool and the feed;
* the training worker (queues ``train`` and ``default``) holds nothing at the start: it fetches the
  dataset version it trains on from the DVC remote (PNEUMO_DVC_REMOTE, a folder here, S3 in a real
  deployment) and reads the cycle's state from MLflow.

A batch dropped into the hub worker's incoming folder must end as version 1 of its feed, with the
model trained on the training worker, on exactly the dataset version the hub recorded.

Two workers on one machine stand in for two machines: each is told only its own home, so a task on
the wrong worker (or reading the other's files) fails instead of passing by accident.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hub.services import _stop  # the group of each, as `pneumo-hub up` stops its services
from tests.conftest import SAMPLE, free_port
from tests.deploy.test_postgres import _required, fresh_database
from tests.e2e.hub_up import api, tiny_settings, token

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
RUNS = "/api/v2/dags/continuous_training/dagRuns"


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = open(log, "ab")
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_http(url: str, procs: list[subprocess.Popen], logs: Path, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3):
                return
        except OSError:
            pass
        dead = [p.args for p in procs if p.poll() is not None]
        assert not dead, f"exited: {dead}\n" + _tails(logs)
        time.sleep(1)
    raise AssertionError(f"{url} did not answer\n" + _tails(logs))


def _tails(logs: Path) -> str:
    return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-2500:]}" for f in sorted(logs.glob("*.log")))


def _md5(dvc_file: Path) -> str:
    import yaml

    return yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]


def test_a_batch_is_trained_on_a_worker_without_the_hub_s_disk(tmp_path):
    if not shutil.which("redis-server"):
        _required("redis-server", "apt-get install redis-server (.ci/run does)")
    pytest.importorskip("airflow.providers.celery", reason="the orchestration extra (pyproject.toml)")
    with fresh_database() as (db_url, _):
        _run(tmp_path, db_url)


def _run(tmp_path: Path, db_url: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    hub_home, train_home = tmp_path / "hub-home", tmp_path / "train-home"
    redis_port, mlflow_port, api_port = free_port(), free_port(), free_port()
    pw_file = tmp_path / "passwords.json"
    pw_file.write_text(json.dumps({"admin": "celery-test"}))

    from hub.config import TELEMETRY_OFF

    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PNEUMO_", "MLFLOW_TRACKING"))}
    env = {
        **base,
        **TELEMETRY_OFF,
        "PATH": str(BIN) + os.pathsep + os.environ.get("PATH", ""),
        "TORCH_HOME": str(tmp_path / "torch"),  # no ImageNet file: the tiny settings train from scratch
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
        "AIRFLOW_HOME": str(tmp_path / "af"),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + db_url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "celery-test-secret-of-32-characters!",
        "AIRFLOW__API__SECRET_KEY": "celery-test-secret-key",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(pw_file),
        "PNEUMO_HUB_QUEUE": "hub",
        "PNEUMO_TRAIN_QUEUE": "train",
        "PNEUMO_WATCH_SECONDS": "10",
        "PNEUMO_DAG_RETRIES": "0",
        "PNEUMO_DVC_REMOTE": str(tmp_path / "dvc-remote"),
    }
    settings_file = tiny_settings(hub_home, env)  # the hub's; they travel with each run to the training worker
    # one DataLoader worker, as the defaults have: a Celery prefork worker is daemonic and may not start
    # children, so training must load in-process there instead of crashing (hub.train)
    settings_file.write_text(settings_file.read_text().replace("num_workers = 0", "num_workers = 1"))

    def worker(home: Path, name: str) -> dict[str, str]:
        return {
            **env,
            "PNEUMO_HOME": str(home),
            "PNEUMO_INCOMING": str(home / "incoming"),
            "PNEUMO_FEED_DIR": str(home / "feed"),
            "PNEUMO_FEED_KEYS": str(home / "feed-keys"),
            "AIRFLOW_HOME": str(tmp_path / f"af-{name}"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }

    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            _start(
                ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                env,
                logs / "redis.log",
            )
        )
        procs.append(
            _start(
                [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
                + ["--artifacts-destination", str(tmp_path / "mlartifacts"), "--host", "127.0.0.1"]
                + ["--port", str(mlflow_port), "--workers", "1"],
                env,
                logs / "mlflow.log",
            )
        )
        migrate = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True)
        assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-3000:]
        api_cmd = [str(BIN / "airflow"), "api-server", "--port", str(api_port), "--workers", "1"]
        procs.append(_start(api_cmd, env, logs / "api.log"))
        procs.append(_start([str(BIN / "airflow"), "scheduler"], env, logs / "scheduler.log"))
        procs.append(_start([str(BIN / "airflow"), "dag-processor"], env, logs / "dag-processor.log"))
        for home, queues, name in ((hub_home, "hub", "hub"), (train_home, "train,default", "train")):
            procs.append(
                _start(
                    [str(BIN / "airflow"), "celery", "worker", "--queues", queues, "--concurrency", "1"]
                    + ["--celery-hostname", f"{name}@%h"],
                    worker(home, name),
                    logs / f"worker-{name}.log",
                )
            )
        _wait_http(f"http://127.0.0.1:{mlflow_port}/health", procs, logs)
        _wait_http(f"http://127.0.0.1:{api_port}/api/v2/monitor/health", procs, logs)
        airflow = f"http://127.0.0.1:{api_port}"
        tok = token(airflow, "celery-test")

        # the clinic's batch lands on the hub host only
        batch = hub_home / "incoming" / "batch-1"
        for label in ("NORMAL", "PNEUMONIA"):
            shutil.copytree(SAMPLE / "train" / label, batch / label)
        dropped = time.monotonic()

        from feed import repository

        deadline = dropped + 900
        while time.monotonic() < deadline:
            if (hub_home / "feed" / "metadata" / "root.json").exists():
                if repository.status(hub_home / "feed").champion == 1:
                    break
            runs = api(airflow, RUNS, tok)["dag_runs"]
            failed = [r for r in runs if r["state"] == "failed"]
            assert not failed, f"{failed}\n" + _tails(logs)
            dead = [p.args for p in procs if p.poll() is not None]
            assert not dead, f"exited: {dead}\n" + _tails(logs)
            time.sleep(5)
        else:
            raise AssertionError("the batch never reached the feed\n" + _tails(logs))
        seconds = time.monotonic() - dropped

        # where each task ran: Celery queues, as the REST API reports them
        run = api(airflow, RUNS, tok)["dag_runs"][0]
        deadline = time.monotonic() + 120
        while run["state"] != "success" and time.monotonic() < deadline:
            time.sleep(3)
            run = api(airflow, f"{RUNS}/{run['dag_run_id']}", tok)
        assert run["state"] == "success", run
        tis = {
            ti["task_id"]: ti for ti in api(airflow, f"{RUNS}/{run['dag_run_id']}/taskInstances", tok)["task_instances"]
        }
        assert {t: tis[t]["queue"] for t in ("detect", "train", "score", "promote", "publish")} == {
            "detect": "hub",
            "train": "train",
            "score": "train",
            "promote": "hub",
            "publish": "hub",
        }, tis
        assert all(ti["state"] in ("success", "skipped") for ti in tis.values()), tis

        # the training worker had no hub files: it trained on the dataset pulled by its DVC hash
        assert not (train_home / "hub.toml").exists()
        assert not (train_home / "incoming").exists()
        assert _md5(train_home / "pool.dvc") == _md5(hub_home / "pool.dvc")
        assert _md5(train_home / "splits.json.dvc") == _md5(hub_home / "splits.json.dvc")
        assert any((train_home / "runs").rglob("*.pt")), "no checkpoint on the training worker"
        train_logs = "".join(f.read_text(errors="replace") for f in (tmp_path / "af-train").rglob("*.log"))
        assert "loading images in-process" in train_logs, "the daemonic-worker fallback did not run"
        assert not (hub_home / "runs").exists() or not any((hub_home / "runs").rglob("*.pt"))

        # the published model is the one trained there, on the dataset version the hub recorded
        from mlflow import MlflowClient

        ml = MlflowClient(env["MLFLOW_TRACKING_URI"])
        champion = ml.get_model_version_by_alias("pneumoscan-resnet18", "champion")
        trained = ml.get_run(champion.run_id)
        assert trained.data.params["epochs"] == "3" and trained.data.params["image_size"] == "64"
        cards = list((hub_home / "feed").rglob("*model.json"))
        assert cards, "no model card in the feed"
        card = json.loads(cards[0].read_text())
        version = trained.data.tags["dataset_version"]
        assert card["provenance"]["dataset_version"] == version, (version, card)
        assert card["provenance"]["dvc_md5"] == _md5(hub_home / "pool.dvc")
        assert card["provenance"]["mlflow_run_id"] == champion.run_id
        assert version in (champion.description or ""), champion.description
        print(f"Celery, two workers: batch dropped -> feed version 1 in {seconds:.0f} s")
    finally:
        _stop(procs)
