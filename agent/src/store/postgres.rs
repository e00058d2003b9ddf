//! `PostgresStore`: the production `Store`. Every family-scoped call runs in a
//! transaction that first sets `app.family_id`, so row-level security confines
//! it to that family even if a query forgot its `WHERE`. Workers claim jobs in
//! a transaction marked `app.role = 'worker'`, with `FOR UPDATE SKIP LOCKED`
//! so many instances can drain one queue.

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
    /// Connects (URL may carry `sslmode`, as Supabase's do) and applies migrations.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(backend)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(map_err)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("../migrations/postgres").run(&self.pool).await.map_err(backend)
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

    /// A transaction allowed to see every family's jobs (and nothing else).
    async fn worker_tx(&self) -> StoreResult<Tx> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT set_config('app.role', 'worker', true)").execute(&mut *tx).await.map_err(map_err)?;
        Ok(tx)
    }

    /// Direct access for tests that check what row-level security allows.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn member_from_row(row: &PgRow) -> StoreResult<Member> {
    Ok(Member {
        id: row.try_get("id").map_err(map_err)?,
        family_id: row.try_get("family_id").map_err(map_err)?,
        name: row.try_get("name").map_err(map_err)?,
        aliases: row.try_get("aliases").map_err(map_err)?,
        birth_date: row.try_get("birth_date").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
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

async fn enqueue(tx: &mut Tx, family_id: FamilyId, entry_id: EntryId, version: i64, kinds: &[JobKind]) -> StoreResult<()> {
    for kind in kinds {
        let key = NewJob { kind: *kind, entry_id, entry_version: version }.dedupe_key();
        enqueue_keyed(tx, family_id, *kind, entry_id, version, &key).await?;
    }
    Ok(())
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

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err).map(|_| ())
    }

    async fn create_family(&self, name: &str) -> StoreResult<Family> {
        let family = Family { id: Uuid::now_v7(), name: name.to_string(), created_at: stored_now() };
        let mut tx = self.family_tx(family.id).await?;
        sqlx::query("INSERT INTO families (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(family.id)
            .bind(&family.name)
            .bind(family.created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(family)
    }

    async fn create_user(&self, family_id: FamilyId, name: &str) -> StoreResult<User> {
        let user = User { id: Uuid::now_v7(), family_id, name: name.to_string(), created_at: stored_now() };
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("INSERT INTO users (id, family_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(user.id)
            .bind(family_id)
            .bind(&user.name)
            .bind(user.created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(user)
    }

    async fn get_user(&self, user_id: UserId) -> StoreResult<User> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT set_config('app.user_id', $1, true)").bind(user_id.to_string()).execute(&mut *tx).await.map_err(map_err)?;
        let row = sqlx::query("SELECT id, family_id, name, created_at FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(User {
            id: row.try_get("id").map_err(map_err)?,
            family_id: row.try_get("family_id").map_err(map_err)?,
            name: row.try_get("name").map_err(map_err)?,
            created_at: row.try_get("created_at").map_err(map_err)?,
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
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("INSERT INTO members (id, family_id, name, aliases, birth_date, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(created.id)
            .bind(family_id)
            .bind(&created.name)
            .bind(&created.aliases)
            .bind(created.birth_date)
            .bind(created.created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(created)
    }

    async fn list_members(&self, family_id: FamilyId) -> StoreResult<Vec<Member>> {
        let mut tx = self.family_tx(family_id).await?;
        let rows = sqlx::query("SELECT * FROM members WHERE family_id = $1 ORDER BY created_at, id")
            .bind(family_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter().map(member_from_row).collect()
    }

    async fn insert_entry(&self, family_id: FamilyId, entry: NewEntry, jobs: &[JobKind]) -> StoreResult<Entry> {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let mut tx = self.family_tx(family_id).await?;
        if let Some(key) = &entry.dedupe_key
            && !claim(&mut tx, family_id, key).await?
        {
            return Err(StoreError::Conflict(format!("update {key} was already handled")));
        }
        let inserted = sqlx::query(
            "INSERT INTO entries (id, family_id, author_id, source, raw_text, occurred_at, created_at, updated_at, version, status, external_key, reply_to) \
             SELECT $1, family_id, id, $3, $4, $5, $6, $6, 1, $8, $9, $10 FROM users WHERE id = $2 AND family_id = $7",
        )
        .bind(id)
        .bind(entry.author_id)
        .bind(entry.source.as_str())
        .bind(&entry.raw_text)
        .bind(entry.occurred_at)
        .bind(now)
        .bind(family_id)
        .bind(entry.status.as_str())
        .bind(&entry.external_key)
        .bind(&entry.reply_to)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if inserted.rows_affected() != 1 {
            return Err(StoreError::NotFound);
        }
        set_entry_members(&mut tx, family_id, id, &entry.member_ids).await?;
        for m in &entry.media {
            insert_pending_media(&mut tx, family_id, id, m).await?;
        }
        enqueue(&mut tx, family_id, id, 1, jobs).await?;
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_one(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        entry_from_row(&row)
    }

    async fn get_entry(&self, family_id: FamilyId, id: EntryId) -> StoreResult<Entry> {
        let mut tx = self.family_tx(family_id).await?;
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.id = $1 AND e.family_id = $2");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).bind(family_id).fetch_one(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        entry_from_row(&row)
    }

    async fn get_entries(&self, family_id: FamilyId, ids: &[EntryId]) -> StoreResult<Vec<Entry>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.family_tx(family_id).await?;
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.family_id = $1 AND e.id = ANY($2)");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(family_id).bind(ids).fetch_all(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn list_entries(&self, family_id: FamilyId, f: &EntryFilter) -> StoreResult<Vec<Entry>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM entries e \
             LEFT JOIN entry_insights i ON i.entry_id = e.id \
             WHERE e.family_id = $1 \
               AND ($2::uuid IS NULL OR EXISTS (SELECT 1 FROM entry_members em WHERE em.entry_id = e.id AND em.member_id = $2)) \
               AND ($3::timestamptz IS NULL OR e.occurred_at >= $3) \
               AND ($4::timestamptz IS NULL OR e.occurred_at < $4) \
               AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM unnest(i.topics) t WHERE lower(t) = lower($5))) \
               AND ($6::text IS NULL OR EXISTS (SELECT 1 FROM unnest(i.emotions) t WHERE lower(t) = lower($6))) \
               AND ($7::timestamptz IS NULL OR e.occurred_at < $7 OR (e.occurred_at = $7 AND e.id < $8)) \
             ORDER BY e.occurred_at DESC, e.id DESC LIMIT $9"
        );
        let mut tx = self.family_tx(family_id).await?;
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(family_id)
            .bind(f.member_id)
            .bind(f.from)
            .bind(f.to)
            .bind(f.topic.clone())
            .bind(f.emotion.clone())
            .bind(f.before.map(|(t, _)| t))
            .bind(f.before.map(|(_, id)| id))
            .bind(i64::from(f.limit.max(1)))
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
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
        let mut tx = self.family_tx(family_id).await?;
        let row = sqlx::query("SELECT raw_text, version FROM entries WHERE id = $1 AND family_id = $2 FOR UPDATE")
            .bind(id)
            .bind(family_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let old_text: String = row.try_get("raw_text").map_err(map_err)?;
        let version: i64 = row.try_get("version").map_err(map_err)?;
        let now = Utc::now();
        sqlx::query("INSERT INTO entry_versions (entry_id, family_id, version, raw_text, replaced_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(family_id)
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
            .bind(id)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        set_entry_members(&mut tx, family_id, id, member_ids).await?;
        enqueue(&mut tx, family_id, id, version + 1, jobs).await?;
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_one(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        entry_from_row(&row)
    }

    async fn delete_entry(&self, family_id: FamilyId, id: EntryId) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        let version: i64 = sqlx::query_scalar("DELETE FROM entries WHERE id = $1 AND family_id = $2 RETURNING version")
            .bind(id)
            .bind(family_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("DELETE FROM jobs WHERE entry_id = $1 AND status = 'queued'").bind(id).execute(&mut *tx).await.map_err(map_err)?;
        enqueue(&mut tx, family_id, id, version, &[JobKind::Unindex]).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn entry_history(&self, family_id: FamilyId, id: EntryId) -> StoreResult<Vec<EntryVersion>> {
        let mut tx = self.family_tx(family_id).await?;
        let rows = sqlx::query("SELECT version, raw_text, replaced_at FROM entry_versions WHERE entry_id = $1 AND family_id = $2 ORDER BY version")
            .bind(id)
            .bind(family_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(EntryVersion {
                    version: r.try_get("version").map_err(map_err)?,
                    raw_text: r.try_get("raw_text").map_err(map_err)?,
                    replaced_at: r.try_get("replaced_at").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn put_insight(&self, family_id: FamilyId, i: &Insight) -> StoreResult<bool> {
        let mut tx = self.family_tx(family_id).await?;
        let done = sqlx::query(
            "INSERT INTO entry_insights (entry_id, family_id, entry_version, summary, topics, emotions, member_ids, model, prompt_name, prompt_version, created_at) \
             SELECT id, family_id, version, $3, $4, $5, $6, $7, $8, $9, $10 FROM entries WHERE id = $1 AND family_id = $2 AND version = $11 \
             ON CONFLICT (entry_id) DO UPDATE SET entry_version = excluded.entry_version, summary = excluded.summary, \
               topics = excluded.topics, emotions = excluded.emotions, member_ids = excluded.member_ids, model = excluded.model, \
               prompt_name = excluded.prompt_name, prompt_version = excluded.prompt_version, created_at = excluded.created_at",
        )
        .bind(i.entry_id)
        .bind(family_id)
        .bind(&i.summary)
        .bind(&i.topics)
        .bind(&i.emotions)
        .bind(&i.member_ids)
        .bind(&i.model)
        .bind(&i.prompt_name)
        .bind(&i.prompt_version)
        .bind(i.created_at)
        .bind(i.entry_version)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_insight(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<Option<Insight>> {
        let mut tx = self.family_tx(family_id).await?;
        let row = sqlx::query("SELECT * FROM entry_insights WHERE entry_id = $1 AND family_id = $2")
            .bind(entry_id)
            .bind(family_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        row.map(|r| {
            Ok(Insight {
                entry_id: r.try_get("entry_id").map_err(map_err)?,
                entry_version: r.try_get("entry_version").map_err(map_err)?,
                summary: r.try_get("summary").map_err(map_err)?,
                topics: r.try_get("topics").map_err(map_err)?,
                emotions: r.try_get("emotions").map_err(map_err)?,
                member_ids: r.try_get("member_ids").map_err(map_err)?,
                model: r.try_get("model").map_err(map_err)?,
                prompt_name: r.try_get("prompt_name").map_err(map_err)?,
                prompt_version: r.try_get("prompt_version").map_err(map_err)?,
                created_at: r.try_get("created_at").map_err(map_err)?,
            })
        })
        .transpose()
    }

    async fn put_vector(&self, family_id: FamilyId, v: &VectorRecord) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query(
            "INSERT INTO entry_vectors (entry_id, family_id, entry_version, model, vector, member_ids, topics, emotions, occurred_at) \
             SELECT id, family_id, $3, $4, $5, $6, $7, $8, $9 FROM entries WHERE id = $1 AND family_id = $2 \
             ON CONFLICT (entry_id) DO UPDATE SET entry_version = excluded.entry_version, model = excluded.model, \
               vector = excluded.vector, member_ids = excluded.member_ids, topics = excluded.topics, \
               emotions = excluded.emotions, occurred_at = excluded.occurred_at",
        )
        .bind(v.entry_id)
        .bind(family_id)
        .bind(v.entry_version)
        .bind(&v.model)
        .bind(&v.vector)
        .bind(&v.member_ids)
        .bind(&v.topics)
        .bind(&v.emotions)
        .bind(v.occurred_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_vector(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("DELETE FROM entry_vectors WHERE entry_id = $1 AND family_id = $2")
            .bind(entry_id)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn set_vector_payload(
        &self,
        family_id: FamilyId,
        entry_id: EntryId,
        member_ids: &[MemberId],
        topics: &[String],
        emotions: &[String],
    ) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("UPDATE entry_vectors SET member_ids = $1, topics = $2, emotions = $3 WHERE entry_id = $4 AND family_id = $5")
            .bind(member_ids)
            .bind(topics)
            .bind(emotions)
            .bind(entry_id)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn load_vectors(
        &self,
        family_id: FamilyId,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<VectorRecord>> {
        let mut tx = self.family_tx(family_id).await?;
        let rows = sqlx::query(
            "SELECT * FROM entry_vectors WHERE family_id = $1 AND ($2::timestamptz IS NULL OR occurred_at >= $2) \
             AND ($3::timestamptz IS NULL OR occurred_at < $3)",
        )
        .bind(family_id)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(VectorRecord {
                    entry_id: r.try_get("entry_id").map_err(map_err)?,
                    entry_version: r.try_get("entry_version").map_err(map_err)?,
                    model: r.try_get("model").map_err(map_err)?,
                    vector: r.try_get("vector").map_err(map_err)?,
                    member_ids: r.try_get("member_ids").map_err(map_err)?,
                    topics: r.try_get("topics").map_err(map_err)?,
                    emotions: r.try_get("emotions").map_err(map_err)?,
                    occurred_at: r.try_get("occurred_at").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn mark_indexed(&self, family_id: FamilyId, entry_id: EntryId, version: i64) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("UPDATE entries SET indexed_version = $1 WHERE id = $2 AND family_id = $3 AND version = $1")
            .bind(version)
            .bind(entry_id)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn indexed_version(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<Option<i64>> {
        let mut tx = self.family_tx(family_id).await?;
        let v = sqlx::query_scalar("SELECT indexed_version FROM entries WHERE id = $1 AND family_id = $2")
            .bind(entry_id)
            .bind(family_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(v)
    }

    async fn add_chat_turn(&self, family_id: FamilyId, user_id: UserId, turn: &ChatTurn) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("INSERT INTO chat_turns (id, family_id, user_id, chat_id, role, content, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(Uuid::now_v7())
            .bind(family_id)
            .bind(user_id)
            .bind(&turn.chat_id)
            .bind(&turn.role)
            .bind(&turn.content)
            .bind(turn.created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn recent_chat_turns(&self, family_id: FamilyId, chat_id: &str, limit: u32) -> StoreResult<Vec<ChatTurn>> {
        let mut tx = self.family_tx(family_id).await?;
        let rows = sqlx::query(
            "SELECT chat_id, role, content, created_at FROM chat_turns WHERE family_id = $1 AND chat_id = $2 \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(family_id)
        .bind(chat_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let mut turns = rows
            .iter()
            .map(|r| {
                Ok(ChatTurn {
                    chat_id: r.try_get("chat_id").map_err(map_err)?,
                    role: r.try_get("role").map_err(map_err)?,
                    content: r.try_get("content").map_err(map_err)?,
                    created_at: r.try_get("created_at").map_err(map_err)?,
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
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query(
            "INSERT INTO model_usage AS u (family_id, day, model, capability, calls, input_tokens, output_tokens, cost_usd) \
             VALUES ($1, $2, $3, $4, 1, $5, $6, $7) ON CONFLICT (family_id, day, model, capability) DO UPDATE SET \
             calls = u.calls + 1, input_tokens = u.input_tokens + excluded.input_tokens, \
             output_tokens = u.output_tokens + excluded.output_tokens, cost_usd = u.cost_usd + excluded.cost_usd",
        )
        .bind(family_id)
        .bind(day)
        .bind(model)
        .bind(capability)
        .bind(input_tokens as i64)
        .bind(output_tokens as i64)
        .bind(cost_usd)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn usage_since(&self, family_id: FamilyId, from: NaiveDate) -> StoreResult<Vec<UsageRow>> {
        let mut tx = self.family_tx(family_id).await?;
        let rows = sqlx::query(
            "SELECT model, capability, SUM(calls)::bigint AS calls, SUM(input_tokens)::bigint AS input_tokens, \
             SUM(output_tokens)::bigint AS output_tokens, SUM(cost_usd) AS cost_usd FROM model_usage \
             WHERE family_id = $1 AND day >= $2 GROUP BY model, capability ORDER BY model, capability",
        )
        .bind(family_id)
        .bind(from)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
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
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("INSERT INTO link_codes (code_hash, family_id, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4, now())")
            .bind(code_hash)
            .bind(family_id)
            .bind(user_id)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn redeem_link_code(&self, code_hash: &str, telegram_user_id: i64, language: Option<&str>, now: DateTime<Utc>) -> StoreResult<User> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT set_config('app.link_code', $1, true), set_config('app.telegram_user_id', $2, true)")
            .bind(code_hash)
            .bind(telegram_user_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let row = sqlx::query("SELECT family_id, user_id FROM link_codes WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 FOR UPDATE")
            .bind(code_hash)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let (family_id, user_id): (Uuid, Uuid) = (row.try_get("family_id").map_err(map_err)?, row.try_get("user_id").map_err(map_err)?);
        // From here the family is known: act inside it.
        sqlx::query("SELECT set_config('app.family_id', $1, true)").bind(family_id.to_string()).execute(&mut *tx).await.map_err(map_err)?;
        sqlx::query("UPDATE link_codes SET used_at = $2 WHERE code_hash = $1").bind(code_hash).bind(now).execute(&mut *tx).await.map_err(map_err)?;
        // A Telegram user linked to another family moves: drop the old link first.
        sqlx::query("DELETE FROM telegram_links WHERE telegram_user_id = $1").bind(telegram_user_id).execute(&mut *tx).await.map_err(map_err)?;
        sqlx::query("INSERT INTO telegram_links (telegram_user_id, family_id, user_id, language, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(telegram_user_id)
            .bind(family_id)
            .bind(user_id)
            .bind(language)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.get_user(user_id).await
    }

    async fn telegram_link(&self, telegram_user_id: i64) -> StoreResult<Option<(User, Option<String>)>> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT set_config('app.telegram_user_id', $1, true)").bind(telegram_user_id.to_string()).execute(&mut *tx).await.map_err(map_err)?;
        let row = sqlx::query("SELECT user_id, language FROM telegram_links WHERE telegram_user_id = $1")
            .bind(telegram_user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let user = self.get_user(row.try_get("user_id").map_err(map_err)?).await?;
        Ok(Some((user, row.try_get("language").map_err(map_err)?)))
    }

    async fn set_telegram_language(&self, telegram_user_id: i64, family_id: FamilyId, language: Option<&str>) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("UPDATE telegram_links SET language = $1 WHERE telegram_user_id = $2 AND family_id = $3")
            .bind(language)
            .bind(telegram_user_id)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn unlink_telegram(&self, telegram_user_id: i64, family_id: FamilyId) -> StoreResult<bool> {
        let mut tx = self.family_tx(family_id).await?;
        let done = sqlx::query("DELETE FROM telegram_links WHERE telegram_user_id = $1 AND family_id = $2")
            .bind(telegram_user_id)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_update(&self, family_id: FamilyId, key: &str) -> StoreResult<bool> {
        let mut tx = self.family_tx(family_id).await?;
        let claimed = claim(&mut tx, family_id, key).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(claimed)
    }

    async fn entry_by_external_key(&self, family_id: FamilyId, key: &str) -> StoreResult<Option<Entry>> {
        let mut tx = self.family_tx(family_id).await?;
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.family_id = $1 AND e.external_key = $2");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(family_id).bind(key).fetch_optional(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        row.as_ref().map(entry_from_row).transpose()
    }

    async fn add_pending_media(&self, family_id: FamilyId, entry_id: EntryId, media: &PendingMedia, dedupe_key: Option<&str>) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        if let Some(key) = dedupe_key
            && !claim(&mut tx, family_id, key).await?
        {
            return Err(StoreError::Conflict(format!("update {key} was already handled")));
        }
        let version: i64 = sqlx::query_scalar("SELECT version FROM entries WHERE id = $1 AND family_id = $2")
            .bind(entry_id)
            .bind(family_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let media_id = insert_pending_media(&mut tx, family_id, entry_id, media).await?;
        enqueue_keyed(&mut tx, family_id, JobKind::FetchMedia, entry_id, version, &format!("fetch_media:{media_id}")).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn entry_media(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<Vec<Media>> {
        let mut tx = self.family_tx(family_id).await?;
        let rows = sqlx::query("SELECT * FROM media WHERE family_id = $1 AND entry_id = $2 ORDER BY created_at, id")
            .bind(family_id)
            .bind(entry_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let key: String = r.try_get("blob_key").map_err(map_err)?;
                Ok(Media {
                    id: r.try_get("id").map_err(map_err)?,
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
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("UPDATE media SET blob_key = $1, content_type = $2, size_bytes = $3, sha256 = $4 WHERE id = $5 AND family_id = $6")
            .bind(&blob.key)
            .bind(&blob.content_type)
            .bind(blob.size_bytes as i64)
            .bind(&blob.sha256)
            .bind(media_id)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn link_message(&self, family_id: FamilyId, chat_key: &str, message_id: i64, entry_id: EntryId, kind: &str) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query(
            "INSERT INTO channel_messages (chat_key, message_id, family_id, entry_id, kind) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (chat_key, message_id) DO UPDATE SET entry_id = excluded.entry_id, kind = excluded.kind",
        )
        .bind(chat_key)
        .bind(message_id)
        .bind(family_id)
        .bind(entry_id)
        .bind(kind)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn message_entry(&self, family_id: FamilyId, chat_key: &str, message_id: i64) -> StoreResult<Option<(EntryId, String)>> {
        let mut tx = self.family_tx(family_id).await?;
        let row = sqlx::query("SELECT entry_id, kind FROM channel_messages WHERE chat_key = $1 AND message_id = $2 AND family_id = $3")
            .bind(chat_key)
            .bind(message_id)
            .bind(family_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        row.map(|r| Ok((r.try_get("entry_id").map_err(map_err)?, r.try_get("kind").map_err(map_err)?))).transpose()
    }

    async fn fill_entry_text(&self, family_id: FamilyId, id: EntryId, text: &str, member_ids: &[MemberId], jobs: &[JobKind]) -> StoreResult<Entry> {
        let mut tx = self.family_tx(family_id).await?;
        let version: i64 = sqlx::query_scalar("SELECT version FROM entries WHERE id = $1 AND family_id = $2 AND status = 'transcribing' FOR UPDATE")
            .bind(id)
            .bind(family_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("UPDATE entries SET raw_text = $1, status = 'ready', version = $2, updated_at = now() WHERE id = $3 AND family_id = $4")
            .bind(text)
            .bind(version + 1)
            .bind(id)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        set_entry_members(&mut tx, family_id, id, member_ids).await?;
        enqueue(&mut tx, family_id, id, version + 1, jobs).await?;
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_one(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        entry_from_row(&row)
    }

    async fn enqueue_reindex(&self, tag: &str) -> StoreResult<u64> {
        let mut tx = self.worker_tx().await?;
        let done = sqlx::query(
            "INSERT INTO jobs (id, family_id, kind, entry_id, entry_version, dedupe_key, max_attempts, run_at, created_at, updated_at) \
             SELECT gen_random_uuid(), family_id, 'embed', entry_id, MAX(entry_version), 'reindex:' || $1 || ':' || entry_id, $2, now(), now(), now() \
             FROM jobs WHERE kind = 'embed' GROUP BY family_id, entry_id ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(tag)
        .bind(MAX_JOB_ATTEMPTS)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn defer_job(&self, id: Uuid, run_at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.worker_tx().await?;
        sqlx::query("UPDATE jobs SET status = 'queued', attempts = GREATEST(attempts - 1, 0), run_at = $2, locked_until = NULL, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(run_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn claim_job(&self, now: DateTime<Utc>, lease: chrono::Duration) -> StoreResult<Option<Job>> {
        // Due jobs first (an index range on (status, run_at)); only when none is
        // due, a running job whose lease ran out. SKIP LOCKED hands each to one worker.
        let mut row = None;
        for due in [
            "SELECT id FROM jobs WHERE status = 'queued' AND run_at <= $1 ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
            "SELECT id FROM jobs WHERE status = 'running' AND locked_until < $1 ORDER BY locked_until, id LIMIT 1 FOR UPDATE SKIP LOCKED",
        ] {
            let mut tx = self.worker_tx().await?;
            let sql = format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_until = $2, updated_at = $1 \
                 WHERE id = ({due}) RETURNING id, family_id, kind, entry_id, entry_version, attempts, max_attempts"
            );
            row = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(now + lease).fetch_optional(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            if row.is_some() {
                break;
            }
        }
        let Some(r) = row else { return Ok(None) };
        let kind: String = r.try_get("kind").map_err(map_err)?;
        Ok(Some(Job {
            id: r.try_get("id").map_err(map_err)?,
            family_id: r.try_get("family_id").map_err(map_err)?,
            kind: JobKind::parse(&kind).ok_or_else(|| StoreError::Conflict(format!("unknown job kind {kind}")))?,
            entry_id: r.try_get("entry_id").map_err(map_err)?,
            entry_version: r.try_get("entry_version").map_err(map_err)?,
            attempts: r.try_get("attempts").map_err(map_err)?,
            max_attempts: r.try_get("max_attempts").map_err(map_err)?,
        }))
    }

    async fn complete_job(&self, id: Uuid) -> StoreResult<()> {
        let mut tx = self.worker_tx().await?;
        sqlx::query("UPDATE jobs SET status = 'done', locked_until = NULL, last_error = NULL, updated_at = now() WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn fail_job(&self, id: Uuid, error: &str, retry_at: Option<DateTime<Utc>>) -> StoreResult<()> {
        let mut tx = self.worker_tx().await?;
        sqlx::query(
            "UPDATE jobs SET status = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'queued' END, \
             run_at = COALESCE($3, run_at), locked_until = NULL, last_error = $2, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(error)
        .bind(retry_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn job_counts(&self, family_id: Option<FamilyId>) -> StoreResult<JobCounts> {
        let mut tx = match family_id {
            Some(f) => self.family_tx(f).await?,
            None => self.worker_tx().await?,
        };
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM jobs WHERE ($1::uuid IS NULL OR family_id = $1) GROUP BY status")
            .bind(family_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
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
