"""MLflow and Airflow on a real PostgreSQL, started the way docker-compose.yml starts them.

The server commands are read from docker-compose.yml itself, so what passes here is what the
`mlflow` and `airflow-init` services run; only container paths, ports and the database change.
PNEUMO_TEST_POSTGRES_URL names a role that may create databases: each test works in a fresh,
uniquely named database and drops it afterwards, so reruns never see an earlier run's rows.

    export PNEUMO_TEST_POSTGRES_URL="$(deploy/ci/start-postgres.sh)"
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from hub.config import EXPERIMENT, REGISTERED_MODEL
from tests.conftest import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
BIN = Path(sys.executable).parent


def _required(what: str, how: str):
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide {what}: {how}")
    pytest.skip(f"no {what} ({how})")


def _defaults(value: str) -> str:
    """Compose's ``${VAR:-default}`` with the default, as on a machine with no .env."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def compose_service(name: str) -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"][name]


def compose_hub_env() -> dict[str, str]:
    return {k: _defaults(str(v)) for k, v in yaml.safe_load(COMPOSE.read_text())["x-hub-env"].items()}


def _wait_http(url: str, proc: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{url} did not answer: {log.read_text()[-3000:]}")
        time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@contextlib.contextmanager
def fresh_database():
    """A new, uniquely named database on the test server, dropped afterwards:
    ``(SQLAlchemy URL, psycopg2 connect kwargs)``."""
    url = os.environ.get("PNEUMO_TEST_POSTGRES_URL")
    if not url:
        _required("PostgreSQL", 'export PNEUMO_TEST_POSTGRES_URL="$(deploy/ci/start-postgres.sh)"')
    try:
        import psycopg2
        from psycopg2 import sql
    except ImportError:
        _required("psycopg2", "pip install psycopg2-binary (the version pinned in pyproject.toml)")
    from sqlalchemy.engine import make_url

    base = make_url(url)
    connect = {"host": base.host, "port": base.port or 5432, "user": base.username, "password": base.password}
    name = f"pneumo_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(dbname=base.database, **connect)
    admin.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield base.set(database=name).render_as_string(hide_password=False), {**connect, "dbname": name}
    finally:
        with admin.cursor() as cur:  # FORCE: a server that did not exit cleanly may still hold a connection
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


@pytest.fixture(scope="module")
def mlflow_on_postgres(tmp_path_factory):
    """The compose `mlflow` service's command on loopback, on a fresh database:
    ``(server URL, artifacts folder, psycopg2 connect kwargs)``. One server for the module: it
    takes ~25 s to come up here."""
    with fresh_database() as (url, connect):
        yield from _mlflow_server(url, connect, tmp_path_factory.mktemp("mlflow-on-postgres"))


def _mlflow_server(url: str, connect: dict, tmp_path: Path):
    artifacts = tmp_path / "mlartifacts"
    port = free_port()
    cmd = [_defaults(str(a)) for a in compose_service("mlflow")["command"]]
    assert cmd[:2] == ["mlflow", "server"], cmd
    for flag, value in {
        "--backend-store-uri": url,
        "--artifacts-destination": str(artifacts),
        "--host": "127.0.0.1",
        "--port": str(port),
    }.items():
        cmd[cmd.index(flag) + 1] = value
    # one worker instead of the default four: the same server, lighter on a 2-core CI machine
    cmd += ["--workers", "1"]
    log = tmp_path / "mlflow.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(BIN / "mlflow"), *cmd[1:]],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        )
    server = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{server}/health", proc, log)
        yield server, artifacts, connect
    finally:
        _stop(proc)


def test_mlflow_server_on_postgres_keeps_runs_metrics_and_registered_models(mlflow_on_postgres, tmp_path):
    import mlflow
    import psycopg2
    from mlflow import MlflowClient

    server, artifacts, connect = mlflow_on_postgres
    writer = MlflowClient(server)
    exp_id = writer.create_experiment(EXPERIMENT)
    run = writer.create_run(exp_id, run_name="on-postgres")
    run_id = run.info.run_id
    for step, auc in enumerate([0.71, 0.84, 0.91]):
        writer.log_metric(run_id, "gold_roc_auc", auc, step=step)
    writer.log_param(run_id, "lr", "0.001")
    info = tmp_path / "model_info.json"
    info.write_text(json.dumps({"classes": ["NORMAL", "PNEUMONIA"]}))
    writer.log_artifact(run_id, str(info), "trained_model")
    writer.set_terminated(run_id)
    writer.create_registered_model(REGISTERED_MODEL)
    mv = writer.create_model_version(REGISTERED_MODEL, source=f"{run.info.artifact_uri}/trained_model", run_id=run_id)
    writer.set_registered_model_alias(REGISTERED_MODEL, "champion", mv.version)

    # Read everything back through the server, as the DAG and the MLflow UI would.
    reader = MlflowClient(server)
    got = reader.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.data.metrics["gold_roc_auc"] == pytest.approx(0.91)
    assert got.data.params["lr"] == "0.001"
    assert [
        m.value for m in sorted(reader.get_metric_history(run_id, "gold_roc_auc"), key=lambda m: m.step)
    ] == pytest.approx([0.71, 0.84, 0.91])
    champion = reader.get_model_version_by_alias(REGISTERED_MODEL, "champion")
    assert (champion.version, champion.run_id) == ("1", run_id)
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id,
        artifact_path="trained_model/model_info.json",
        tracking_uri=server,
        dst_path=str(tmp_path / "download"),
    )
    assert json.loads(Path(local).read_text())["classes"] == ["NORMAL", "PNEUMONIA"]
    # the server proxied the upload into --artifacts-destination (the compose mlflow-artifacts volume)
    assert [p.name for p in artifacts.rglob("model_info.json")] == ["model_info.json"]

    # ...and the tracking data is in PostgreSQL itself, not in a file next to the server.
    with psycopg2.connect(**connect) as conn, conn.cursor() as cur:
        cur.execute("SELECT value FROM metrics WHERE run_uuid = %s AND key = 'gold_roc_auc' ORDER BY step", (run_id,))
        assert [v for (v,) in cur.fetchall()] == pytest.approx([0.71, 0.84, 0.91])
        cur.execute("SELECT version, run_id FROM model_versions WHERE name = %s", (REGISTERED_MODEL,))
        assert cur.fetchall() == [(1, run_id)]


def test_mlflow_answers_the_airflow_containers_but_not_unknown_hosts(mlflow_on_postgres):
    """Inside compose the DAG's tasks call http://mlflow:5000; MLflow refuses Host headers it does
    not know (while /health still answers), so the service's --allowed-hosts must name it."""
    server, _, _ = mlflow_on_postgres
    api = f"{server}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"

    def status(host: str) -> int:
        try:
            with urllib.request.urlopen(urllib.request.Request(api, headers={"Host": host}), timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    assert status("mlflow:5000") == 200
    assert status("localhost:5000") == 200
    assert status("attacker.example:5000") == 403


def test_airflow_init_migrates_postgres_and_its_admin_can_log_in(tmp_path):
    """The compose `airflow-init` script on a fresh database, then `airflow api-server` on it:
    the admin logs in with AIRFLOW_ADMIN_PASSWORD and the API reports a healthy metadata DB."""
    if not (BIN / "airflow").exists():
        _required("Airflow", "the project's orchestration extra (apache-airflow)")
    if importlib.util.find_spec("asyncpg") is None:
        # Airflow 3 turns postgresql+psycopg2:// into postgresql+asyncpg:// for its async engine
        _required(
            "asyncpg", "Airflow 3 on PostgreSQL needs it beside psycopg2 (pip install asyncpg, as the Dockerfile does)"
        )
    with fresh_database() as (url, _):
        _airflow_init_and_login(url, tmp_path)


def _airflow_init_and_login(url: str, tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = {
        **os.environ,
        **compose_hub_env(),
        # container paths and names -> this machine
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW_ADMIN_PASSWORD": "s3cret-admin",
    }
    init = compose_service("airflow-init")
    assert init["entrypoint"] == "/bin/bash"
    r = subprocess.run(["bash", *init["command"]], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert json.loads((home / "passwords.json").read_text()) == {"admin": "s3cret-admin"}

    log = tmp_path / "api-server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(BIN / "airflow"), "api-server", "--port", str(port), "--workers", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/api/v2/monitor/health", proc, log)
        with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=10) as r:
            assert json.load(r)["metadatabase"]["status"] == "healthy"

        def token(password: str) -> tuple[int, dict]:
            req = urllib.request.Request(
                f"{base}/auth/token",
                method="POST",
                data=json.dumps({"username": "admin", "password": password}).encode(),
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, json.load(r)
            except urllib.error.HTTPError as e:
                return e.code, {}

        assert token("wrong")[0] == 401
        status, body = token("s3cret-admin")
        assert status in (200, 201) and body["access_token"]
        req = urllib.request.Request(f"{base}/api/v2/dags", headers={"Authorization": f"Bearer {body['access_token']}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200 and "dags" in json.load(r)
    finally:
        _stop(proc)
