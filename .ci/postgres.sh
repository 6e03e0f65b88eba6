#!/usr/bin/env bash
# Install (if needed) and start a local PostgreSQL server with the role and
# database the test suite uses (user/password/database: mcfields).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
    pg_createcluster "$version" main >/dev/null
fi
pg_ctlcluster "$version" main start 2>/dev/null || true
for _ in $(seq 1 30); do
    if su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1; then break; fi
    sleep 1
done
su postgres -c "psql -qAtc \"select 1 from pg_roles where rolname='mcfields'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"CREATE ROLE mcfields LOGIN SUPERUSER PASSWORD 'mcfields'\""
su postgres -c "psql -qAtc \"select 1 from pg_database where datname='mcfields'\"" | grep -q 1 \
    || su postgres -c "createdb -O mcfields mcfields"
echo "PostgreSQL $version running on localhost:5432 (role/db mcfields)"
