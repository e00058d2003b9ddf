//! Backends for contract tests: a fresh SQLite file, a fresh Postgres database
//! owned by a role that cannot bypass row-level security, and the external
//! services CI starts. Missing services skip with a message on a laptop and
//! fail loudly under `CI=true`.
#![allow(dead_code)]

use std::sync::Arc;

use dadly_agent::store::{PostgresStore, SqliteStore, Store};
use sqlx::Connection;
use uuid::Uuid;

pub const APP_ROLE: &str = "dadly_app";

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Says a service is missing: a panic in CI, a visible skip elsewhere.
pub fn missing(service: &str, why: &str) {
    if in_ci() {
        panic!("{service} is required in CI but unavailable: {why}");
    }
    eprintln!("SKIPPED: {service} unavailable ({why}); set it up as .ci/run does to run these tests");
}

pub async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (Arc::new(SqliteStore::connect(&url).await.unwrap()), dir)
}

fn admin_url() -> String {
    std::env::var("DADLY_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database owned by the non-superuser app role; returns its URL.
pub async fn postgres_url() -> Option<String> {
    let admin = admin_url();
    let mut conn = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            missing("Postgres", &format!("{admin}: {e}"));
            return None;
        }
    };
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_roles WHERE rolname = $1").bind(APP_ROLE).fetch_optional(&mut conn).await.unwrap();
    if exists.is_none() {
        // Two test binaries may race to create it.
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD 'dadly'"))).execute(&mut conn).await;
    }
    let db = format!("dadly_test_{}", Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db} OWNER {APP_ROLE}"))).execute(&mut conn).await.unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
    let host = base.rsplit_once('@').map(|(_, h)| h.to_string()).unwrap_or_else(|| base.trim_start_matches("postgres://").to_string());
    Some(format!("postgres://{APP_ROLE}:dadly@{host}/{db}"))
}

pub async fn postgres() -> Option<Arc<PostgresStore>> {
    let url = postgres_url().await?;
    Some(Arc::new(PostgresStore::connect(&url, 5).await.unwrap()))
}
