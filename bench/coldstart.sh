#!/usr/bin/env bash
# Cold start to /readyz 200, three runs each: embedded defaults (fresh data
# dir), Postgres (a fresh database migrated at start-up by the owner role,
# then the same database already migrated). Uses the release binary and the
# local PostgreSQL (DADLY_TEST_POSTGRES_URL, trust auth as in CI).
#   cargo build --release && bash bench/coldstart.sh
set -u
BIN=${CARGO_TARGET_DIR:-target}/release/dadly
ADMIN=${DADLY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG=${ADMIN%/*}
PORT=18080
measure() { # label, then env assignments
  local label=$1; shift
  local dir; dir=$(mktemp -d)
  local start; start=$(date +%s%N)
  env -i PATH="$PATH" HOME="$HOME" DADLY_DATA_DIR="$dir" DADLY_BIND=127.0.0.1:$PORT "$@" "$BIN" >"$dir/log" 2>&1 &
  local pid=$! code=000
  for _ in $(seq 1 2000); do
    code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/readyz)
    [ "$code" = 200 ] && break
    sleep 0.005
  done
  local end; end=$(date +%s%N)
  echo "$label: $(( (end - start) / 1000000 )) ms to /readyz $code, RSS $(awk '/VmRSS/ {print $2}' /proc/$pid/status) KiB"
  kill $pid; wait $pid 2>/dev/null
  rm -rf "$dir"
}
psql "$ADMIN" -qAtc "DO \$\$BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldstart_owner') THEN CREATE ROLE coldstart_owner LOGIN CREATEROLE; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldstart_app') THEN CREATE ROLE coldstart_app LOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dadly_runtime') THEN CREATE ROLE dadly_runtime NOLOGIN; END IF;
END\$\$; GRANT dadly_runtime TO coldstart_app; GRANT dadly_runtime TO coldstart_owner WITH ADMIN OPTION;" >/dev/null
for i in 1 2 3; do measure "embedded, fresh data dir #$i"; done
for i in 1 2 3; do
  db=dadly_coldstart_$i
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null
  psql "$ADMIN" -qc "CREATE DATABASE $db OWNER coldstart_owner"
  measure "postgres, fresh database, migrated at start-up #$i" "DATABASE_URL=$PG/$db?user=coldstart_app" "DADLY_DATABASE_OWNER_URL=$PG/$db?user=coldstart_owner"
  measure "postgres, migrated database #$i" "DATABASE_URL=$PG/$db?user=coldstart_app"
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
done
