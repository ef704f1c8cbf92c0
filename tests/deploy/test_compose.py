"""The production deployment files: docker-compose.yml as compose itself resolves it, and the
feed's nginx configuration served by a real nginx.

There is no Docker engine on the build machines: `docker-compose config` validates the file
against the compose schema and resolves anchors, `${VAR:-default}`s and paths without one.
Nothing here starts a container.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from hub.config import TELEMETRY_OFF
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "nginx-feed.conf"

HUB_SERVICES = {
    "mlflow",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
SERVICES = HUB_SERVICES | {"postgres", "feed"}
AIRFLOW_SERVICES = {s for s in HUB_SERVICES if s.startswith("airflow-")}
# The names the hub's code reads (hub/config.py, hub/cycle.py, hub/cli_feed.py) and Airflow's own.
HUB_ENV = (
    "PNEUMO_HOME",
    "MLFLOW_TRACKING_URI",
    "PNEUMO_REGISTERED_MODEL",
    "PNEUMO_EXPERIMENT",
    "TORCH_HOME",
    "PNEUMO_INCOMING",
    "PNEUMO_FEED_DIR",
    "PNEUMO_FEED_KEYS",
    "PNEUMO_FEED_URL",
    "PNEUMO_POLICY",
    "PNEUMO_ALERT_WEBHOOK",
    "PNEUMO_REQUIRE_APPROVAL",
    "PNEUMO_DVC_REMOTE",
    "PNEUMO_HUB_QUEUE",
    "PNEUMO_TRAIN_QUEUE",
)
AIRFLOW_ENV = (
    "AIRFLOW_HOME",
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
)


def _require_tool(name: str) -> str:
    """The tool's path; in CI a missing tool is a broken CI set-up, elsewhere a skip."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must install {name} (.ci/run installs it with apt-get)")
        pytest.skip(f"{name} is not installed (apt-get install {name})")
    return path


def compose_config(**env: str) -> dict:
    """`docker-compose config` of the real file, in a clean environment plus ``env``."""
    exe = _require_tool("docker-compose")
    # Only PATH and HOME from the caller: a developer's exported PNEUMO_* must not change the result.
    clean = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    r = subprocess.run(
        [exe, "-f", str(COMPOSE), "config"], capture_output=True, text=True, timeout=120, cwd=ROOT, env={**clean, **env}
    )
    assert r.returncode == 0, f"docker-compose config rejected {COMPOSE.name}:\n{r.stderr}"
    return yaml.safe_load(r.stdout)


@pytest.fixture(scope="module")
def config() -> dict:
    return compose_config()


def volume_mounts(service: dict) -> dict[str, tuple[str, bool]]:
    """target -> (source, read_only) for every volume of a resolved service."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, str):  # "source:target[:mode]", as compose v1 prints them
            source, target, *mode = v.split(":")
            out[target] = (source, bool(mode) and "ro" in mode[0].split(","))
        else:
            out[v["target"]] = (v.get("source", ""), bool(v.get("read_only")))
    return out


def test_compose_file_validates_and_defines_every_service(config):
    assert set(config["services"]) == SERVICES
    assert {"postgres-data", "hub-data", "mlflow-artifacts", "feed"} <= set(config["volumes"])
    assert config["services"]["postgres"]["image"] == "postgres:16"
    assert config["services"]["feed"]["image"] == "nginx:alpine"


def test_every_hub_service_runs_the_hub_image_with_the_same_settings(config):
    services = config["services"]
    envs = {}
    for name in HUB_SERVICES:
        svc = services[name]
        assert svc["build"]["context"] == str(ROOT), name
        assert svc["image"] == services["mlflow"]["image"], name
        missing = [k for k in (*HUB_ENV, *AIRFLOW_ENV, *TELEMETRY_OFF) if k not in svc["environment"]]
        assert not missing, f"{name} lacks {missing}"
        envs[name] = {k: v for k, v in svc["environment"].items() if k != "AIRFLOW_ADMIN_PASSWORD"}
    # one x-hub-env for all: the DAG's tasks and the MLflow server can never disagree on a setting
    assert all(e == envs["mlflow"] for e in envs.values())

    env = envs["mlflow"]
    assert env["PNEUMO_REGISTERED_MODEL"] == "pneumoscan-resnet18" and env["PNEUMO_EXPERIMENT"] == "pneumoscan"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    for k, v in TELEMETRY_OFF.items():
        assert str(env[k]).lower() == v.lower(), k
    # the tracking URI names the mlflow service and the port its command listens on
    tracking = urllib.parse.urlsplit(env["MLFLOW_TRACKING_URI"])
    cmd = services["mlflow"]["command"]
    assert tracking.hostname == "mlflow" and str(tracking.port) == cmd[cmd.index("--port") + 1]
    assert urllib.parse.urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname == "postgres"


def test_hub_state_lives_in_named_volumes_and_signing_keys_are_never_published(config):
    services = config["services"]
    env = services["airflow-scheduler"]["environment"]
    mounts = volume_mounts(services["airflow-scheduler"])  # where the DAG's tasks run
    assert mounts[env["PNEUMO_HOME"]] == ("hub-data", False)
    assert mounts[env["PNEUMO_FEED_DIR"]] == ("feed", False)  # the publisher writes the feed
    for path in ("TORCH_HOME", "PNEUMO_INCOMING", "PNEUMO_FEED_KEYS"):
        assert Path(env[path]).is_relative_to(env["PNEUMO_HOME"]), path
    # the keys must not sit in the volume that nginx serves
    assert not Path(env["PNEUMO_FEED_KEYS"]).is_relative_to(env["PNEUMO_FEED_DIR"])
    mlflow_cmd = services["mlflow"]["command"]
    artifacts = mlflow_cmd[mlflow_cmd.index("--artifacts-destination") + 1]
    assert volume_mounts(services["mlflow"])[artifacts] == ("mlflow-artifacts", False)
    assert volume_mounts(services["postgres"])["/var/lib/postgresql/data"] == ("postgres-data", False)


def test_airflow_loads_the_projects_dags_folder(config):
    dags = ROOT / "dags"
    assert (dags / "continuous_training.py").is_file()
    for name in AIRFLOW_SERVICES:
        svc = config["services"][name]
        folder = svc["environment"]["AIRFLOW__CORE__DAGS_FOLDER"]
        assert volume_mounts(svc).get(folder) == (str(dags), True), f"{name} does not mount ./dags at {folder}"


def test_feed_is_served_read_only_by_nginx_with_the_projects_config(config):
    feed = config["services"]["feed"]
    mounts = volume_mounts(feed)
    served = next(
        line.split()[1].rstrip(";") for line in NGINX_CONF.read_text().splitlines() if line.strip().startswith("root ")
    )
    assert mounts[served] == ("feed", True)  # the very volume the hub publishes into, read-only
    assert mounts["/etc/nginx/conf.d/default.conf"] == (str(NGINX_CONF), True)
    assert any(str(p.get("target")) == "8765" and str(p.get("published")) == "8765" for p in feed["ports"])


def test_mlflow_and_airflow_listen_on_the_hosts_loopback_unless_told_otherwise(config):
    """No login on MLflow: anyone who reaches it can move `previous` and get it shipped by a rollback."""

    def host_ip_and_target(entry) -> tuple[str | None, str]:
        if isinstance(entry, dict):  # long syntax
            return entry.get("host_ip"), str(entry["target"])
        ip, _published, target = entry.split("/")[0].rsplit(":", 2)  # docker-compose 1.x prints ip:pub:target
        return ip, target

    for name, port in (("mlflow", "5000"), ("airflow-apiserver", "8080")):
        (published,) = config["services"][name]["ports"]
        assert host_ip_and_target(published) == ("127.0.0.1", port), published
    opened = compose_config(MLFLOW_BIND="0.0.0.0")["services"]["mlflow"]["ports"][0]
    assert host_ip_and_target(opened) == ("0.0.0.0", "5000")


def test_start_order_waits_for_healthy_dependencies(config):
    services = config["services"]

    def waits_for(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name].get("depends_on", {}).items()}

    assert waits_for("mlflow") == {"postgres": "service_healthy"}
    assert waits_for("airflow-init") == {"postgres": "service_healthy"}
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        deps = waits_for(name)
        assert deps["postgres"] == "service_healthy", name
        assert deps["airflow-init"] == "service_completed_successfully", name
    assert waits_for("airflow-scheduler")["mlflow"] == "service_healthy"  # tasks log to MLflow
    assert "airflow-init" in waits_for("feed")  # the hub user, not nginx, owns the new feed volume
    for name in SERVICES - {"airflow-init"}:
        assert services[name].get("restart") == "unless-stopped", name
    for name in SERVICES - {"airflow-init", "feed"}:
        assert "healthcheck" in services[name], name
    assert "/health" in " ".join(services["mlflow"]["healthcheck"]["test"])
    assert "airflow db migrate" in "\n".join(services["airflow-init"]["command"])


def test_database_passwords_reach_both_the_init_script_and_the_clients():
    def passwords(cfg: dict) -> dict[str, str]:
        services = cfg["services"]
        cmd = services["mlflow"]["command"]
        mlflow_url = urllib.parse.urlsplit(cmd[cmd.index("--backend-store-uri") + 1])
        airflow_env = services["airflow-scheduler"]["environment"]
        airflow_url = urllib.parse.urlsplit(airflow_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        pg = services["postgres"]["environment"]
        assert (mlflow_url.username, mlflow_url.path) == ("mlflow", "/mlflow")
        assert (airflow_url.username, airflow_url.path) == ("airflow", "/airflow")
        # what the init script sets is what the clients send
        assert mlflow_url.password == pg["MLFLOW_DB_PASSWORD"]
        assert airflow_url.password == pg["AIRFLOW_DB_PASSWORD"]
        return {
            "mlflow": mlflow_url.password,
            "airflow": airflow_url.password,
            "postgres": pg["POSTGRES_PASSWORD"],
            "admin": cfg["services"]["airflow-init"]["environment"]["AIRFLOW_ADMIN_PASSWORD"],
        }

    defaults = passwords(compose_config())
    assert all(v.startswith("change-me") for v in defaults.values()), defaults  # placeholders, documented
    chosen = passwords(
        compose_config(
            MLFLOW_DB_PASSWORD="m1", AIRFLOW_DB_PASSWORD="a2", POSTGRES_PASSWORD="p3", AIRFLOW_ADMIN_PASSWORD="x4"
        )
    )
    assert chosen == {"mlflow": "m1", "airflow": "a2", "postgres": "p3", "admin": "x4"}

    init_dir = ROOT / "deploy" / "postgres-init"
    mounts = volume_mounts(compose_config()["services"]["postgres"])
    assert mounts["/docker-entrypoint-initdb.d"] == (str(init_dir), True)
    script = next(init_dir.glob("*.sh")).read_text()
    assert "CREATE DATABASE mlflow OWNER mlflow" in script and "CREATE DATABASE airflow OWNER airflow" in script


# --- the feed's nginx configuration, for real ---------------------------------------------------


@pytest.fixture
def feed_server(tmp_path):
    """deploy/nginx-feed.conf served by a real nginx on loopback, over a small TUF-shaped feed.

    Only the two lines that are container paths change: the port and the served folder.
    """
    nginx = _require_tool("nginx")
    feed = tmp_path / "feed"
    port = free_port()
    conf = NGINX_CONF.read_text()
    for line in ("listen 8765;", "root /usr/share/nginx/feed;"):
        assert line in conf, f"{NGINX_CONF.name} no longer has '{line}': update this test with it"
    conf = conf.replace("listen 8765;", f"listen 127.0.0.1:{port};").replace(
        "root /usr/share/nginx/feed;", f"root {feed};"
    )
    (tmp_path / "feed.conf").write_text(conf)
    mime = (
        "include /etc/nginx/mime.types;"
        if Path("/etc/nginx/mime.types").exists()
        else "types { application/json json; }"
    )
    temp = tmp_path / "nginx-tmp"
    temp.mkdir()
    # nginx:alpine's own nginx.conf around ours: mime types and an http block that includes it
    (tmp_path / "nginx.conf").write_text(f"""
daemon off;
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{
    {mime}
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
    include {tmp_path}/feed.conf;
}}
""")
    # a feed as feed.repository lays it out (docs/model-package.md)
    (feed / "metadata").mkdir(parents=True)
    for name, body in {
        "timestamp.json": '{"v": 7}',
        "root.json": '{"v": 1}',
        "1.root.json": '{"v": 1}',
        "3.snapshot.json": '{"v": 3}',
        "2.targets.json": '{"v": 2}',
    }.items():
        (feed / "metadata" / name).write_text(body)
    model = b"\x08\x07onnx-bytes" * 100
    sha = hashlib.sha256(model).hexdigest()
    (feed / "targets" / "models" / "3").mkdir(parents=True)
    (feed / "targets" / "models" / "3" / f"{sha}.model.onnx").write_bytes(model)
    (feed / "targets" / f"{hashlib.sha256(b'{}').hexdigest()}.champion.json").write_text("{}")
    (feed / "stray.txt").write_text("not part of the repository")

    r = subprocess.run(
        [nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, f"nginx rejects {NGINX_CONF.name}:\n{r.stderr}"
    proc = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"nginx did not start: {proc.stderr.read().decode()}")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", feed, f"models/3/{sha}.model.onnx", model
    proc.terminate()  # SIGTERM: nginx's fast shutdown
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def fetch(url: str, method: str = "GET", headers: dict | None = None, data: bytes | None = None):
    """(status, headers, body) without raising on HTTP errors."""
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


IMMUTABLE = "public, max-age=31536000, immutable"


def test_feed_entry_points_are_revalidated_and_the_rest_cached_for_a_year(feed_server):
    base, feed, target, model = feed_server

    status, headers, body = fetch(f"{base}/metadata/timestamp.json")
    assert (status, body) == (200, b'{"v": 7}')
    assert headers["Cache-Control"] == "no-cache"
    assert headers["Content-Type"].startswith("application/json")
    # a poll with nothing new costs a 304, no body
    status, _, body = fetch(f"{base}/metadata/timestamp.json", headers={"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
    assert fetch(f"{base}/metadata/root.json")[1]["Cache-Control"] == "no-cache"

    for path in ("metadata/1.root.json", "metadata/3.snapshot.json", "metadata/2.targets.json"):
        status, headers, _ = fetch(f"{base}/{path}")
        assert (status, headers["Cache-Control"]) == (200, IMMUTABLE), path
    status, headers, body = fetch(f"{base}/targets/{target}")
    assert (status, body, headers["Cache-Control"]) == (200, model, IMMUTABLE)

    # the next root version does not exist yet: a cache must not remember that answer for a year
    status, headers, _ = fetch(f"{base}/metadata/2.root.json")
    assert status == 404 and "immutable" not in headers.get("Cache-Control", "")


def test_feed_serves_only_repository_files_and_only_for_reading(feed_server):
    base, feed, target, _ = feed_server
    for path in ("", "metadata/", "targets/", "targets/models/3/", "stray.txt", "targets/models/3/model.onnx"):
        status, _, body = fetch(f"{base}/{path}")
        assert status == 404, path
        assert b"model.onnx" not in body and b"stray" not in body  # no directory listing
    before = (feed / "metadata" / "timestamp.json").read_bytes()
    for method in ("PUT", "POST", "DELETE"):
        assert fetch(f"{base}/metadata/timestamp.json", method=method, data=b"{}")[0] == 405, method
    assert (feed / "metadata" / "timestamp.json").read_bytes() == before
    assert fetch(f"{base}/targets/{target}", method="HEAD")[0] == 200
