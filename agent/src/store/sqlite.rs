//! `SqliteStore`: the embedded `Store`, one SQLite file through sqlx. Instants
//! are stored as Unix milliseconds, ids as UUID text, lists as JSON text.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, SqlitePool};
use uuid::Uuid;

use super::*;

/// Jobs give up after this many attempts and stay in the table as `failed`.
pub const MAX_JOB_ATTEMPTS: i64 = 8;

pub struct SqliteStore {
    pool: SqlitePool,
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
            .busy_timeout(std::time::Duration::from_secs(10));
        let in_memory = url.contains(":memory:");
        let pool = SqlitePoolOptions::new()
            // An in-memory database lives in one connection.
            .max_connections(if in_memory { 1 } else { 8 })
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies any migration not yet applied.
    pub async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("../migrations/sqlite").run(&self.pool).await.map_err(backend)
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

fn vector_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn vector_from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

async fn enqueue(
    tx: &mut sqlx::SqliteConnection,
    family_id: FamilyId,
    entry_id: EntryId,
    version: i64,
    kinds: &[JobKind],
) -> StoreResult<()> {
    for kind in kinds {
        let key = NewJob { kind: *kind, entry_id, entry_version: version }.dedupe_key();
        enqueue_keyed(tx, family_id, *kind, entry_id, version, &key).await?;
    }
    Ok(())
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
    let done = sqlx::query("INSERT INTO processed_updates (update_key, family_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
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
    sqlx::query(
        "INSERT INTO media (id, family_id, entry_id, blob_key, content_type, size_bytes, sha256, created_at, source_ref, kind) \
         VALUES ($1, $2, $3, '', $4, 0, '', $5, $6, $7)",
    )
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
    for member_id in member_ids {
        // The sub-select refuses members of another family: the row is simply not written.
        let done = sqlx::query(
            "INSERT INTO entry_members (entry_id, member_id, family_id) \
             SELECT $1, id, family_id FROM members WHERE id = $2 AND family_id = $3 ON CONFLICT DO NOTHING",
        )
        .bind(entry_id.to_string())
        .bind(member_id.to_string())
        .bind(family_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM entry_members WHERE entry_id = $1 AND member_id = $2")
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

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err).map(|_| ())
    }

    async fn create_family(&self, name: &str) -> StoreResult<Family> {
        let family = Family { id: Uuid::now_v7(), name: name.to_string(), created_at: stored_now() };
        sqlx::query("INSERT INTO families (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(family.id.to_string())
            .bind(&family.name)
            .bind(ms(family.created_at))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(family)
    }

    async fn create_user(&self, family_id: FamilyId, name: &str) -> StoreResult<User> {
        let user = User { id: Uuid::now_v7(), family_id, name: name.to_string(), created_at: stored_now() };
        sqlx::query("INSERT INTO users (id, family_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(user.id.to_string())
            .bind(family_id.to_string())
            .bind(&user.name)
            .bind(ms(user.created_at))
            .execute(&self.pool)
            .await
            .map_err(|e| match map_err(e) {
                StoreError::Backend(_) => StoreError::NotFound, // the family does not exist
                other => other,
            })?;
        Ok(user)
    }

    async fn get_user(&self, user_id: UserId) -> StoreResult<User> {
        let row = sqlx::query("SELECT id, family_id, name, created_at FROM users WHERE id = $1")
            .bind(user_id.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(User {
            id: uuid(&row, "id")?,
            family_id: uuid(&row, "family_id")?,
            name: row.try_get("name").map_err(map_err)?,
            created_at: at(row.try_get("created_at").map_err(map_err)?),
        })
    }

    async fn create_member(&self, family_id: FamilyId, member: NewMember) -> StoreResult<Member> {
        let created = Member {
            id: Uuid::now_v7(),
            family_id,
            name: member.name,
            aliases: member.aliases,
            birth_date: member.birth_date,
            created_at: stored_now(),
        };
        sqlx::query("INSERT INTO members (id, family_id, name, aliases, birth_date, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(created.id.to_string())
            .bind(family_id.to_string())
            .bind(&created.name)
            .bind(to_json(&created.aliases))
            .bind(created.birth_date.map(|d| d.format("%Y-%m-%d").to_string()))
            .bind(ms(created.created_at))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(created)
    }

    async fn list_members(&self, family_id: FamilyId) -> StoreResult<Vec<Member>> {
        let rows = sqlx::query("SELECT * FROM members WHERE family_id = $1 ORDER BY created_at, id")
            .bind(family_id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(member_from_row).collect()
    }

    async fn insert_entry(&self, family_id: FamilyId, entry: NewEntry, jobs: &[JobKind]) -> StoreResult<Entry> {
        let id = Uuid::now_v7();
        let now = ms(Utc::now());
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if let Some(key) = &entry.dedupe_key
            && !claim(&mut tx, family_id, key).await?
        {
            return Err(StoreError::Conflict(format!("update {key} was already handled")));
        }
        sqlx::query(
            "INSERT INTO entries (id, family_id, author_id, source, raw_text, occurred_at, created_at, updated_at, version, status, external_key, reply_to) \
             SELECT $1, family_id, id, $3, $4, $5, $6, $6, 1, $8, $9, $10 FROM users WHERE id = $2 AND family_id = $7",
        )
        .bind(id.to_string())
        .bind(entry.author_id.to_string())
        .bind(entry.source.as_str())
        .bind(&entry.raw_text)
        .bind(ms(entry.occurred_at))
        .bind(now)
        .bind(family_id.to_string())
        .bind(entry.status.as_str())
        .bind(&entry.external_key)
        .bind(&entry.reply_to)
        .execute(&mut *tx)
        .await
        .map_err(map_err)
        .and_then(|r| if r.rows_affected() == 1 { Ok(()) } else { Err(StoreError::NotFound) })?;
        set_entry_members(&mut tx, family_id, id, &entry.member_ids).await?;
        for m in &entry.media {
            insert_pending_media(&mut tx, family_id, id, m).await?;
        }
        enqueue(&mut tx, family_id, id, 1, jobs).await?;
        tx.commit().await.map_err(map_err)?;
        self.get_entry(family_id, id).await
    }

    async fn get_entry(&self, family_id: FamilyId, id: EntryId) -> StoreResult<Entry> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.id = $1 AND e.family_id = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(family_id.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        entry_from_row(&row)
    }

    async fn get_entries(&self, family_id: FamilyId, ids: &[EntryId]) -> StoreResult<Vec<Entry>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids_json = to_json(&ids.iter().map(|i| i.to_string()).collect::<Vec<_>>());
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.family_id = $1 AND e.id IN (SELECT value FROM json_each($2))"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(family_id.to_string())
            .bind(ids_json)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn list_entries(&self, family_id: FamilyId, f: &EntryFilter) -> StoreResult<Vec<Entry>> {
        // Each optional filter is a NULL-able parameter, so the statement is fixed.
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM entries e \
             LEFT JOIN entry_insights i ON i.entry_id = e.id AND i.family_id = e.family_id \
             WHERE e.family_id = $1 \
               AND ($2 IS NULL OR EXISTS (SELECT 1 FROM entry_members em WHERE em.entry_id = e.id AND em.member_id = $2)) \
               AND ($3 IS NULL OR e.occurred_at >= $3) \
               AND ($4 IS NULL OR e.occurred_at < $4) \
               AND ($5 IS NULL OR EXISTS (SELECT 1 FROM json_each(i.topics) WHERE lower(value) = lower($5))) \
               AND ($6 IS NULL OR EXISTS (SELECT 1 FROM json_each(i.emotions) WHERE lower(value) = lower($6))) \
               AND ($7 IS NULL OR e.occurred_at < $7 OR (e.occurred_at = $7 AND e.id < $8)) \
             ORDER BY e.occurred_at DESC, e.id DESC LIMIT $9"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(family_id.to_string())
            .bind(f.member_id.map(|m| m.to_string()))
            .bind(f.from.map(ms))
            .bind(f.to.map(ms))
            .bind(f.topic.clone())
            .bind(f.emotion.clone())
            .bind(f.before.map(|(t, _)| ms(t)))
            .bind(f.before.map(|(_, id)| id.to_string()))
            .bind(i64::from(f.limit.max(1)))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn update_entry(
        &self,
        family_id: FamilyId,
        id: EntryId,
        raw_text: &str,
        member_ids: &[MemberId],
        jobs: &[JobKind],
    ) -> StoreResult<Entry> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let row = sqlx::query("SELECT raw_text, version FROM entries WHERE id = $1 AND family_id = $2")
            .bind(id.to_string())
            .bind(family_id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let old_text: String = row.try_get("raw_text").map_err(map_err)?;
        let version: i64 = row.try_get("version").map_err(map_err)?;
        let now = ms(Utc::now());
        sqlx::query("INSERT INTO entry_versions (entry_id, family_id, version, raw_text, replaced_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id.to_string())
            .bind(family_id.to_string())
            .bind(version)
            .bind(old_text)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("UPDATE entries SET raw_text = $1, version = $2, updated_at = $3 WHERE id = $4 AND family_id = $5")
            .bind(raw_text)
            .bind(version + 1)
            .bind(now)
            .bind(id.to_string())
            .bind(family_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        set_entry_members(&mut tx, family_id, id, member_ids).await?;
        enqueue(&mut tx, family_id, id, version + 1, jobs).await?;
        tx.commit().await.map_err(map_err)?;
        self.get_entry(family_id, id).await
    }

    async fn delete_entry(&self, family_id: FamilyId, id: EntryId) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let version: i64 = sqlx::query_scalar("SELECT version FROM entries WHERE id = $1 AND family_id = $2")
            .bind(id.to_string())
            .bind(family_id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        // Children go by ON DELETE CASCADE (insights, vectors, members, history).
        sqlx::query("DELETE FROM entries WHERE id = $1 AND family_id = $2")
            .bind(id.to_string())
            .bind(family_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("DELETE FROM jobs WHERE entry_id = $1 AND status = 'queued'")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        enqueue(&mut tx, family_id, id, version, &[JobKind::Unindex]).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn entry_history(&self, family_id: FamilyId, id: EntryId) -> StoreResult<Vec<EntryVersion>> {
        let rows = sqlx::query(
            "SELECT version, raw_text, replaced_at FROM entry_versions WHERE entry_id = $1 AND family_id = $2 ORDER BY version",
        )
        .bind(id.to_string())
        .bind(family_id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(EntryVersion {
                    version: r.try_get("version").map_err(map_err)?,
                    raw_text: r.try_get("raw_text").map_err(map_err)?,
                    replaced_at: at(r.try_get("replaced_at").map_err(map_err)?),
                })
            })
            .collect()
    }

    async fn put_insight(&self, family_id: FamilyId, i: &Insight) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO entry_insights (entry_id, family_id, entry_version, summary, topics, emotions, member_ids, model, prompt_name, prompt_version, created_at) \
             SELECT id, family_id, version, $3, $4, $5, $6, $7, $8, $9, $10 FROM entries WHERE id = $1 AND family_id = $2 AND version = $11 \
             ON CONFLICT (entry_id) DO UPDATE SET entry_version = excluded.entry_version, summary = excluded.summary, \
               topics = excluded.topics, emotions = excluded.emotions, member_ids = excluded.member_ids, model = excluded.model, \
               prompt_name = excluded.prompt_name, prompt_version = excluded.prompt_version, created_at = excluded.created_at",
        )
        .bind(i.entry_id.to_string())
        .bind(family_id.to_string())
        .bind(&i.summary)
        .bind(to_json(&i.topics))
        .bind(to_json(&i.emotions))
        .bind(to_json(&i.member_ids))
        .bind(&i.model)
        .bind(&i.prompt_name)
        .bind(&i.prompt_version)
        .bind(ms(i.created_at))
        .bind(i.entry_version)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_insight(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<Option<Insight>> {
        let row = sqlx::query("SELECT * FROM entry_insights WHERE entry_id = $1 AND family_id = $2")
            .bind(entry_id.to_string())
            .bind(family_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|r| {
            Ok(Insight {
                entry_id: uuid(&r, "entry_id")?,
                entry_version: r.try_get("entry_version").map_err(map_err)?,
                summary: r.try_get("summary").map_err(map_err)?,
                topics: json_list(&r, "topics")?,
                emotions: json_list(&r, "emotions")?,
                member_ids: json_list(&r, "member_ids")?,
                model: r.try_get("model").map_err(map_err)?,
                prompt_name: r.try_get("prompt_name").map_err(map_err)?,
                prompt_version: r.try_get("prompt_version").map_err(map_err)?,
                created_at: at(r.try_get("created_at").map_err(map_err)?),
            })
        })
        .transpose()
    }

    async fn put_vector(&self, family_id: FamilyId, v: &VectorRecord) -> StoreResult<()> {
        // Written only while the entry exists in this family (a deleted entry stays deleted).
        sqlx::query(
            "INSERT INTO entry_vectors (entry_id, family_id, entry_version, model, dims, vector, member_ids, topics, emotions, occurred_at) \
             SELECT id, family_id, $3, $4, $5, $6, $7, $8, $9, $10 FROM entries WHERE id = $1 AND family_id = $2 \
             ON CONFLICT (entry_id) DO UPDATE SET entry_version = excluded.entry_version, model = excluded.model, \
               dims = excluded.dims, vector = excluded.vector, member_ids = excluded.member_ids, topics = excluded.topics, \
               emotions = excluded.emotions, occurred_at = excluded.occurred_at",
        )
        .bind(v.entry_id.to_string())
        .bind(family_id.to_string())
        .bind(v.entry_version)
        .bind(&v.model)
        .bind(v.vector.len() as i64)
        .bind(vector_to_bytes(&v.vector))
        .bind(to_json(&v.member_ids))
        .bind(to_json(&v.topics))
        .bind(to_json(&v.emotions))
        .bind(ms(v.occurred_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)
        .map(|_| ())
    }

    async fn delete_vector(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<()> {
        sqlx::query("DELETE FROM entry_vectors WHERE entry_id = $1 AND family_id = $2")
            .bind(entry_id.to_string())
            .bind(family_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)
            .map(|_| ())
    }

    async fn set_vector_payload(
        &self,
        family_id: FamilyId,
        entry_id: EntryId,
        member_ids: &[MemberId],
        topics: &[String],
        emotions: &[String],
    ) -> StoreResult<()> {
        sqlx::query("UPDATE entry_vectors SET member_ids = $1, topics = $2, emotions = $3 WHERE entry_id = $4 AND family_id = $5")
            .bind(to_json(&member_ids))
            .bind(to_json(&topics))
            .bind(to_json(&emotions))
            .bind(entry_id.to_string())
            .bind(family_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)
            .map(|_| ())
    }

    async fn load_vectors(
        &self,
        family_id: FamilyId,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<VectorRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM entry_vectors WHERE family_id = $1 AND ($2 IS NULL OR occurred_at >= $2) AND ($3 IS NULL OR occurred_at < $3)",
        )
        .bind(family_id.to_string())
        .bind(from.map(ms))
        .bind(to.map(ms))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let bytes: Vec<u8> = r.try_get("vector").map_err(map_err)?;
                Ok(VectorRecord {
                    entry_id: uuid(r, "entry_id")?,
                    entry_version: r.try_get("entry_version").map_err(map_err)?,
                    model: r.try_get("model").map_err(map_err)?,
                    vector: vector_from_bytes(&bytes),
                    member_ids: json_list(r, "member_ids")?,
                    topics: json_list(r, "topics")?,
                    emotions: json_list(r, "emotions")?,
                    occurred_at: at(r.try_get("occurred_at").map_err(map_err)?),
                })
            })
            .collect()
    }

    async fn mark_indexed(&self, family_id: FamilyId, entry_id: EntryId, version: i64) -> StoreResult<()> {
        sqlx::query("UPDATE entries SET indexed_version = $1 WHERE id = $2 AND family_id = $3 AND version = $1")
            .bind(version)
            .bind(entry_id.to_string())
            .bind(family_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)
            .map(|_| ())
    }

    async fn indexed_version(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<Option<i64>> {
        sqlx::query_scalar("SELECT indexed_version FROM entries WHERE id = $1 AND family_id = $2")
            .bind(entry_id.to_string())
            .bind(family_id.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn add_chat_turn(&self, family_id: FamilyId, user_id: UserId, turn: &ChatTurn) -> StoreResult<()> {
        sqlx::query("INSERT INTO chat_turns (id, family_id, user_id, chat_id, role, content, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(Uuid::now_v7().to_string())
            .bind(family_id.to_string())
            .bind(user_id.to_string())
            .bind(&turn.chat_id)
            .bind(&turn.role)
            .bind(&turn.content)
            .bind(ms(turn.created_at))
            .execute(&self.pool)
            .await
            .map_err(map_err)
            .map(|_| ())
    }

    async fn recent_chat_turns(&self, family_id: FamilyId, chat_id: &str, limit: u32) -> StoreResult<Vec<ChatTurn>> {
        let rows = sqlx::query(
            "SELECT chat_id, role, content, created_at FROM chat_turns WHERE family_id = $1 AND chat_id = $2 \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(family_id.to_string())
        .bind(chat_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut turns = rows
            .iter()
            .map(|r| {
                Ok(ChatTurn {
                    chat_id: r.try_get("chat_id").map_err(map_err)?,
                    role: r.try_get("role").map_err(map_err)?,
                    content: r.try_get("content").map_err(map_err)?,
                    created_at: at(r.try_get("created_at").map_err(map_err)?),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        turns.reverse();
        Ok(turns)
    }

    async fn add_usage(
        &self,
        family_id: FamilyId,
        day: NaiveDate,
        model: &str,
        capability: &str,
        input_tokens: u64,
        output_tokens: u64,
        cost_usd: f64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO model_usage (family_id, day, model, capability, calls, input_tokens, output_tokens, cost_usd) \
             VALUES ($1, $2, $3, $4, 1, $5, $6, $7) ON CONFLICT (family_id, day, model, capability) DO UPDATE SET \
             calls = calls + 1, input_tokens = input_tokens + excluded.input_tokens, \
             output_tokens = output_tokens + excluded.output_tokens, cost_usd = cost_usd + excluded.cost_usd",
        )
        .bind(family_id.to_string())
        .bind(day.format("%Y-%m-%d").to_string())
        .bind(model)
        .bind(capability)
        .bind(input_tokens as i64)
        .bind(output_tokens as i64)
        .bind(cost_usd)
        .execute(&self.pool)
        .await
        .map_err(map_err)
        .map(|_| ())
    }

    async fn usage_since(&self, family_id: FamilyId, from: NaiveDate) -> StoreResult<Vec<UsageRow>> {
        let rows = sqlx::query(
            "SELECT model, capability, SUM(calls) AS calls, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, \
             SUM(cost_usd) AS cost_usd FROM model_usage WHERE family_id = $1 AND day >= $2 GROUP BY model, capability ORDER BY model, capability",
        )
        .bind(family_id.to_string())
        .bind(from.format("%Y-%m-%d").to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(UsageRow {
                    model: r.try_get("model").map_err(map_err)?,
                    capability: r.try_get("capability").map_err(map_err)?,
                    calls: r.try_get("calls").map_err(map_err)?,
                    input_tokens: r.try_get("input_tokens").map_err(map_err)?,
                    output_tokens: r.try_get("output_tokens").map_err(map_err)?,
                    cost_usd: r.try_get("cost_usd").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn create_link_code(&self, family_id: FamilyId, user_id: UserId, code_hash: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("INSERT INTO link_codes (code_hash, family_id, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(code_hash)
            .bind(family_id.to_string())
            .bind(user_id.to_string())
            .bind(ms(expires_at))
            .bind(ms(Utc::now()))
            .execute(&self.pool)
            .await
            .map_err(map_err)
            .map(|_| ())
    }

    async fn redeem_link_code(&self, code_hash: &str, telegram_user_id: i64, language: Option<&str>, now: DateTime<Utc>) -> StoreResult<User> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let row = sqlx::query(
            "UPDATE link_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING family_id, user_id",
        )
        .bind(code_hash)
        .bind(ms(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let (family_id, user_id) = (uuid(&row, "family_id")?, uuid(&row, "user_id")?);
        sqlx::query(
            "INSERT INTO telegram_links (telegram_user_id, family_id, user_id, language, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (telegram_user_id) DO UPDATE SET family_id = excluded.family_id, user_id = excluded.user_id, created_at = excluded.created_at",
        )
        .bind(telegram_user_id)
        .bind(family_id.to_string())
        .bind(user_id.to_string())
        .bind(language)
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.get_user(user_id).await
    }

    async fn telegram_link(&self, telegram_user_id: i64) -> StoreResult<Option<(User, Option<String>)>> {
        let row = sqlx::query("SELECT user_id, language FROM telegram_links WHERE telegram_user_id = $1")
            .bind(telegram_user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let user = self.get_user(uuid(&row, "user_id")?).await?;
        Ok(Some((user, row.try_get("language").map_err(map_err)?)))
    }

    async fn set_telegram_language(&self, telegram_user_id: i64, family_id: FamilyId, language: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE telegram_links SET language = $1 WHERE telegram_user_id = $2 AND family_id = $3")
            .bind(language)
            .bind(telegram_user_id)
            .bind(family_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)
            .map(|_| ())
    }

    async fn unlink_telegram(&self, telegram_user_id: i64, family_id: FamilyId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM telegram_links WHERE telegram_user_id = $1 AND family_id = $2")
            .bind(telegram_user_id)
            .bind(family_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_update(&self, family_id: FamilyId, key: &str) -> StoreResult<bool> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        claim(&mut conn, family_id, key).await
    }

    async fn entry_by_external_key(&self, family_id: FamilyId, key: &str) -> StoreResult<Option<Entry>> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.family_id = $1 AND e.external_key = $2");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(family_id.to_string()).bind(key).fetch_optional(&self.pool).await.map_err(map_err)?;
        row.as_ref().map(entry_from_row).transpose()
    }

    async fn add_pending_media(&self, family_id: FamilyId, entry_id: EntryId, media: &PendingMedia, dedupe_key: Option<&str>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if let Some(key) = dedupe_key
            && !claim(&mut tx, family_id, key).await?
        {
            return Err(StoreError::Conflict(format!("update {key} was already handled")));
        }
        let exists: Option<i64> = sqlx::query_scalar("SELECT version FROM entries WHERE id = $1 AND family_id = $2")
            .bind(entry_id.to_string())
            .bind(family_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let version = exists.ok_or(StoreError::NotFound)?;
        let media_id = insert_pending_media(&mut tx, family_id, entry_id, media).await?;
        enqueue_keyed(&mut tx, family_id, JobKind::FetchMedia, entry_id, version, &format!("fetch_media:{media_id}")).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn entry_media(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<Vec<Media>> {
        let rows = sqlx::query("SELECT * FROM media WHERE family_id = $1 AND entry_id = $2 ORDER BY created_at, id")
            .bind(family_id.to_string())
            .bind(entry_id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let key: String = r.try_get("blob_key").map_err(map_err)?;
                Ok(Media {
                    id: uuid(r, "id")?,
                    entry_id: Some(entry_id),
                    kind: r.try_get("kind").map_err(map_err)?,
                    blob_key: (!key.is_empty()).then_some(key),
                    content_type: r.try_get("content_type").map_err(map_err)?,
                    size_bytes: r.try_get("size_bytes").map_err(map_err)?,
                    sha256: r.try_get("sha256").map_err(map_err)?,
                    source_ref: r.try_get("source_ref").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn media_fetched(&self, family_id: FamilyId, media_id: Uuid, blob: &crate::blob::StoredBlob) -> StoreResult<()> {
        sqlx::query("UPDATE media SET blob_key = $1, content_type = $2, size_bytes = $3, sha256 = $4 WHERE id = $5 AND family_id = $6")
            .bind(&blob.key)
            .bind(&blob.content_type)
            .bind(blob.size_bytes as i64)
            .bind(&blob.sha256)
            .bind(media_id.to_string())
            .bind(family_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)
            .map(|_| ())
    }

    async fn link_message(&self, family_id: FamilyId, chat_key: &str, message_id: i64, entry_id: EntryId, kind: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO channel_messages (chat_key, message_id, family_id, entry_id, kind) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (chat_key, message_id) DO UPDATE SET entry_id = excluded.entry_id, kind = excluded.kind \
             WHERE channel_messages.family_id = excluded.family_id",
        )
        .bind(chat_key)
        .bind(message_id)
        .bind(family_id.to_string())
        .bind(entry_id.to_string())
        .bind(kind)
        .execute(&self.pool)
        .await
        .map_err(map_err)
        .map(|_| ())
    }

    async fn message_entry(&self, family_id: FamilyId, chat_key: &str, message_id: i64) -> StoreResult<Option<(EntryId, String)>> {
        let row = sqlx::query("SELECT entry_id, kind FROM channel_messages WHERE chat_key = $1 AND message_id = $2 AND family_id = $3")
            .bind(chat_key)
            .bind(message_id)
            .bind(family_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|r| Ok((uuid(&r, "entry_id")?, r.try_get("kind").map_err(map_err)?))).transpose()
    }

    async fn fill_entry_text(&self, family_id: FamilyId, id: EntryId, text: &str, member_ids: &[MemberId], jobs: &[JobKind]) -> StoreResult<Entry> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let version: i64 = sqlx::query_scalar("SELECT version FROM entries WHERE id = $1 AND family_id = $2 AND status = 'transcribing'")
            .bind(id.to_string())
            .bind(family_id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("UPDATE entries SET raw_text = $1, status = 'ready', version = $2, updated_at = $3 WHERE id = $4 AND family_id = $5")
            .bind(text)
            .bind(version + 1)
            .bind(ms(Utc::now()))
            .bind(id.to_string())
            .bind(family_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        set_entry_members(&mut tx, family_id, id, member_ids).await?;
        enqueue(&mut tx, family_id, id, version + 1, jobs).await?;
        tx.commit().await.map_err(map_err)?;
        self.get_entry(family_id, id).await
    }

    async fn enqueue_reindex(&self, tag: &str) -> StoreResult<u64> {
        let now = ms(Utc::now());
        // A random version-4-shaped UUID per row (SQLite has no uuid function).
        let done = sqlx::query(
            "INSERT INTO jobs (id, family_id, kind, entry_id, entry_version, dedupe_key, max_attempts, run_at, created_at, updated_at) \
             SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' || \
                    substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))), \
                    family_id, 'embed', entry_id, MAX(entry_version), 'reindex:' || $1 || ':' || entry_id, $2, $3, $3, $3 \
             FROM jobs WHERE kind = 'embed' GROUP BY family_id, entry_id ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(tag)
        .bind(MAX_JOB_ATTEMPTS)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn defer_job(&self, id: Uuid, run_at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE jobs SET status = 'queued', attempts = MAX(attempts - 1, 0), run_at = $2, locked_until = NULL, updated_at = $3 WHERE id = $1")
            .bind(id.to_string())
            .bind(ms(run_at))
            .bind(ms(Utc::now()))
            .execute(&self.pool)
            .await
            .map_err(map_err)
            .map(|_| ())
    }

    async fn claim_job(&self, now: DateTime<Utc>, lease: chrono::Duration) -> StoreResult<Option<Job>> {
        // One UPDATE … RETURNING: SQLite serialises writers, so a job goes to one worker.
        // Due jobs first (an index range on (status, run_at)); only when none is
        // due, a running job whose lease ran out (its worker died).
        let mut row = None;
        for due in [
            "SELECT id FROM jobs WHERE status = 'queued' AND run_at <= $1 ORDER BY run_at, id LIMIT 1",
            "SELECT id FROM jobs WHERE status = 'running' AND locked_until < $1 ORDER BY locked_until, id LIMIT 1",
        ] {
            let sql = format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_until = $2, updated_at = $1 \
                 WHERE id = ({due}) RETURNING id, family_id, kind, entry_id, entry_version, attempts, max_attempts"
            );
            row = sqlx::query(AssertSqlSafe(sql)).bind(ms(now)).bind(ms(now + lease)).fetch_optional(&self.pool).await.map_err(map_err)?;
            if row.is_some() {
                break;
            }
        }
        let Some(r) = row else { return Ok(None) };
        let kind: String = r.try_get("kind").map_err(map_err)?;
        Ok(Some(Job {
            id: uuid(&r, "id")?,
            family_id: uuid(&r, "family_id")?,
            kind: JobKind::parse(&kind).ok_or_else(|| StoreError::Conflict(format!("unknown job kind {kind}")))?,
            entry_id: uuid(&r, "entry_id")?,
            entry_version: r.try_get("entry_version").map_err(map_err)?,
            attempts: r.try_get("attempts").map_err(map_err)?,
            max_attempts: r.try_get("max_attempts").map_err(map_err)?,
        }))
    }

    async fn complete_job(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("UPDATE jobs SET status = 'done', locked_until = NULL, last_error = NULL, updated_at = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(ms(Utc::now()))
            .execute(&self.pool)
            .await
            .map_err(map_err)
            .map(|_| ())
    }

    async fn fail_job(&self, id: Uuid, error: &str, retry_at: Option<DateTime<Utc>>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE jobs SET status = CASE WHEN $3 IS NULL THEN 'failed' ELSE 'queued' END, \
             run_at = COALESCE($3, run_at), locked_until = NULL, last_error = $2, updated_at = $4 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(error)
        .bind(retry_at.map(ms))
        .bind(ms(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(map_err)
        .map(|_| ())
    }

    async fn job_counts(&self, family_id: Option<FamilyId>) -> StoreResult<JobCounts> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM jobs WHERE ($1 IS NULL OR family_id = $1) GROUP BY status")
            .bind(family_id.map(|f| f.to_string()))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let mut counts = JobCounts::default();
        for r in rows {
            let status: String = r.try_get("status").map_err(map_err)?;
            let n: i64 = r.try_get("n").map_err(map_err)?;
            match status.as_str() {
                "queued" => counts.queued = n,
                "running" => counts.running = n,
                "done" => counts.done = n,
                _ => counts.failed += n,
            }
        }
        Ok(counts)
    }
}
