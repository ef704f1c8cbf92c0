#!/usr/bin/env bash
# First start of the `postgres` service (docker-compose.yml): one database and one login role each
# for MLflow and Airflow, so neither can read or break the other's tables.
#
# The postgres image runs the files in /docker-entrypoint-initdb.d only when its data volume is
# empty, so changing a password later is done in SQL (docs/deploy.md, "Configure"), not here.
# Passwords come from the environment (MLFLOW_DB_PASSWORD, AIRFLOW_DB_PASSWORD); the defaults
# in docker-compose.yml are placeholders to change.
set -euo pipefail

: "${MLFLOW_DB_PASSWORD:?MLFLOW_DB_PASSWORD must be set}"
: "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD must be set}"

# Passwords go in as psql variables and are quoted by psql (:'name'), so any character is safe.
# psql only interpolates variables in SQL it reads from a script or stdin, hence the here-document.
psql -v ON_ERROR_STOP=1 --no-psqlrc \
     --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
     -v mlflow_password="$MLFLOW_DB_PASSWORD" -v airflow_password="$AIRFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER mlflow;
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
-- Nobody else connects to these two (PUBLIC may connect to a new database by default).
REVOKE CONNECT ON DATABASE mlflow FROM PUBLIC;
REVOKE CONNECT ON DATABASE airflow FROM PUBLIC;
SQL
