#!/usr/bin/env bash
# A Telegram text note's write on Postgres, at the database: the statements
# the store sent before migration 0021 (BEGIN, the setting, the claim of the
# update key, the entry function, COMMIT) against the one statement it sends
# now (dadly_insert_entry_claimed). pgbench, 8 clients, 10 s each, three
# alternating pairs, as the runtime role on a fresh database migrated by the
# release binary. Uses the local PostgreSQL (DADLY_TEST_POSTGRES_URL).
#   cargo build --release && bash bench/telegram_write.sh
set -eu
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/dadly}
. "$(cd "$(dirname "$0")" && pwd)/pg_db.sh"
DB=dadly_telegram_write
dir=$(mktemp -d)
trap 'rm -rf "$dir"; psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
fresh_pg_database "$DB"
ids=$(env -i PATH="$PATH" HOME="$HOME" DADLY_DATA_DIR="$dir" JWT_SECRET=telegram-write-secret "${PG_ENV[@]}" \
  "$BIN" family create Bench --parent Parent --child Minji --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["family_id"], d["user_id"])')
read -r fid uid <<<"$ids"
args="'$fid', gen_random_uuid(), '$uid', 'telegram', 'Minji laughed at the puppet show', now(), now(), 'ready', NULL, NULL, '{}', 5, ARRAY[gen_random_uuid(), gen_random_uuid()], ARRAY['embed','enrich'], ARRAY[gen_random_uuid()::text, gen_random_uuid()::text]"
cat >"$dir/before.sql" <<SQL
BEGIN;
SELECT set_config('app.family_id', '$fid', true);
INSERT INTO processed_updates (update_key, family_id, created_at) VALUES (gen_random_uuid()::text, '$fid', now()) ON CONFLICT DO NOTHING;
SELECT * FROM dadly_insert_entry($args);
COMMIT;
SQL
echo "SELECT * FROM dadly_insert_entry_claimed($args, gen_random_uuid()::text);" >"$dir/after.sql"
for i in 1 2 3; do
  for s in before after; do
    echo "$s: $(pgbench "$PG/$DB?user=load_app" -n -M simple -c 8 -j 2 -T 10 -f "$dir/$s.sql" 2>&1 | grep -E '^(tps|latency average)' | tr '\n' ' ')"
  done
done
