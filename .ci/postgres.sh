#!/usr/bin/env bash
# Install (if needed) and start a local PostgreSQL server for the platform tests, then print
# the SQLAlchemy URL to use. Debian packages; runs as root, the server as user postgres.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^${version} main$"; then
  pg_createcluster "$version" main >&2
fi
if ! pg_lsclusters -h | grep -q "^${version} main .* online"; then
  pg_ctlcluster "$version" main start >&2
fi
for _ in $(seq 1 30); do
  su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'cedx-ci'\"" >&2
# The suite runs many platforms in one process, each store with its request-path pools (PostgreSQL:
# a fast and a durable one) besides SQLAlchemy's: more than the default 100 connections.
if [ "$(su postgres -c "psql -qAtc 'show max_connections'")" -lt 300 ]; then
  su postgres -c "psql -qc 'ALTER SYSTEM SET max_connections = 300'" >&2
  pg_ctlcluster "$version" main restart >&2
  for _ in $(seq 1 30); do
    su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
    sleep 1
  done
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
echo "postgresql+psycopg://postgres:cedx-ci@127.0.0.1:${port}/postgres"
