#!/usr/bin/env bash
# Start the machine's PostgreSQL (Debian's postgresql package) on 127.0.0.1 and make sure the test
# role and database exist; print the SQLAlchemy URL the deploy tests read on stdout, nothing else.
#
#   export PNEUMO_TEST_POSTGRES_URL="$(deploy/ci/start-postgres.sh)"
#   .venv/bin/python -m pytest -q tests/deploy
#
# Safe to run again: a running cluster is left as it is, the role and database are created once.
# Run as root (CI) or as a user who may `sudo -u postgres`. Needs: apt-get install postgresql.
# The role may create databases because each test run works in a fresh one that it drops after,
# so reruns never see an earlier run's rows. The password is for a loopback-only test server.
set -euo pipefail

ROLE="${PNEUMO_TEST_PG_ROLE:-pneumo_test}"
PASSWORD="${PNEUMO_TEST_PG_PASSWORD:-pneumo_test}"
DB="${PNEUMO_TEST_PG_DB:-pneumo_test}"

log() { echo "start-postgres: $*" >&2; }
die() { log "$*"; exit 1; }

command -v pg_lsclusters >/dev/null || die "PostgreSQL is not installed: apt-get install -y postgresql"
# They go into a URL unescaped: keep them to characters that need no percent-encoding.
for value in "$ROLE" "$PASSWORD" "$DB"; do
    [[ "$value" =~ ^[A-Za-z0-9_]+$ ]] || die "'$value': role, password and database may use only A-Z a-z 0-9 _"
done

# The server refuses to run as root, and peer authentication maps the postgres OS user to the
# postgres superuser: everything administrative runs as that user.
if [[ $(id -u) -eq 0 ]]; then
    as_postgres() { (cd / && runuser -u postgres -- "$@"); }
else
    as_postgres() { (cd / && sudo -u postgres -- "$@"); }
fi

# Columns of `pg_lsclusters -h`: version cluster port status owner datadir logfile.
read -r VERSION CLUSTER PORT STATUS _ < <(pg_lsclusters -h | head -n 1) || true
if [[ -z "${VERSION:-}" ]]; then
    # The package normally creates "main"; a machine where it was dropped gets it back.
    VERSION=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    log "no cluster: creating ${VERSION}/main"
    pg_createcluster "$VERSION" main >&2
    read -r VERSION CLUSTER PORT STATUS _ < <(pg_lsclusters -h | head -n 1)
fi

if [[ "$STATUS" == online* ]]; then
    log "cluster ${VERSION}/${CLUSTER} already running on port ${PORT}"
else
    log "starting cluster ${VERSION}/${CLUSTER} on 127.0.0.1:${PORT}"
    # Loopback only, whatever postgresql.conf says; the option lasts until the server stops.
    pg_ctlcluster -o "-c listen_addresses=127.0.0.1" "$VERSION" "$CLUSTER" start >&2
fi
pg_isready -q -h 127.0.0.1 -p "$PORT" -t 60 || die "PostgreSQL did not accept connections on 127.0.0.1:${PORT}"

# Idempotent role and database. Values go in as psql variables, quoted by psql itself.
as_postgres psql -q -v ON_ERROR_STOP=1 --no-psqlrc -p "$PORT" -d postgres \
    -v role="$ROLE" -v password="$PASSWORD" -v db="$DB" >&2 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
-- a rerun with another password must still end up with a working URL
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL

URL="postgresql+psycopg2://${ROLE}:${PASSWORD}@127.0.0.1:${PORT}/${DB}"
# Prove the URL works as the tests will use it: password authentication over TCP.
PGPASSWORD="$PASSWORD" psql -qtA --no-psqlrc -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d "$DB" \
    -c "SELECT 1" >/dev/null || die "cannot log in as ${ROLE} on 127.0.0.1:${PORT}/${DB}"
log "ready: ${ROLE}@127.0.0.1:${PORT}/${DB}"
echo "$URL"
