//! Real services for tests (Postgres, an S3-compatible server): found from the
//! environment `.ci/run` sets up. Missing ones skip with a visible message on
//! a laptop and fail loudly under `CI=true`.

use sqlx::Connection;

/// The role the service connects as in tests: a member of `dadly_runtime`
/// that owns nothing and can neither bypass row-level security nor act as
/// superuser.
pub const APP_ROLE: &str = "dadly_app";
/// The role that owns each test database and runs its migrations (neither
/// superuser nor BYPASSRLS either: FORCEd policies bind it too).
pub const OWNER_ROLE: &str = "dadly_owner";

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports a missing service: a panic in CI, a visible skip elsewhere.
pub fn missing(service: &str, why: &str) {
    if in_ci() {
        panic!("{service} is required in CI but unavailable: {why}");
    }
    // Written past the test harness's capture, so a skip is seen even when the test passes.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {service} unavailable ({why}); start it as .ci/run does to run these tests");
}

fn admin_url() -> String {
    std::env::var("DADLY_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database, migrated by its owner role; returns the runtime role's URL.
pub async fn postgres_database() -> Option<String> {
    postgres_database_with_owner().await.map(|(runtime, _)| runtime)
}

/// A fresh database as `postgres_database`, and its owner's URL too.
pub async fn postgres_database_with_owner() -> Option<(String, String)> {
    let (runtime, owner) = postgres_empty_database().await?;
    // The owner applies the schema, as `dadly migrate` does in production.
    let mut as_owner = sqlx::PgConnection::connect(&owner).await.expect("connect as the owner role");
    sqlx::migrate!("../migrations/postgres").run(&mut as_owner).await.expect("migrations apply as the owner role");
    Some((runtime, owner))
}

/// A fresh database owned by the owner role, without the schema: the
/// runtime role's URL and the owner's.
pub async fn postgres_empty_database() -> Option<(String, String)> {
    let admin = admin_url();
    let mut conn = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            missing("Postgres", &format!("{admin}: {e}"));
            return None;
        }
    };
    // Past this point Postgres answered: any failure is a real one, never a skip.
    // Several test binaries may race to create the roles; losing the race is fine.
    for (role, create) in [
        ("dadly_runtime", "CREATE ROLE dadly_runtime NOLOGIN".to_string()),
        (APP_ROLE, format!("CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD 'dadly'")),
        (OWNER_ROLE, format!("CREATE ROLE {OWNER_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD 'dadly'")),
    ] {
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_roles WHERE rolname = $1")
            .bind(role)
            .fetch_optional(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("Postgres at {admin} answered but could not be queried: {e}"));
        if exists.is_none() {
            let _ = sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut conn).await;
        }
    }
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("GRANT dadly_runtime TO {APP_ROLE}"))).execute(&mut conn).await;
    let db = format!("dadly_test_{:016x}{:08x}", rand_u64(), std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db} OWNER {OWNER_ROLE}"))).execute(&mut conn).await.expect("create test database");
    let (base, _) = admin.rsplit_once('/').expect("admin URL has a database");
    let host = base.rsplit_once('@').map(|(_, h)| h).unwrap_or_else(|| base.trim_start_matches("postgres://"));
    let owner = format!("postgres://{OWNER_ROLE}:dadly@{host}/{db}");
    Some((format!("postgres://{APP_ROLE}:dadly@{host}/{db}"), owner))
}

/// Whether a TCP connection to the URL's host and port opens within two seconds.
fn reachable(url: &str) -> Result<(), String> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host_port = rest.split('/').next().unwrap_or(rest);
    let host_port = if host_port.contains(':') { host_port.to_string() } else { format!("{host_port}:80") };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&host_port).map_err(|e| e.to_string())?.next().ok_or("no address")?;
    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).map(|_| ()).map_err(|e| e.to_string())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

/// The S3-compatible server's settings, from `DADLY_TEST_S3_*`.
pub struct S3Env {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

pub fn s3() -> Option<S3Env> {
    let Ok(endpoint) = std::env::var("DADLY_TEST_S3_ENDPOINT") else {
        missing("S3 server", "DADLY_TEST_S3_ENDPOINT is not set");
        return None;
    };
    // Set but unreachable is as missing as unset: say so (and fail in CI).
    if let Err(e) = reachable(&endpoint) {
        missing("S3 server", &format!("{endpoint} is set but unreachable: {e}"));
        return None;
    }
    Some(S3Env {
        endpoint,
        bucket: std::env::var("DADLY_TEST_S3_BUCKET").unwrap_or_else(|_| "dadly-test".into()),
        access_key: std::env::var("DADLY_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "dadly-access".into()),
        secret_key: std::env::var("DADLY_TEST_S3_SECRET_KEY").unwrap_or_else(|_| "dadly-secret-key-123".into()),
    })
}
