//! Backends for contract tests: a fresh SQLite file, a fresh Postgres database
//! owned by a role that cannot bypass row-level security, and the S3 server
//! CI starts (see `dadly_testkit::services`).
#![allow(dead_code)]

use std::sync::Arc;

use dadly_agent::store::{PostgresStore, SqliteStore, Store};
use dadly_testkit::services;

pub async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (Arc::new(SqliteStore::connect(&url).await.unwrap()), dir)
}

pub async fn postgres_url() -> Option<String> {
    services::postgres_database().await
}

pub async fn postgres() -> Option<Arc<PostgresStore>> {
    let url = postgres_url().await?;
    Some(Arc::new(PostgresStore::connect(&url, 5).await.unwrap()))
}

pub fn s3_settings() -> Option<dadly_agent::blob::S3Settings> {
    let s3 = services::s3()?;
    Some(dadly_agent::blob::S3Settings {
        endpoint: Some(s3.endpoint),
        bucket: s3.bucket,
        region: "us-east-1".into(),
        path_style: true,
        access_key: s3.access_key,
        secret_key: s3.secret_key,
    })
}
