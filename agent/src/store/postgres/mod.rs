//! `PostgresStore`: the production `Store`. Every family-scoped call runs in a
//! transaction that first sets `app.family_id`, so row-level security confines
//! it to that family even if a query forgot its `WHERE`. The service logs in
//! as a runtime role that owns nothing; cross-family work (claiming jobs with
//! `FOR UPDATE SKIP LOCKED`, counting the queue, housekeeping) goes through
//! `SECURITY DEFINER` functions the owner defined, which return only ids and
//! counters (see `migrations/postgres/0005_runtime_role.sql`).

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use super::sqlite::MAX_JOB_ATTEMPTS;
use super::*;

pub struct PostgresStore {
    pool: PgPool,
}

type Tx = Transaction<'static, Postgres>;

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(ref db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_string()),
        sqlx::Error::Database(ref db) if db.is_foreign_key_violation() => StoreError::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            StoreError::Unavailable(Box::new(e))
        }
        e => backend(e),
    }
}

impl PostgresStore {
    /// Connects as the service's runtime role (URL may carry `sslmode`, as
    /// Supabase's do). The schema must be current — `dadly migrate` as the
    /// owner makes it so — and the role must not own the tables: an owner
    /// could switch row-level security off.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let store = Self { pool: pool(url, max_connections).await? };
        store.check_schema().await?;
        let owns: bool = sqlx::query_scalar("SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = 'jobs'::regclass")
            .fetch_one(&store.pool)
            .await
            .map_err(map_err)?;
        if owns {
            let role: String = sqlx::query_scalar("SELECT current_user::text").fetch_one(&store.pool).await.map_err(map_err)?;
            return Err(StoreError::Backend(format!(
                "DATABASE_URL logs in as `{role}`, which owns Dadly's tables (or is a superuser): it could switch row-level security off. \
                 Log in as a runtime role that is a member of `dadly_runtime` and owns nothing (README: Postgres roles)"
            ).into()));
        }
        Ok(store)
    }

    /// Applies the migrations as the owner of the schema (`dadly migrate`).
    pub async fn migrate_as_owner(url: &str) -> StoreResult<()> {
        let pool = pool(url, 1).await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await.map_err(backend)?;
        pool.close().await;
        Ok(())
    }

    /// The schema is at the version this build expects (the runtime role cannot migrate).
    async fn check_schema(&self) -> StoreResult<()> {
        let expected = sqlx::migrate!("../migrations/postgres").iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot read the schema version ({e}): run `dadly migrate` as the owner role first").into()))?;
        match applied {
            Some(v) if v >= expected => Ok(()),
            v => Err(StoreError::Backend(format!(
                "the database schema is at version {}, this build needs {expected}: run `dadly migrate` as the owner role (DADLY_DATABASE_OWNER_URL)",
                v.unwrap_or(0)
            ).into())),
        }
    }

    /// A transaction confined to one family by row-level security.
    async fn family_tx(&self, family_id: FamilyId) -> StoreResult<Tx> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT set_config('app.family_id', $1, true)")
            .bind(family_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        Ok(tx)
    }


    /// Direct access for tests that check what row-level security allows.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

async fn pool(url: &str, max_connections: u32) -> StoreResult<PgPool> {
    let options = PgConnectOptions::from_str(url).map_err(backend)?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(map_err)
}

fn member_from_row(row: &PgRow) -> StoreResult<Member> {
    Ok(Member {
        id: row.try_get("id").map_err(map_err)?,
        family_id: row.try_get("family_id").map_err(map_err)?,
        name: row.try_get("name").map_err(map_err)?,
        aliases: row.try_get("aliases").map_err(map_err)?,
        birth_date: row.try_get("birth_date").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        age_notice_at: row.try_get("age_notice_at").map_err(map_err)?,
    })
}

const ENTRY_COLUMNS: &str = "e.id, e.family_id, e.author_id, e.source, e.raw_text, e.occurred_at, e.created_at, e.updated_at, \
     e.version, e.status, e.reply_to, ARRAY(SELECT m.member_id FROM entry_members m WHERE m.entry_id = e.id ORDER BY m.member_id) AS member_ids";

fn entry_from_row(row: &PgRow) -> StoreResult<Entry> {
    let source: String = row.try_get("source").map_err(map_err)?;
    Ok(Entry {
        id: row.try_get("id").map_err(map_err)?,
        family_id: row.try_get("family_id").map_err(map_err)?,
        author_id: row.try_get("author_id").map_err(map_err)?,
        source: Source::parse(&source).unwrap_or(Source::Web),
        raw_text: row.try_get("raw_text").map_err(map_err)?,
        member_ids: row.try_get("member_ids").map_err(map_err)?,
        occurred_at: row.try_get("occurred_at").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        updated_at: row.try_get("updated_at").map_err(map_err)?,
        version: row.try_get("version").map_err(map_err)?,
        status: EntryStatus::parse(&row.try_get::<String, _>("status").map_err(map_err)?),
        reply_to: row.try_get("reply_to").map_err(map_err)?,
    })
}

async fn enqueue_keyed(tx: &mut Tx, family_id: FamilyId, kind: JobKind, entry_id: EntryId, version: i64, key: &str) -> StoreResult<()> {
    let now = Utc::now();
    sqlx::query(
        "INSERT INTO jobs (id, family_id, kind, entry_id, entry_version, dedupe_key, max_attempts, run_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(family_id)
    .bind(kind.as_str())
    .bind(entry_id)
    .bind(version)
    .bind(key)
    .bind(MAX_JOB_ATTEMPTS)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(map_err)
    .map(|_| ())
}

async fn claim(tx: &mut Tx, family_id: FamilyId, key: &str) -> StoreResult<bool> {
    let done = sqlx::query("INSERT INTO processed_updates (update_key, family_id, created_at) VALUES ($1, $2, now()) ON CONFLICT DO NOTHING")
        .bind(key)
        .bind(family_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(done.rows_affected() == 1)
}

async fn insert_pending_media(tx: &mut Tx, family_id: FamilyId, entry_id: EntryId, m: &PendingMedia) -> StoreResult<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO media (id, family_id, entry_id, blob_key, content_type, size_bytes, sha256, created_at, source_ref, kind) \
         VALUES ($1, $2, $3, '', $4, 0, '', now(), $5, $6)",
    )
    .bind(id)
    .bind(family_id)
    .bind(entry_id)
    .bind(&m.content_type)
    .bind(&m.source_ref)
    .bind(&m.kind)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(id)
}

/// An entry version's jobs, in one statement.
async fn enqueue(tx: &mut Tx, family_id: FamilyId, entry_id: EntryId, version: i64, kinds: &[JobKind]) -> StoreResult<()> {
    if kinds.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = kinds.iter().map(|_| Uuid::now_v7()).collect();
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let keys: Vec<String> = kinds.iter().map(|kind| NewJob { kind: *kind, entry_id, entry_version: version }.dedupe_key()).collect();
    sqlx::query(
        "INSERT INTO jobs (id, family_id, kind, entry_id, entry_version, dedupe_key, max_attempts, run_at, created_at, updated_at) \
         SELECT k.id, $1, k.kind, $2, $3, k.key, $4, $5, $5, $5 FROM unnest($6::uuid[], $7::text[], $8::text[]) AS k(id, kind, key) \
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(family_id)
    .bind(entry_id)
    .bind(version)
    .bind(MAX_JOB_ATTEMPTS)
    .bind(Utc::now())
    .bind(&ids)
    .bind(&names)
    .bind(&keys)
    .execute(&mut **tx)
    .await
    .map_err(map_err)
    .map(|_| ())
}

async fn set_entry_members(tx: &mut Tx, family_id: FamilyId, entry_id: EntryId, member_ids: &[MemberId]) -> StoreResult<()> {
    sqlx::query("DELETE FROM entry_members WHERE entry_id = $1").bind(entry_id).execute(&mut **tx).await.map_err(map_err)?;
    let done = sqlx::query(
        "INSERT INTO entry_members (entry_id, member_id, family_id) \
         SELECT $1, id, family_id FROM members WHERE id = ANY($2) AND family_id = $3 ON CONFLICT DO NOTHING",
    )
    .bind(entry_id)
    .bind(member_ids)
    .bind(family_id)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    let mut unique = member_ids.to_vec();
    unique.sort();
    unique.dedup();
    if done.rows_affected() as usize != unique.len() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Now, at the precision the database keeps (microseconds), so what a create call
/// returns equals what a later read returns.
fn stored_now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

mod capsules;
mod channels;
mod entries;
#[doc(hidden)]
pub use entries::RECENT_CHAT_TURNS_SQL;
mod erasure;
mod families;
mod jobs;
mod parents;
mod prompts;
mod vectors;
