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
    sqlx::query(
        "INSERT INTO entries (id, family_id, author_id, source, raw_text, occurred_at, created_at, updated_at, version, status, external_key, reply_to) \
         SELECT $1, family_id, id, $3, $4, $5, $6, $6, 1, $8, $9, $10 FROM users WHERE id = $2 AND family_id = $7",
    )
    .bind(id.to_string())
    .bind(entry.author_id.to_string())
    .bind(entry.source.as_str())
    .bind(&entry.raw_text)
    .bind(ms(entry.occurred_at))
    .bind(ms(Utc::now()))
    .bind(family_id.to_string())
    .bind(entry.status.as_str())
    .bind(&entry.external_key)
    .bind(&entry.reply_to)
    .execute(&mut *tx)
    .await
    .map_err(map_err)
    .and_then(|r| if r.rows_affected() == 1 { Ok(()) } else { Err(StoreError::NotFound) })?;
    add_entry_members(&mut *tx, family_id, id, &entry.member_ids).await?;
    for m in &entry.media {
        insert_pending_media(&mut *tx, family_id, id, m).await?;
    }
    enqueue(&mut *tx, family_id, id, 1, jobs).await
}

#[async_trait]
impl EntryStore for SqliteStore {
    async fn insert_entry(&self, family_id: FamilyId, entry: NewEntry, jobs: &[JobKind]) -> StoreResult<Entry> {
        let id = Uuid::now_v7();
        let mut tx = self.write_tx().await?;
        if let Some(key) = &entry.dedupe_key
            && !claim(&mut tx, family_id, key).await?
        {
            return Err(StoreError::AlreadyHandled);
        }
        insert_entry_tx(&mut tx, family_id, id, &entry, jobs).await?;
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
        .fetch_all(&self.pool)
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
        // One statement (atomic by itself): a message and its reply, no
        // transaction round trips. Bound as parameters, so any text (a model's
        // reply included) is stored exactly.
        // (In pieces of 1,000 rows, within SQLite's 32,766 parameters.)
        for piece in turns.chunks(1_000) {
            let rows = vec!["(?, ?, ?, ?, ?, ?, ?)"; piece.len()].join(", ");
            let sql = format!("INSERT INTO chat_turns (id, family_id, user_id, chat_id, role, content, created_at) VALUES {rows}");
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for t in piece {
                query = query.bind(Uuid::now_v7().to_string()).bind(family_id.to_string()).bind(user_id.to_string()).bind(&t.chat_id).bind(&t.role).bind(&t.content).bind(ms(t.created_at));
            }
            query.execute(&self.pool).await.map_err(map_err)?;
        }
        Ok(())
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
