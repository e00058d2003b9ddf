//! `SqliteStore`: the embedded `Store`, one SQLite file through sqlx. Instants
//! are stored as Unix milliseconds, ids as UUID text, lists as JSON text.

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, SqlitePool};
use uuid::Uuid;

use super::*;

/// Jobs give up after this many attempts and stay in the table as `failed`.
pub const MAX_JOB_ATTEMPTS: i64 = 8;

pub struct SqliteStore {
    /// Reads: several connections at once (WAL readers never wait for the writer).
    pool: SqlitePool,
    /// Writes: SQLite takes one writer at a time, so this pool has one
    /// connection and writers queue for it (fairly, without sleeping in
    /// SQLite's busy handler as connections racing for the lock would).
    writer: SqlitePool,
    /// Writes waiting for the next group commit (see `entries::GroupCommit`).
    group_commit: entries::GroupCommit,
    /// Read connections for the reads every message makes (`direct::Readers`).
    readers: direct::Readers,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or
    /// `sqlite::memory:`) and applies migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Deleted rows are overwritten, so erased text does not linger in free pages.
            .pragma("secure_delete", "on")
            // The WAL is checkpointed every 1000 pages (the default) and cut back to
            // 64 MiB after each checkpoint, so it cannot outgrow the database.
            .pragma("wal_autocheckpoint", "1000")
            .pragma("journal_size_limit", "67108864")
            .busy_timeout(std::time::Duration::from_secs(10));
        let in_memory = url.contains(":memory:");
        let pool = SqlitePoolOptions::new()
            // An in-memory database lives in one connection.
            .max_connections(if in_memory { 1 } else { 8 })
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        let readers = direct::Readers::new((!in_memory).then(|| options.get_filename().to_path_buf()));
        let writer = if in_memory { pool.clone() } else { SqlitePoolOptions::new().max_connections(1).connect_with(options).await.map_err(unavailable)? };
        let store = Self { pool, writer, group_commit: entries::GroupCommit::default(), readers };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies any migration not yet applied.
    pub async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("../migrations/sqlite").run(&self.writer).await.map_err(backend)
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(ref db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_string()),
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => unavailable(e),
        e => backend(e),
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn uuid(row: &SqliteRow, col: &str) -> StoreResult<Uuid> {
    let s: String = row.try_get(col).map_err(map_err)?;
    Uuid::parse_str(&s).map_err(backend)
}

fn json_list<T: serde::de::DeserializeOwned>(row: &SqliteRow, col: &str) -> StoreResult<Vec<T>> {
    let s: String = row.try_get(col).map_err(map_err)?;
    serde_json::from_str(&s).map_err(backend)
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn member_from_row(row: &SqliteRow) -> StoreResult<Member> {
    let birth: Option<String> = row.try_get("birth_date").map_err(map_err)?;
    Ok(Member {
        id: uuid(row, "id")?,
        family_id: uuid(row, "family_id")?,
        name: row.try_get("name").map_err(map_err)?,
        aliases: json_list(row, "aliases")?,
        birth_date: birth.and_then(|b| NaiveDate::parse_from_str(&b, "%Y-%m-%d").ok()),
        created_at: at(row.try_get("created_at").map_err(map_err)?),
        age_notice_at: row.try_get::<Option<i64>, _>("age_notice_at").map_err(map_err)?.map(at),
    })
}

const ENTRY_COLUMNS: &str = "e.id, e.family_id, e.author_id, e.source, e.raw_text, e.occurred_at, e.created_at, \
     e.updated_at, e.version, e.status, e.reply_to, \
     (SELECT COALESCE(json_group_array(m.member_id), '[]') FROM entry_members m WHERE m.entry_id = e.id) AS member_ids";

fn entry_from_row(row: &SqliteRow) -> StoreResult<Entry> {
    let source: String = row.try_get("source").map_err(map_err)?;
    let mut member_ids: Vec<MemberId> = json_list(row, "member_ids")?;
    member_ids.sort();
    Ok(Entry {
        id: uuid(row, "id")?,
        family_id: uuid(row, "family_id")?,
        author_id: uuid(row, "author_id")?,
        source: Source::parse(&source).unwrap_or(Source::Web),
        raw_text: row.try_get("raw_text").map_err(map_err)?,
        member_ids,
        occurred_at: at(row.try_get("occurred_at").map_err(map_err)?),
        created_at: at(row.try_get("created_at").map_err(map_err)?),
        updated_at: at(row.try_get("updated_at").map_err(map_err)?),
        version: row.try_get("version").map_err(map_err)?,
        status: EntryStatus::parse(&row.try_get::<String, _>("status").map_err(map_err)?),
        reply_to: row.try_get("reply_to").map_err(map_err)?,
    })
}

impl SqliteStore {
    /// A transaction that holds SQLite's write lock from its first statement.
    /// A deferred one that reads first and writes later fails with
    /// `SQLITE_BUSY_SNAPSHOT` ("database is locked", which no busy timeout
    /// waits out) whenever another connection wrote in between.
    async fn write_tx(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        begin_write(&self.writer).await
    }
}

/// `SqliteStore::write_tx` on a pool.
async fn begin_write(pool: &SqlitePool) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
    pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)
}

fn vector_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn vector_from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

// The statements of a new entry's write, shared by the sqlx path and the
// group commit's (`direct`): SQLite binds `?N` to the N-th value in both.

/// Claims an update key: `?1` key, `?2` family, `?3` now; one row when new.
const CLAIM_SQL: &str = "INSERT INTO processed_updates (update_key, family_id, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";

/// An entry's row, written only when its author (`?2`) is of the family (`?7`).
const INSERT_ENTRY_SQL: &str = "INSERT INTO entries (id, family_id, author_id, source, raw_text, occurred_at, created_at, updated_at, version, status, external_key, reply_to) \
     SELECT ?1, family_id, id, ?3, ?4, ?5, ?6, ?6, 1, ?8, ?9, ?10 FROM users WHERE id = ?2 AND family_id = ?7";

/// Links entry `?1` to member `?2` when the member is of family `?3`.
const LINK_MEMBER_SQL: &str = "INSERT INTO entry_members (entry_id, member_id, family_id) \
     SELECT ?1, id, family_id FROM members WHERE id = ?2 AND family_id = ?3 ON CONFLICT DO NOTHING";

/// Whether entry `?1` is linked to member `?2` already.
const MEMBER_LINKED_SQL: &str = "SELECT 1 FROM entry_members WHERE entry_id = ?1 AND member_id = ?2";

/// A media row awaiting its download.
const PENDING_MEDIA_SQL: &str = "INSERT INTO media (id, family_id, entry_id, blob_key, content_type, size_bytes, sha256, created_at, source_ref, kind) \
     VALUES (?1, ?2, ?3, '', ?4, 0, '', ?5, ?6, ?7)";

/// An entry version's jobs from a JSON list (`jobs_json`), in one statement.
const ENQUEUE_SQL: &str = "INSERT INTO jobs (id, family_id, kind, entry_id, entry_version, dedupe_key, max_attempts, run_at, created_at, updated_at) \
     SELECT json_extract(value, '$.id'), ?1, json_extract(value, '$.kind'), ?2, ?3, json_extract(value, '$.key'), ?4, ?5, ?5, ?5 \
     FROM json_each(?6) WHERE true ON CONFLICT (dedupe_key) DO NOTHING";

/// The jobs of an entry version as `ENQUEUE_SQL` reads them; none for no kinds.
fn jobs_json(entry_id: EntryId, version: i64, kinds: &[JobKind]) -> Option<String> {
    let jobs: Vec<serde_json::Value> = kinds
        .iter()
        .map(|kind| serde_json::json!({ "id": Uuid::now_v7().to_string(), "kind": kind.as_str(), "key": NewJob { kind: *kind, entry_id, entry_version: version }.dedupe_key() }))
        .collect();
    (!jobs.is_empty()).then(|| serde_json::Value::Array(jobs).to_string())
}

async fn enqueue(
    tx: &mut sqlx::SqliteConnection,
    family_id: FamilyId,
    entry_id: EntryId,
    version: i64,
    kinds: &[JobKind],
) -> StoreResult<()> {
    // One statement for all (each statement is a round trip to SQLite's thread).
    let Some(jobs) = jobs_json(entry_id, version, kinds) else { return Ok(()) };
    sqlx::query(ENQUEUE_SQL)
        .bind(family_id.to_string())
        .bind(entry_id.to_string())
        .bind(version)
        .bind(MAX_JOB_ATTEMPTS)
        .bind(ms(Utc::now()))
        .bind(jobs)
        .execute(&mut *tx)
        .await
        .map_err(map_err)
        .map(|_| ())
}

/// Enqueues one job under an explicit dedupe key.
async fn enqueue_keyed(
    tx: &mut sqlx::SqliteConnection,
    family_id: FamilyId,
    kind: JobKind,
    entry_id: EntryId,
    version: i64,
    key: &str,
) -> StoreResult<()> {
    let now = ms(Utc::now());
    sqlx::query(
        "INSERT INTO jobs (id, family_id, kind, entry_id, entry_version, dedupe_key, max_attempts, run_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(family_id.to_string())
    .bind(kind.as_str())
    .bind(entry_id.to_string())
    .bind(version)
    .bind(key)
    .bind(MAX_JOB_ATTEMPTS)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(map_err)
    .map(|_| ())
}

/// Claims a channel update key; false if it was claimed before.
async fn claim(tx: &mut sqlx::SqliteConnection, family_id: FamilyId, key: &str) -> StoreResult<bool> {
    let done = sqlx::query(CLAIM_SQL)
        .bind(key)
        .bind(family_id.to_string())
        .bind(ms(Utc::now()))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    Ok(done.rows_affected() == 1)
}

async fn insert_pending_media(tx: &mut sqlx::SqliteConnection, family_id: FamilyId, entry_id: EntryId, m: &PendingMedia) -> StoreResult<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query(PENDING_MEDIA_SQL)
    .bind(id.to_string())
    .bind(family_id.to_string())
    .bind(entry_id.to_string())
    .bind(&m.content_type)
    .bind(ms(Utc::now()))
    .bind(&m.source_ref)
    .bind(&m.kind)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(id)
}

async fn set_entry_members(
    tx: &mut sqlx::SqliteConnection,
    family_id: FamilyId,
    entry_id: EntryId,
    member_ids: &[MemberId],
) -> StoreResult<()> {
    sqlx::query("DELETE FROM entry_members WHERE entry_id = $1")
        .bind(entry_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    add_entry_members(tx, family_id, entry_id, member_ids).await
}

/// Links an entry to members of its family (a new entry: nothing to replace).
async fn add_entry_members(
    tx: &mut sqlx::SqliteConnection,
    family_id: FamilyId,
    entry_id: EntryId,
    member_ids: &[MemberId],
) -> StoreResult<()> {
    for member_id in member_ids {
        // The sub-select refuses members of another family: the row is simply not written.
        let done = sqlx::query(LINK_MEMBER_SQL)
        .bind(entry_id.to_string())
        .bind(member_id.to_string())
        .bind(family_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            let exists: Option<i64> = sqlx::query_scalar(MEMBER_LINKED_SQL)
                .bind(entry_id.to_string())
                .bind(member_id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
        }
    }
    Ok(())
}

/// Now, at the precision the database keeps (milliseconds), so what a create call
/// returns equals what a later read returns.
fn stored_now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(3)
}

mod capsules;
mod channels;
mod direct;
mod entries;
mod erasure;
mod families;
mod jobs;
mod parents;
mod prompts;
mod vectors;
