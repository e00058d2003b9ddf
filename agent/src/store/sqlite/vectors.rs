//! `SqliteStore`: the embedded vector index's rows, and which entry version is indexed (for any index).

use super::*;

#[async_trait]
impl VectorStore for SqliteStore {
    async fn put_vector(&self, family_id: FamilyId, v: &VectorRecord) -> StoreResult<()> {
        self.put_vectors(family_id, std::slice::from_ref(v)).await.map(|_| ())
    }
    async fn put_vectors(&self, family_id: FamilyId, records: &[VectorRecord]) -> StoreResult<Vec<EntryId>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for the batch: the records go in as a JSON array (the
        // vector bytes as hex), joined from the list to each entry by id.
        let rows: Vec<serde_json::Value> = records
            .iter()
            .map(|v| {
                serde_json::json!({
                    "id": v.entry_id.to_string(), "version": v.entry_version, "model": v.model, "dims": v.vector.len(),
                    "vector": hex(&vector_to_bytes(&v.flattened())), "member_ids": v.member_ids, "topics": v.topics,
                    "emotions": v.emotions, "occurred_at": ms(v.occurred_at),
                })
            })
            .collect();
        let written: Vec<String> = sqlx::query_scalar(
            "INSERT INTO entry_vectors (entry_id, family_id, entry_version, model, dims, vector, member_ids, topics, emotions, occurred_at) \
             SELECT e.id, e.family_id, x.value ->> '$.version', x.value ->> '$.model', x.value ->> '$.dims', unhex(x.value ->> '$.vector'), \
               x.value -> '$.member_ids', x.value -> '$.topics', x.value -> '$.emotions', x.value ->> '$.occurred_at' \
             FROM json_each($1) AS x CROSS JOIN entries e ON e.id = x.value ->> '$.id' \
             WHERE +e.family_id = $2 \
             ON CONFLICT (entry_id) DO UPDATE SET entry_version = excluded.entry_version, model = excluded.model, \
               dims = excluded.dims, vector = excluded.vector, member_ids = excluded.member_ids, topics = excluded.topics, \
               emotions = excluded.emotions, occurred_at = excluded.occurred_at \
             RETURNING entry_id",
        )
        .bind(serde_json::Value::Array(rows).to_string())
        .bind(family_id.to_string())
        .fetch_all(&self.writer)
        .await
        .map_err(map_err)?;
        // In the records' order, each once.
        Ok(records.iter().map(|r| r.entry_id).filter(|id| written.contains(&id.to_string())).fold(Vec::new(), |mut out, id| {
            if !out.contains(&id) {
                out.push(id);
            }
            out
        }))
    }
    async fn delete_vector(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<()> {
        sqlx::query("DELETE FROM entry_vectors WHERE entry_id = $1 AND family_id = $2")
            .bind(entry_id.to_string())
            .bind(family_id.to_string())
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
    async fn set_vector_payloads(&self, family_id: FamilyId, updates: &[PayloadUpdate]) -> StoreResult<u64> {
        if updates.is_empty() {
            return Ok(0);
        }
        let json = serde_json::to_string(updates).map_err(|e| StoreError::Backend(Box::new(e)))?;
        sqlx::query(
            "UPDATE entry_vectors SET (member_ids, topics, emotions) = \
               (SELECT x.value -> '$.member_ids', x.value -> '$.topics', x.value -> '$.emotions' FROM json_each($1) AS x WHERE x.value ->> '$.entry_id' = entry_vectors.entry_id) \
             WHERE entry_id IN (SELECT x.value ->> '$.entry_id' FROM json_each($1) AS x) AND +family_id = $2",
        )
        .bind(json)
        .bind(family_id.to_string())
        .execute(&self.writer)
        .await
        .map_err(map_err)
        .map(|done| done.rows_affected())
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
                let dims: i64 = r.try_get("dims").map_err(map_err)?;
                let (vector, extra_chunks) = VectorRecord::unflatten(vector_from_bytes(&bytes), dims.max(0) as usize);
                Ok(VectorRecord {
                    entry_id: uuid(r, "entry_id")?,
                    entry_version: r.try_get("entry_version").map_err(map_err)?,
                    model: r.try_get("model").map_err(map_err)?,
                    vector,
                    extra_chunks,
                    member_ids: json_list(r, "member_ids")?,
                    topics: json_list(r, "topics")?,
                    emotions: json_list(r, "emotions")?,
                    occurred_at: at(r.try_get("occurred_at").map_err(map_err)?),
                    terms: Vec::new(),
                })
            })
            .collect()
    }
    async fn vector_generation(&self, family_id: FamilyId) -> StoreResult<i64> {
        let generation: Option<i64> = sqlx::query_scalar("SELECT generation FROM vector_generations WHERE family_id = $1")
            .bind(family_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(generation.unwrap_or(0))
    }
    async fn mark_indexed(&self, family_id: FamilyId, entry_id: EntryId, version: i64) -> StoreResult<()> {
        sqlx::query("UPDATE entries SET indexed_version = $1 WHERE id = $2 AND family_id = $3 AND version = $1")
            .bind(version)
            .bind(entry_id.to_string())
            .bind(family_id.to_string())
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
    async fn mark_indexed_many(&self, family_id: FamilyId, versions: &[(EntryId, i64, String)]) -> StoreResult<Vec<EntryId>> {
        if versions.is_empty() {
            return Ok(Vec::new());
        }
        // Three statements for the batch, whatever its size, in one transaction.
        let list = serde_json::Value::Array(
            versions.iter().map(|(id, version, terms)| serde_json::json!({ "id": id.to_string(), "version": version, "terms": terms })).collect(),
        )
        .to_string();
        // It reads before it writes: it must hold the write lock from the start.
        let mut tx = self.write_tx().await?;
        // Indexed for the first time: at that version now, and not marked at it before.
        let first: Vec<String> = sqlx::query_scalar(
            "SELECT e.id FROM json_each($1) AS x CROSS JOIN entries e ON e.id = x.value ->> '$.id' \
             WHERE +e.family_id = $2 AND e.version = x.value ->> '$.version' AND e.indexed_version IS NOT e.version",
        )
        .bind(&list)
        .bind(family_id.to_string())
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let marked: Vec<String> = sqlx::query_scalar(
            "UPDATE entries SET indexed_version = version \
             WHERE id IN (SELECT x.value ->> '$.id' FROM json_each($1) AS x) AND +family_id = $2 \
               AND version IN (SELECT x.value ->> '$.version' FROM json_each($1) AS x WHERE x.value ->> '$.id' = entries.id) \
             RETURNING id",
        )
        .bind(&list)
        .bind(family_id.to_string())
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO entry_lexicon (entry_id, family, terms) \
             SELECT x.value ->> '$.id', $2, x.value ->> '$.terms' FROM json_each($1) AS x \
             WHERE x.value ->> '$.id' IN (SELECT value FROM json_each($3)) \
             ON CONFLICT (entry_id) DO UPDATE SET terms = excluded.terms",
        )
        .bind(&list)
        .bind(family_token(family_id))
        .bind(to_json(&marked))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(versions.iter().map(|(id, _, _)| *id).filter(|id| first.contains(&id.to_string())).fold(Vec::new(), |mut out, id| {
            if !out.contains(&id) {
                out.push(id);
            }
            out
        }))
    }
    async fn lexical_search(
        &self,
        family_id: FamilyId,
        terms: &[String],
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        limit: usize,
    ) -> StoreResult<Vec<LexicalHit>> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        // Terms are quoted (a quote inside doubled): nothing a parent types is FTS syntax.
        let any = terms.iter().map(|t| format!("\"{}\"", t.replace('"', "\"\""))).collect::<Vec<_>>().join(" OR ");
        let query = format!("family : \"{}\" AND terms : ({any})", family_token(family_id));
        let rows = sqlx::query(
            LEXICAL_SQL,
        )
        .bind(query)
        .bind(family_id.to_string())
        .bind(from.map(ms))
        .bind(to.map(ms))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        // bm25() is lower for better matches; turn it into higher-is-better.
        rows.iter()
            .map(|r| {
                let terms: String = r.try_get("terms").map_err(map_err)?;
                Ok(LexicalHit {
                    entry_id: uuid(r, "entry_id")?,
                    score: -r.try_get::<f64, _>("rank").map_err(map_err)? as f32,
                    terms: terms.split(' ').filter(|t| !t.is_empty()).map(str::to_string).collect(),
                })
            })
            .collect()
    }
    async fn indexed_version(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<Option<i64>> {
        sqlx::query_scalar("SELECT indexed_version FROM entries WHERE id = $1 AND family_id = $2")
            .bind(entry_id.to_string())
            .bind(family_id.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }
}

/// A lexical search. The full-text match runs once, first (materialised):
/// left to itself the planner may scan the family's entries and probe the
/// match once per entry, each probe running the whole match again (70 ms a
/// question at 1,000 entries instead of 3).
const LEXICAL_SQL: &str = "WITH m AS MATERIALIZED (SELECT rowid, bm25(entry_terms, 0.0, 1.0) AS rank FROM entry_terms WHERE entry_terms MATCH $1) \
     SELECT l.entry_id, l.terms, m.rank FROM m CROSS JOIN entry_lexicon l ON l.rowid = m.rowid CROSS JOIN entries e ON e.id = l.entry_id \
     WHERE +e.family_id = $2 AND ($3 IS NULL OR e.occurred_at >= $3) AND ($4 IS NULL OR e.occurred_at < $4) \
     ORDER BY m.rank LIMIT $5";

/// Bytes as lowercase hex (for `unhex()` in a JSON batch).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// The family as one FTS token (no hyphens for the tokenizer to split on).
fn family_token(family_id: FamilyId) -> String {
    format!("f{}", family_id.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn plan(store: &SqliteStore, sql: &str, binds: usize) -> String {
        let mut q = sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
        for _ in 0..binds {
            q = q.bind(Option::<String>::None);
        }
        let rows = q.fetch_all(&store.pool).await.unwrap();
        rows.iter().map(|r| r.try_get::<String, _>("detail").unwrap()).collect::<Vec<_>>().join("\n")
    }

    /// Query plans, not timings: the batch and search statements find rows by
    /// id and run the full-text match once (a family scan here cost 20–35×).
    #[tokio::test]
    async fn hot_statements_look_rows_up_by_id() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        let lexical = plan(&store, LEXICAL_SQL, 5).await;
        let lines: Vec<&str> = lexical.lines().collect();
        let first_scan = lines.iter().position(|l| l.contains("entry_terms VIRTUAL TABLE")).expect(&lexical);
        let entries = lines.iter().position(|l| l.contains("SEARCH e USING") && l.contains("(id=?)")).expect(&lexical);
        assert!(first_scan < entries, "the match runs before entries are looked up:\n{lexical}");
        assert!(!lexical.contains("family_id=?"), "{lexical}");
        let by_id = plan(&store, &super::super::entries::entries_by_id_sql(), 2).await;
        assert!(by_id.contains("(id=?)") && !by_id.contains("family_id=?"), "{by_id}");
    }
}
