# Sourced by the bench scripts: a fresh local Postgres database as production
# runs it, owned by the migrating role `load_owner` and used by the runtime
# role `load_app` (a member of `dadly_runtime`, under row-level security).
#   fresh_pg_database NAME    drops and creates NAME; sets PG_ENV to the
#                             DATABASE_URL / DADLY_DATABASE_OWNER_URL pair
ADMIN=${DADLY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG=${ADMIN%/*}
fresh_pg_database() {
  psql "$ADMIN" -qAtc "SET client_min_messages = warning; DO \$\$BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'load_owner') THEN CREATE ROLE load_owner LOGIN CREATEROLE; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'load_app') THEN CREATE ROLE load_app LOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dadly_runtime') THEN CREATE ROLE dadly_runtime NOLOGIN; END IF;
  END\$\$; GRANT dadly_runtime TO load_app; GRANT dadly_runtime TO load_owner WITH ADMIN OPTION;" >/dev/null
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" 2>/dev/null
  psql "$ADMIN" -qc "CREATE DATABASE $1 OWNER load_owner"
  PG_ENV=(DATABASE_URL="$PG/$1?user=load_app" DADLY_DATABASE_OWNER_URL="$PG/$1?user=load_owner")
}
