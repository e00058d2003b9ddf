//! `PostgresStore`: entries with their history and insights, chat memory and model spend.

use super::*;

/// A chat's latest turns, newest first: served in the order of the
/// `chat_turns_chat` index, so it reads `$3` rows however long the chat is.
#[doc(hidden)]
pub const RECENT_CHAT_TURNS_SQL: &str = "SELECT chat_id, role, content, created_at FROM chat_turns WHERE family_id = $1 AND chat_id = $2 \
     ORDER BY created_at DESC, id DESC LIMIT $3";

/// Inserts an entry (members, pending media, jobs) inside a caller's
/// transaction, claiming `claim` with it; returns it.
pub(super) async fn insert_entry_tx(tx: &mut Tx, family_id: FamilyId, id: EntryId, entry: &NewEntry, jobs: &[JobKind], claim: Option<&str>) -> StoreResult<Entry> {
    let created = insert_entry_row(&mut **tx, family_id, id, entry, jobs, claim).await?;
    for m in &entry.media {
        insert_pending_media(tx, family_id, id, m).await?;
    }
    Ok(created)
}

/// The entry's row, its member links and its jobs, and the update key to
/// claim if any, in one round trip (`dadly_insert_entry_claimed`,
/// migrations/postgres/0021_insert_entry_claimed.sql): in a transaction, or
/// on its own when there is nothing else to write. Nothing is written when
/// the author or a child named is not of the family, or the key was claimed
/// before. The entry is handed back as written rather than read again.
async fn insert_entry_row<'e>(exec: impl sqlx::PgExecutor<'e>, family_id: FamilyId, id: EntryId, entry: &NewEntry, jobs: &[JobKind], claim: Option<&str>) -> StoreResult<Entry> {
    use chrono::SubsecRound;
    let now = stored_now();
    let mut member_ids = entry.member_ids.clone();
    member_ids.sort();
    member_ids.dedup();
    let job_ids: Vec<Uuid> = jobs.iter().map(|_| Uuid::now_v7()).collect();
    let job_kinds: Vec<&str> = jobs.iter().map(|k| k.as_str()).collect();
    let job_keys: Vec<String> = jobs.iter().map(|kind| NewJob { kind: *kind, entry_id: id, entry_version: 1 }.dedupe_key()).collect();
    let row = sqlx::query("SELECT * FROM dadly_insert_entry_claimed($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)")
        .bind(family_id)
        .bind(id)
        .bind(entry.author_id)
        .bind(entry.source.as_str())
        .bind(&entry.raw_text)
        .bind(entry.occurred_at)
        .bind(now)
        .bind(entry.status.as_str())
        .bind(&entry.external_key)
        .bind(&entry.reply_to)
        .bind(&member_ids)
        .bind(MAX_JOB_ATTEMPTS)
        .bind(&job_ids)
        .bind(&job_kinds)
        .bind(&job_keys)
        .bind(claim)
        .fetch_one(exec)
        .await
        .map_err(map_err)?;
    let count = |column: &str| row.try_get::<i64, _>(column).map_err(map_err);
    if count("n_allowed")? != 1 {
        return Err(StoreError::NotFound);
    }
    if claim.is_some() && count("n_claimed")? != 1 {
        return Err(StoreError::AlreadyHandled);
    }
    if count("n_entries")? != 1 {
        return Err(StoreError::NotFound);
    }
    Ok(Entry {
        id,
        family_id,
        author_id: entry.author_id,
        source: entry.source,
        raw_text: entry.raw_text.clone(),
        member_ids,
        // As stored: timestamptz keeps microseconds.
        occurred_at: entry.occurred_at.trunc_subsecs(6),
        created_at: now,
        updated_at: now,
        version: 1,
        status: entry.status,
        reply_to: entry.reply_to.clone(),
    })
}

#[async_trait]
impl EntryStore for PostgresStore {
    async fn insert_entry(&self, family_id: FamilyId, entry: NewEntry, jobs: &[JobKind]) -> StoreResult<Entry> {
        let id = Uuid::now_v7();
        // Nothing else to write (a web, chat or Telegram text note): one round trip.
        if entry.media.is_empty() {
            return insert_entry_row(&self.pool, family_id, id, &entry, jobs, entry.dedupe_key.as_deref()).await;
        }
        // With media: the media rows roll back with the entry and its claim.
        let mut tx = self.family_tx(family_id).await?;
        let created = insert_entry_tx(&mut tx, family_id, id, &entry, jobs, entry.dedupe_key.as_deref()).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(created)
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
        let ids = distinct(ids);
        let mut tx = self.family_tx(family_id).await?;
        // Each by its key (see `distinct`).
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM unnest($2::uuid[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM entries WHERE id = k.id AND family_id = $1 OFFSET 0) e");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(family_id).bind(&ids).fetch_all(&mut *tx).await.map_err(map_err)?;
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
        // Media rows would only lose their entry (SET NULL): they go too.
        sqlx::query("DELETE FROM media WHERE entry_id = $1 AND family_id = $2").bind(id).bind(family_id).execute(&mut *tx).await.map_err(map_err)?;
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
    async fn put_insights(&self, family_id: FamilyId, insights: &[Insight]) -> StoreResult<Vec<EntryId>> {
        if insights.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for the whole batch: the insights go in as a JSON
        // array, and only those for their entry's current version are written.
        // One row per entry, the last insight winning (ON CONFLICT may touch a row only once).
        // Each entry is found by its key (see `put_vectors_in`).
        let rows: Vec<serde_json::Value> = insights
            .iter()
            .enumerate()
            .filter(|(n, i)| !insights[n + 1..].iter().any(|later| later.entry_id == i.entry_id))
            .map(|(_, i)| {
                serde_json::json!({
                    "entry_id": i.entry_id, "entry_version": i.entry_version, "summary": i.summary,
                    "topics": i.topics, "emotions": i.emotions, "member_ids": i.member_ids, "model": i.model,
                    "prompt_name": i.prompt_name, "prompt_version": i.prompt_version, "created_at": i.created_at,
                })
            })
            .collect();
        let mut tx = self.family_tx(family_id).await?;
        let written: Vec<EntryId> = sqlx::query_scalar(
            "INSERT INTO entry_insights (entry_id, family_id, entry_version, summary, topics, emotions, member_ids, model, prompt_name, prompt_version, created_at) \
             SELECT e.id, e.family_id, e.version, x.summary, x.topics, x.emotions, x.member_ids, x.model, x.prompt_name, x.prompt_version, x.created_at \
             FROM jsonb_to_recordset($2) AS x(entry_id uuid, entry_version bigint, summary text, topics text[], emotions text[], member_ids uuid[], \
                                               model text, prompt_name text, prompt_version text, created_at timestamptz) \
             CROSS JOIN LATERAL (SELECT id, family_id, version FROM entries WHERE id = x.entry_id AND version = x.entry_version AND family_id = $1 OFFSET 0) e \
             ON CONFLICT (entry_id) DO UPDATE SET entry_version = excluded.entry_version, summary = excluded.summary, \
               topics = excluded.topics, emotions = excluded.emotions, member_ids = excluded.member_ids, model = excluded.model, \
               prompt_name = excluded.prompt_name, prompt_version = excluded.prompt_version, created_at = excluded.created_at \
             RETURNING entry_id",
        )
        .bind(family_id)
        .bind(serde_json::Value::Array(rows))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(written)
    }
    async fn get_insight(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<Option<Insight>> {
        Ok(self.get_insights(family_id, &[entry_id]).await?.pop())
    }
    async fn get_insights(&self, family_id: FamilyId, entry_ids: &[EntryId]) -> StoreResult<Vec<Insight>> {
        if entry_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = distinct(entry_ids);
        let mut tx = self.family_tx(family_id).await?;
        let rows = sqlx::query("SELECT i.* FROM unnest($2::uuid[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM entry_insights WHERE entry_id = k.id AND family_id = $1 OFFSET 0) i")
            .bind(family_id)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
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
            .collect()
    }
    async fn media_descriptions(&self, family_id: FamilyId, entry_ids: &[EntryId]) -> StoreResult<Vec<(EntryId, String)>> {
        if entry_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.family_tx(family_id).await?;
        let rows: Vec<(EntryId, String)> = sqlx::query_as(
            "SELECT entry_id, description FROM media WHERE family_id = $1 AND entry_id = ANY($2) AND description IS NOT NULL ORDER BY created_at, id",
        )
        .bind(family_id)
        .bind(entry_ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(rows)
    }
    async fn add_chat_turns(&self, family_id: FamilyId, user_id: UserId, turns: &[ChatTurn]) -> StoreResult<()> {
        if turns.is_empty() {
            return Ok(());
        }
        // One statement for all of them, in order (ids are time-ordered).
        let ids: Vec<Uuid> = turns.iter().map(|_| Uuid::now_v7()).collect();
        let chats: Vec<&str> = turns.iter().map(|t| t.chat_id.as_str()).collect();
        let roles: Vec<&str> = turns.iter().map(|t| t.role.as_str()).collect();
        let contents: Vec<&str> = turns.iter().map(|t| t.content.as_str()).collect();
        let times: Vec<DateTime<Utc>> = turns.iter().map(|t| t.created_at).collect();
        // In one round trip (see `get_user`).
        sqlx::query("SELECT dadly_add_chat_turns($1, $2, $3, $4, $5, $6, $7)")
        .bind(family_id)
        .bind(user_id)
        .bind(&ids)
        .bind(&chats)
        .bind(&roles)
        .bind(&contents)
        .bind(&times)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }
    async fn recent_chat_turns(&self, family_id: FamilyId, chat_id: &str, limit: u32) -> StoreResult<Vec<ChatTurn>> {
        let mut tx = self.family_tx(family_id).await?;
        let rows = sqlx::query(RECENT_CHAT_TURNS_SQL)
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
}

/// The ids once each, for a batch read that finds each row by its key.
///
/// Batch reads and writes reach each row through a lateral subquery on its
/// key, kept apart from the rest of the query by `OFFSET 0`. Written as a
/// join or `family_id = $1 AND id = ANY($2)`, the plan depends on how large
/// the planner thinks the family is. A table without statistics yet, or a
/// family larger than the average, had all of the family's rows scanned for
/// each batch (40 ms a statement at 5,000 entries, under load).
fn distinct(ids: &[EntryId]) -> Vec<EntryId> {
    let mut out = ids.to_vec();
    out.sort_unstable();
    out.dedup();
    out
}
