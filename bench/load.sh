#!/usr/bin/env bash
# Whole-process load: the release server in its own process, wrk (Debian's
# `wrk`) recording notes over POST /v1/chat at 50 and 200 connections for
# DURATION seconds each, on the embedded defaults (offline models, SQLite)
# or with BENCH_POSTGRES=1 on a fresh local Postgres database (owner and
# runtime roles, as in production). Prints one table row per run, then the
# server's RSS and the data directory's size.
# With RATE=N the connections are paced (bench/paced.lua) to offer about N
# requests/s in all, instead of each sending again as soon as it is answered.
#   cargo build --release && bash bench/load.sh            # SQLite
#   BENCH_POSTGRES=1 bash bench/load.sh                    # Postgres
#   RATE=2100 CONNECTIONS=200 bash bench/load.sh           # 200 connections at about 2,000/s
set -eu
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/dadly}
DURATION=${DURATION:-20}
PORT=18081
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/pg_db.sh"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
[ -x "$BIN" ] || { echo "$BIN is missing: cargo build --release" >&2; exit 1; }

run() { # connections
  local dir; dir=$(mktemp -d)
  local env=(DADLY_DATA_DIR="$dir" DADLY_BIND=127.0.0.1:$PORT DADLY_RATE_LIMIT_PER_MINUTE=0 JWT_SECRET=load-secret-load-secret)
  local db=""
  if [ "${BENCH_POSTGRES:-0}" = 1 ]; then
    db=dadly_load_$$
    fresh_pg_database "$db"
    env+=("${PG_ENV[@]}")
  fi
  env -i PATH="$PATH" HOME="$HOME" "${env[@]}" "$BIN" >"$dir/log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 1000); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/readyz)" = 200 ] && break
    sleep 0.01
  done
  local token
  token=$(env -i PATH="$PATH" HOME="$HOME" "${env[@]}" "$BIN" family create Load --parent Parent --child Minji --child Junho --child Sora --json | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  local script=record.lua
  [ -n "${RATE:-}" ] && script=paced.lua && export PACE_MS=$((1000 * $1 / RATE))
  TOKEN=$token wrk -t2 -c"$1" -d"${DURATION}s" --timeout 10s -s "$HERE/$script" http://127.0.0.1:$PORT | grep '^|' | sed "s/^/| $1 /"
  # Wait for the queue to drain, then read what the run left behind.
  for _ in $(seq 1 600); do
    curl -s -H "Authorization: Bearer $token" http://127.0.0.1:$PORT/v1/status | grep -q '"queued":0,"running":0' && break
    sleep 0.1
  done
  echo "  after: RSS $(awk '/VmRSS/ {print $2}' /proc/$pid/status) KiB, data dir $(du -sh "$dir" | cut -f1)"
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$dir"
  [ -n "$db" ] && psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  return 0
}
echo "| connections | throughput | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | socket errors | non-200 |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in ${CONNECTIONS:-50 200}; do run "$c"; done
