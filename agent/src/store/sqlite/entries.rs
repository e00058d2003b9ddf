//! `SqliteStore`: entries with their history and insights, chat memory and model spend.

use super::*;

/// Many of a family's entries by id (`$1` the family, `$2` a JSON list of
/// ids), looked up by id: `+` keeps the planner off the family index, which
/// would scan every entry of the family for each batch.
pub(super) fn entries_by_id_sql() -> String {
    format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE +e.family_id = $1 AND e.id IN (SELECT value FROM json_each($2))")
}

/// Inserts an entry (members, pending media, jobs) inside a caller's transaction.
pub(super) async fn insert_entry_tx(tx: &mut sqlx::SqliteConnection, family_id: FamilyId, id: EntryId, entry: &NewEntry, jobs: &[JobKind]) -> StoreResult<()> {
    insert_entry_row(&mut *tx, family_id, id, entry, Utc::now()).await?;
    insert_entry_rest(tx, family_id, id, entry, jobs).await
}

/// The entry's own row, written only when its author is of the family
/// (`NotFound` otherwise, with nothing written).
async fn insert_entry_row(tx: &mut sqlx::SqliteConnection, family_id: FamilyId, id: EntryId, entry: &NewEntry, now: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query(INSERT_ENTRY_SQL)
    .bind(id.to_string())
    .bind(entry.author_id.to_string())
    .bind(entry.source.as_str())
    .bind(&entry.raw_text)
    .bind(ms(entry.occurred_at))
    .bind(ms(now))
    .bind(family_id.to_string())
    .bind(entry.status.as_str())
    .bind(&entry.external_key)
    .bind(&entry.reply_to)
    .execute(&mut *tx)
    .await
    .map_err(map_err)
    .and_then(|r| if r.rows_affected() == 1 { Ok(()) } else { Err(StoreError::NotFound) })
}

/// An entry's members, pending media and jobs, after its row.
async fn insert_entry_rest(tx: &mut sqlx::SqliteConnection, family_id: FamilyId, id: EntryId, entry: &NewEntry, jobs: &[JobKind]) -> StoreResult<()> {
    add_entry_members(&mut *tx, family_id, id, &entry.member_ids).await?;
    for m in &entry.media {
        insert_pending_media(&mut *tx, family_id, id, m).await?;
    }
    enqueue(&mut *tx, family_id, id, 1, jobs).await
}

/// The entry as its row reads back right after it was written, without
/// reading it (instants are kept to the millisecond, as stored).
fn written_entry(family_id: FamilyId, id: EntryId, entry: NewEntry, now: DateTime<Utc>) -> Entry {
    let mut member_ids = entry.member_ids;
    member_ids.sort();
    member_ids.dedup();
    let now = at(ms(now));
    Entry {
        id,
        family_id,
        author_id: entry.author_id,
        source: entry.source,
        raw_text: entry.raw_text,
        member_ids,
        occurred_at: at(ms(entry.occurred_at)),
        created_at: now,
        updated_at: now,
        version: 1,
        status: entry.status,
        reply_to: entry.reply_to,
    }
}

/// Writes waiting for the writer (new entries, chat turns), and the turn to write them.
///
/// SQLite has one writer at a time. Each caller queues its write and waits
/// for the turn (fair, first come first served); whoever gets it writes
/// everything queued by then in one transaction, and hands each caller its
/// own outcome. Under a burst that is one `BEGIN`/`COMMIT` (and one WAL
/// commit) for many messages, and no connection sleeps in SQLite's busy
/// handler waiting for another.
#[derive(Default)]
pub(super) struct GroupCommit {
    queued: std::sync::Mutex<Vec<Queued>>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

pub(super) enum Queued {
    Entry { family_id: FamilyId, id: EntryId, entry: NewEntry, jobs: Vec<JobKind>, now: DateTime<Utc>, done: tokio::sync::oneshot::Sender<StoreResult<Entry>> },
    Turns { family_id: FamilyId, user_id: UserId, turns: Vec<ChatTurn>, done: tokio::sync::oneshot::Sender<StoreResult<()>> },
}

impl SqliteStore {
    /// Does the write with whatever else is queued (see `GroupCommit`).
    async fn grouped<T>(&self, write: Queued, mut outcome: tokio::sync::oneshot::Receiver<StoreResult<T>>) -> StoreResult<T> {
        self.group_commit.queued.lock().unwrap_or_else(|e| e.into_inner()).push(write);
        let turn = self.group_commit.turn.clone().lock_owned().await;
        // Written by an earlier turn while this one waited?
        if let Ok(result) = outcome.try_recv() {
            return result;
        }
        let group = std::mem::take(&mut *self.group_commit.queued.lock().unwrap_or_else(|e| e.into_inner()));
        // On its own task, holding the turn: a caller that goes away (a
        // client hung up) does not take the others' writes with it.
        let writer = self.writer.clone();
        tokio::spawn(async move {
            write_group(&writer, group).await;
            drop(turn);
        });
        outcome.await.unwrap_or_else(|_| Err(StoreError::Unavailable("the write was dropped".into())))
    }
}

/// Writes the group (`direct::write_group`) and hands each caller its
/// outcome; a caller may have gone (a dropped request): its write is done all
/// the same.
async fn write_group(pool: &SqlitePool, group: Vec<Queued>) {
    let outcomes = super::direct::write_group(pool, &group).await;
    for (q, outcome) in group.into_iter().zip(outcomes) {
        match q {
            Queued::Entry { family_id, id, entry, now, done, .. } => {
                let _ = done.send(outcome.map(|()| written_entry(family_id, id, entry, now)));
            }
            Queued::Turns { done, .. } => {
                let _ = done.send(outcome);
            }
        }
    }
}

#[async_trait]
impl EntryStore for SqliteStore {
    async fn insert_entry(&self, family_id: FamilyId, entry: NewEntry, jobs: &[JobKind]) -> StoreResult<Entry> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let write = Queued::Entry { family_id, id: Uuid::now_v7(), entry, jobs: jobs.to_vec(), now: Utc::now(), done };
        self.grouped(write, outcome).await
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
        let sql = entries_by_id_sql();
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
        let mut tx = self.write_tx().await?;
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
        let mut tx = self.write_tx().await?;
        let version: i64 = sqlx::query_scalar("SELECT version FROM entries WHERE id = $1 AND family_id = $2")
            .bind(id.to_string())
            .bind(family_id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        // Children go by ON DELETE CASCADE (insights, vectors, members, history);
        // media rows would only lose their entry (SET NULL): they go too.
        sqlx::query("DELETE FROM media WHERE entry_id = $1 AND family_id = $2").bind(id.to_string()).bind(family_id.to_string()).execute(&mut *tx).await.map_err(map_err)?;
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
    async fn put_insights(&self, family_id: FamilyId, insights: &[Insight]) -> StoreResult<Vec<EntryId>> {
        if insights.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for the whole batch: the insights go in as a JSON
        // array, and only those for their entry's current version are written.
        // One row per entry, the last insight winning.
        let rows: Vec<serde_json::Value> = insights
            .iter()
            .enumerate()
            .filter(|(n, i)| !insights[n + 1..].iter().any(|later| later.entry_id == i.entry_id))
            .map(|(_, i)| {
                serde_json::json!({
                    "entry_id": i.entry_id.to_string(), "entry_version": i.entry_version, "summary": i.summary,
                    "topics": i.topics, "emotions": i.emotions, "member_ids": i.member_ids, "model": i.model,
                    "prompt_name": i.prompt_name, "prompt_version": i.prompt_version, "created_at": ms(i.created_at),
                })
            })
            .collect();
        let written: Vec<String> = sqlx::query_scalar(
            "INSERT INTO entry_insights (entry_id, family_id, entry_version, summary, topics, emotions, member_ids, model, prompt_name, prompt_version, created_at) \
             SELECT e.id, e.family_id, e.version, x.value ->> '$.summary', x.value -> '$.topics', x.value -> '$.emotions', x.value -> '$.member_ids', \
               x.value ->> '$.model', x.value ->> '$.prompt_name', x.value ->> '$.prompt_version', x.value ->> '$.created_at' \
             FROM json_each($2) AS x CROSS JOIN entries e ON e.id = x.value ->> '$.entry_id' AND e.version = x.value ->> '$.entry_version' \
             WHERE e.family_id = $1 \
             ON CONFLICT (entry_id) DO UPDATE SET entry_version = excluded.entry_version, summary = excluded.summary, \
               topics = excluded.topics, emotions = excluded.emotions, member_ids = excluded.member_ids, model = excluded.model, \
               prompt_name = excluded.prompt_name, prompt_version = excluded.prompt_version, created_at = excluded.created_at \
             RETURNING entry_id",
        )
        .bind(family_id.to_string())
        .bind(serde_json::Value::Array(rows).to_string())
        .fetch_all(&self.writer)
        .await
        .map_err(map_err)?;
        written.iter().map(|id| id.parse().map_err(|e| StoreError::Backend(Box::new(e)))).collect()
    }
    async fn get_insight(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<Option<Insight>> {
        Ok(self.get_insights(family_id, &[entry_id]).await?.pop())
    }
    async fn get_insights(&self, family_id: FamilyId, entry_ids: &[EntryId]) -> StoreResult<Vec<Insight>> {
        if entry_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = entry_ids.iter().map(|id| id.to_string()).collect();
        let rows = sqlx::query("SELECT * FROM entry_insights WHERE +family_id = $1 AND entry_id IN (SELECT value FROM json_each($2))")
            .bind(family_id.to_string())
            .bind(to_json(&ids))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(Insight {
                    entry_id: uuid(r, "entry_id")?,
                    entry_version: r.try_get("entry_version").map_err(map_err)?,
                    summary: r.try_get("summary").map_err(map_err)?,
                    topics: json_list(r, "topics")?,
                    emotions: json_list(r, "emotions")?,
                    member_ids: json_list(r, "member_ids")?,
                    model: r.try_get("model").map_err(map_err)?,
                    prompt_name: r.try_get("prompt_name").map_err(map_err)?,
                    prompt_version: r.try_get("prompt_version").map_err(map_err)?,
                    created_at: at(r.try_get("created_at").map_err(map_err)?),
                })
            })
            .collect()
    }
    async fn media_descriptions(&self, family_id: FamilyId, entry_ids: &[EntryId]) -> StoreResult<Vec<(EntryId, String)>> {
        if entry_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = entry_ids.iter().map(|id| id.to_string()).collect();
        let rows = sqlx::query(
            "SELECT entry_id, description FROM media WHERE family_id = $1 AND entry_id IN (SELECT value FROM json_each($2)) \
             AND description IS NOT NULL ORDER BY created_at, id",
        )
        .bind(family_id.to_string())
        .bind(to_json(&ids))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(|r| Ok((uuid(r, "entry_id")?, r.try_get("description").map_err(map_err)?))).collect()
    }
    async fn add_chat_turns(&self, family_id: FamilyId, user_id: UserId, turns: &[ChatTurn]) -> StoreResult<()> {
        if turns.is_empty() {
            return Ok(());
        }
        // With the other writes queued at the time: a message and its reply
        // in one transaction, and no transaction of their own.
        let (done, outcome) = tokio::sync::oneshot::channel();
        self.grouped(Queued::Turns { family_id, user_id, turns: turns.to_vec(), done }, outcome).await
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
        .execute(&self.writer)
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
    async fn fill_entry_text(&self, family_id: FamilyId, id: EntryId, text: &str, member_ids: &[MemberId], jobs: &[JobKind]) -> StoreResult<Entry> {
        let mut tx = self.write_tx().await?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ChannelStore, FamilyStore, JobQueue, NewMember};

    fn note(text: &str, author: UserId, members: Vec<MemberId>, key: Option<&str>) -> NewEntry {
        NewEntry { author_id: author, source: Source::Web, raw_text: text.into(), member_ids: members, occurred_at: Utc::now(), dedupe_key: key.map(str::to_string), ..Default::default() }
    }

    /// A note that is part of an album (a unique key within the family).
    fn album(text: &str, author: UserId, key: &str) -> NewEntry {
        NewEntry { external_key: Some(key.into()), ..note(text, author, vec![], None) }
    }

    /// Queues every write while the turn is held, so they are written as one
    /// group, then lets them go; returns each write's outcome in order.
    async fn one_group(store: &Arc<SqliteStore>, family_id: FamilyId, notes: Vec<NewEntry>, turns: (UserId, ChatTurn)) -> (Vec<StoreResult<Entry>>, StoreResult<()>) {
        let turn = store.group_commit.turn.clone().lock_owned().await;
        let queued = |store: &Arc<SqliteStore>| store.group_commit.queued.lock().unwrap().len();
        let mut tasks = Vec::new();
        for n in notes {
            let s = store.clone();
            tasks.push(tokio::spawn(async move { s.insert_entry(family_id, n, &[JobKind::Embed, JobKind::Enrich]).await }));
            // One at a time, so the group keeps this order.
            while queued(store) < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        let s = store.clone();
        let chat = tokio::spawn(async move { s.add_chat_turns(family_id, turns.0, &[turns.1]).await });
        while queued(store) < tasks.len() + 1 {
            tokio::task::yield_now().await;
        }
        drop(turn);
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        (outcomes, chat.await.unwrap())
    }

    #[tokio::test]
    async fn a_group_commit_gives_each_write_its_own_outcome() {
        let dir = tempfile::tempdir().unwrap();
        group_commit_outcomes(&format!("sqlite://{}", dir.path().join("t.db").display())).await;
    }

    /// In memory, the one connection's handle is borrowed from sqlx for the
    /// group and for the reads (`direct`), instead of the store's own readers.
    #[tokio::test]
    async fn a_group_commit_in_memory_gives_each_write_its_own_outcome() {
        group_commit_outcomes("sqlite::memory:").await;
    }

    async fn group_commit_outcomes(url: &str) {
        let store = Arc::new(SqliteStore::connect(url).await.unwrap());
        let kim = store.create_family("Kim").await.unwrap();
        let lee = store.create_family("Lee").await.unwrap();
        let dad = store.create_user(kim.id, "Dad").await.unwrap();
        let stranger = store.create_user(lee.id, "Stranger").await.unwrap();
        let minji = store.create_member(kim.id, NewMember { name: "Minji".into(), aliases: vec![], birth_date: None }).await.unwrap();
        let sora = store.create_member(lee.id, NewMember { name: "Sora".into(), aliases: vec![], birth_date: None }).await.unwrap();
        let said = |text: &str| ChatTurn { chat_id: "web".into(), role: "user".into(), content: text.into(), created_at: Utc::now() };

        // Refused cleanly (a repeated update key, an author of another family,
        // an album key taken): the rest of the group is committed with them.
        let (outcomes, chat) = one_group(
            &store,
            kim.id,
            vec![
                note("Minji lost a tooth", dad.id, vec![minji.id], Some("update-1")),
                note("the same update again", dad.id, vec![], Some("update-1")),
                note("written as someone of another family", stranger.id, vec![], None),
                album("the beach。바다、🌊", dad.id, "album-1"),
                album("the same album again", dad.id, "album-1"),
                note("준호가 자전거를 탔다 🚲", dad.id, vec![], None),
            ],
            (dad.id, said("first group")),
        )
        .await;
        assert!(matches!(outcomes[1], Err(StoreError::AlreadyHandled)), "{:?}", outcomes[1]);
        assert!(matches!(outcomes[2], Err(StoreError::NotFound)), "{:?}", outcomes[2]);
        assert!(matches!(outcomes[4], Err(StoreError::Conflict(_))), "{:?}", outcomes[4]);
        chat.unwrap();
        let mut kept = Vec::new();
        for i in [0, 3, 5] {
            let written = outcomes[i].as_ref().unwrap().clone();
            // What the caller is handed is what the row reads back as.
            assert_eq!(store.get_entry(kim.id, written.id).await.unwrap(), written);
            kept.push(written.id);
        }
        assert_eq!(outcomes[0].as_ref().unwrap().member_ids, vec![minji.id]);

        // A child of another family is refused after the entry's row was
        // written: the group is rolled back and each write done on its own,
        // so that entry leaves nothing (not its row, not its update key) and
        // the others are all kept.
        let (outcomes, chat) = one_group(
            &store,
            kim.id,
            vec![
                note("Minji sang", dad.id, vec![minji.id], Some("update-2")),
                note("about someone else's child", dad.id, vec![sora.id], Some("update-3")),
                note("the first update once more", dad.id, vec![], Some("update-1")),
                note("Minji read a book", dad.id, vec![minji.id], None),
            ],
            (dad.id, said("second group")),
        )
        .await;
        assert!(matches!(outcomes[1], Err(StoreError::NotFound)), "{:?}", outcomes[1]);
        assert!(matches!(outcomes[2], Err(StoreError::AlreadyHandled)), "{:?}", outcomes[2]);
        chat.unwrap();
        for i in [0, 3] {
            let written = outcomes[i].as_ref().unwrap().clone();
            assert_eq!(store.get_entry(kim.id, written.id).await.unwrap(), written);
            kept.push(written.id);
        }
        assert!(store.claim_update(kim.id, "update-3").await.unwrap(), "the refused entry's update key was rolled back with it");

        let mut stored: Vec<EntryId> = store.list_entries(kim.id, &EntryFilter { limit: 100, ..Default::default() }).await.unwrap().into_iter().map(|e| e.id).collect();
        stored.sort();
        kept.sort();
        assert_eq!(stored, kept, "exactly the entries reported written");
        assert_eq!(store.job_counts(Some(kim.id)).await.unwrap().queued, 10, "two jobs for each, once");
        let remembered: Vec<String> = store.recent_chat_turns(kim.id, "web", 10).await.unwrap().into_iter().map(|t| t.content).collect();
        assert_eq!(remembered, vec!["first group", "second group"]);

        // The reads every message makes, and a token's user of no family.
        assert_eq!(store.get_user(dad.id).await.unwrap(), dad);
        assert!(matches!(store.get_user(Uuid::now_v7()).await, Err(StoreError::NotFound)));
        assert_eq!(store.list_members(kim.id).await.unwrap(), vec![minji]);
        assert_eq!(store.list_members(lee.id).await.unwrap(), vec![sora]);
    }
}
