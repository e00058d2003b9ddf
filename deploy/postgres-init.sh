#!/bin/sh
# Runs once, when the Postgres volume is first created (docker-entrypoint-initdb.d):
# the two roles Dadly needs (see README "Postgres roles") and its database.
# The runtime role joins dadly_runtime, whose grants the first migration sets.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE dadly_runtime NOLOGIN;
CREATE ROLE dadly_owner LOGIN PASSWORD '${DADLY_OWNER_PASSWORD}';
CREATE ROLE dadly_app LOGIN PASSWORD '${DADLY_APP_PASSWORD}' IN ROLE dadly_runtime;
CREATE DATABASE dadly OWNER dadly_owner;
SQL
