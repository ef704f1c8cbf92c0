# The hub image. docker-compose.yml runs the MLflow server and every Airflow component from it;
# the DAG's tasks (training, evaluation, export, feed publishing) run inside the scheduler
# container (LocalExecutor), so this image carries the whole hub.
#
#   docker build -t pneumoscan-hub .          (docker compose build does the same)
#
# torch: the pin in pyproject.toml (torch==2.14.1) is taken from PyPI, whose Linux x86_64 wheel
# is the CUDA build (~5 GB with its nvidia-* wheels): it also runs on the CPU, and uses a GPU
# when the container is given one. For a CPU-only image a few GB smaller, point pip at a CPU
# wheel index that carries 2.14.1 (its +cpu local version satisfies ==2.14.1):
#   docker build --build-arg PIP_EXTRA_INDEX_URL=<cpu wheel index> -t pneumoscan-hub .
FROM python:3.11-slim

ARG PIP_EXTRA_INDEX_URL=""
# PostgreSQL drivers, the versions tested in CI (tests/deploy/test_postgres.py):
# psycopg2 for MLflow and Airflow (postgresql+psycopg2:// URLs); asyncpg because Airflow 3 also
# opens its metadata database asynchronously and derives postgresql+asyncpg:// from that URL
# (without it every airflow command stops with "No module named 'asyncpg'").
ARG PSYCOPG2_VERSION=2.9.13
ARG ASYNCPG_VERSION=0.32.0

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # no git in the image: GitPython (pulled in by MLflow) would warn at every import
    GIT_PYTHON_REFRESH=quiet \
    # hub machines are often offline: telemetry calls only slow things down
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true \
    AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False \
    SCARF_ANALYTICS=false \
    DVC_NO_ANALYTICS=1 \
    PNEUMO_HOME=/data/pneumo \
    AIRFLOW_HOME=/opt/airflow

WORKDIR /opt/pneumoscan

# 1. Dependencies only, in their own layer: torch and friends are several GB, and editing the
#    hub's code should not download them again. The package folders are empty stand-ins here.
COPY pyproject.toml README.md ./
RUN mkdir hub contract feed desktop_app \
 && pip install ".[hub,orchestration]" "psycopg2-binary==${PSYCOPG2_VERSION}" "asyncpg==${ASYNCPG_VERSION}" \
 && pip uninstall -y pneumoscan

# 2. The project itself (no dependency changes: --no-deps).
COPY hub ./hub
COPY contract ./contract
COPY feed ./feed
COPY desktop_app ./desktop_app
RUN pip install --no-deps . && rm -rf build *.egg-info

# The DAGs are baked in as well, so the image works without the ./dags bind mount of compose.
COPY dags ./dags

# Airflow's own images use uid 50000; the same here keeps volume ownership familiar. The folders
# below are the mount points of compose's named volumes: Docker copies their ownership into a
# new, empty volume, so the services can write there without running as root.
RUN groupadd --gid 50000 pneumo \
 && useradd --uid 50000 --gid 50000 --create-home --shell /bin/bash pneumo \
 && mkdir -p /data/pneumo /data/mlartifacts /data/feed "$AIRFLOW_HOME" \
 && chown -R pneumo:pneumo /data "$AIRFLOW_HOME"
USER pneumo

# No ENTRYPOINT: each compose service names its command (mlflow server, airflow ..., pneumo-hub).
CMD ["pneumo-hub", "--help"]
