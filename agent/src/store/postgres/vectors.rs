//! `PostgresStore`: the embedded vector index's rows, and which entry version is indexed (for any index).

use super::*;

#[async_trait]
impl VectorStore for PostgresStore {
    async fn put_vector(&self, family_id: FamilyId, v: &VectorRecord) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        put_vector_in(&mut tx, family_id, v).await?;
        tx.commit().await.map_err(map_err)
    }
    async fn put_vectors(&self, family_id: FamilyId, records: &[VectorRecord]) -> StoreResult<Vec<EntryId>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        // One row per entry, the last record winning (as one upsert after another would).
        let unique: Vec<&VectorRecord> = records.iter().enumerate().filter(|(i, r)| !records[i + 1..].iter().any(|later| later.entry_id == r.entry_id)).map(|(_, r)| r).collect();
        let mut tx = self.family_tx(family_id).await?;
        let written = put_vectors_in(&mut tx, family_id, &unique).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(records.iter().map(|r| r.entry_id).filter(|id| written.contains(id)).fold(Vec::new(), |mut out, id| {
            if !out.contains(&id) {
                out.push(id);
            }
            out
        }))
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
    async fn set_vector_payloads(&self, family_id: FamilyId, updates: &[PayloadUpdate]) -> StoreResult<u64> {
        if updates.is_empty() {
            return Ok(0);
        }
        let json = serde_json::to_value(updates).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let mut tx = self.family_tx(family_id).await?;
        let done = sqlx::query(
            "UPDATE entry_vectors v SET member_ids = x.member_ids, topics = x.topics, emotions = x.emotions \
             FROM jsonb_to_recordset($1) AS x(entry_id uuid, member_ids uuid[], topics text[], emotions text[]) \
             WHERE v.entry_id = x.entry_id AND v.family_id = $2",
        )
        .bind(json)
        .bind(family_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected())
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
                let all: Vec<f32> = r.try_get("vector").map_err(map_err)?;
                let dims: Option<i32> = r.try_get("chunk_dims").map_err(map_err)?;
                let (vector, extra_chunks) = VectorRecord::unflatten(all, dims.unwrap_or(0).max(0) as usize);
                Ok(VectorRecord {
                    entry_id: r.try_get("entry_id").map_err(map_err)?,
                    entry_version: r.try_get("entry_version").map_err(map_err)?,
                    model: r.try_get("model").map_err(map_err)?,
                    vector,
                    extra_chunks,
                    member_ids: r.try_get("member_ids").map_err(map_err)?,
                    topics: r.try_get("topics").map_err(map_err)?,
                    emotions: r.try_get("emotions").map_err(map_err)?,
                    occurred_at: r.try_get("occurred_at").map_err(map_err)?,
                    terms: Vec::new(),
                })
            })
            .collect()
    }
    async fn vector_generation(&self, family_id: FamilyId) -> StoreResult<i64> {
        let mut tx = self.family_tx(family_id).await?;
        let generation: Option<i64> = sqlx::query_scalar("SELECT generation FROM vector_generations WHERE family_id = $1")
            .bind(family_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(generation.unwrap_or(0))
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
    async fn mark_indexed_many(&self, family_id: FamilyId, versions: &[(EntryId, i64, String)]) -> StoreResult<Vec<EntryId>> {
        // In id order, so two markings lock rows in the same order.
        let mut sorted: Vec<&(EntryId, i64, String)> = versions.iter().collect();
        sorted.sort_by_key(|v| v.0);
        let ids: Vec<EntryId> = sorted.iter().map(|v| v.0).collect();
        let numbers: Vec<i64> = sorted.iter().map(|v| v.1).collect();
        let terms: Vec<&str> = sorted.iter().map(|v| v.2.as_str()).collect();
        let mut tx = self.family_tx(family_id).await?;
        // Each entry by its key, under its row lock, so two markings cannot
        // both count as the first (migrations/postgres/0018_mark_indexed_by_key.sql).
        let first: Vec<EntryId> = sqlx::query_scalar("SELECT dadly_mark_indexed($1, $2, $3, $4)")
            .bind(family_id)
            .bind(&ids)
            .bind(&numbers)
            .bind(&terms)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(first)
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
        let mut tx = self.family_tx(family_id).await?;
        // Each term a quoted lexeme (quote_literal), OR-ed: nothing typed is tsquery syntax.
        let rows = sqlx::query(
            "WITH q AS (SELECT array_to_string(ARRAY(SELECT quote_literal(x) FROM unnest($1::text[]) AS x), ' | ')::tsquery AS q) \
             SELECT t.entry_id, tsvector_to_array(t.terms) AS terms, ts_rank(t.terms, q.q) AS score FROM entry_terms t JOIN entries e ON e.id = t.entry_id, q \
             WHERE t.family_id = $2 AND t.terms @@ q.q AND ($3::timestamptz IS NULL OR e.occurred_at >= $3) AND ($4::timestamptz IS NULL OR e.occurred_at < $4) \
             ORDER BY score DESC, e.occurred_at DESC LIMIT $5",
        )
        .bind(terms)
        .bind(family_id)
        .bind(from)
        .bind(to)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(LexicalHit {
                    entry_id: r.try_get("entry_id").map_err(map_err)?,
                    score: r.try_get::<f32, _>("score").map_err(map_err)?,
                    terms: r.try_get("terms").map_err(map_err)?,
                })
            })
            .collect()
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
}

/// Writes many vectors in one statement: the floats of all of them as one
/// binary `real[]` (sliced per row: parsing them from JSON text took most of
/// the write, and JSON has no NaN), the rest of each row as JSON. Each entry
/// is found by its key (a lateral subquery, kept apart by `OFFSET 0`): as a
/// join, a planner that thought the family small scanned all of its entries
/// for every batch.
async fn put_vectors_in(tx: &mut Tx, family_id: FamilyId, records: &[&VectorRecord]) -> StoreResult<Vec<EntryId>> {
    let mut floats: Vec<f32> = Vec::with_capacity(records.iter().map(|v| v.chunk_vectors().map(Vec::len).sum::<usize>()).sum());
    let rows: Vec<serde_json::Value> = records
        .iter()
        .map(|v| {
            let start = floats.len();
            floats.extend(v.chunk_vectors().flatten());
            serde_json::json!({
                "entry_id": v.entry_id, "entry_version": v.entry_version, "model": v.model, "first": start + 1, "last": floats.len(),
                "member_ids": v.member_ids, "topics": v.topics, "emotions": v.emotions, "occurred_at": v.occurred_at,
                "chunk_dims": v.vector.len(),
            })
        })
        .collect();
    sqlx::query_scalar(
        "INSERT INTO entry_vectors (entry_id, family_id, entry_version, model, vector, member_ids, topics, emotions, occurred_at, chunk_dims) \
         SELECT e.id, e.family_id, x.entry_version, x.model, COALESCE(($3::real[])[x.first:x.last], '{}'), x.member_ids, x.topics, x.emotions, x.occurred_at, x.chunk_dims \
         FROM jsonb_to_recordset($1) AS x(entry_id uuid, entry_version bigint, model text, first integer, last integer, member_ids uuid[], topics text[], \
                                           emotions text[], occurred_at timestamptz, chunk_dims integer) \
         CROSS JOIN LATERAL (SELECT id, family_id FROM entries WHERE id = x.entry_id AND family_id = $2 OFFSET 0) e \
         ON CONFLICT (entry_id) DO UPDATE SET entry_version = excluded.entry_version, model = excluded.model, \
           vector = excluded.vector, chunk_dims = excluded.chunk_dims, member_ids = excluded.member_ids, topics = excluded.topics, \
           emotions = excluded.emotions, occurred_at = excluded.occurred_at \
         RETURNING entry_id",
    )
    .bind(serde_json::Value::Array(rows))
    .bind(family_id)
    .bind(floats)
    .fetch_all(&mut **tx)
    .await
    .map_err(map_err)
}

/// Writes one vector in the family's transaction; false when the entry is gone.
async fn put_vector_in(tx: &mut Tx, family_id: FamilyId, v: &VectorRecord) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO entry_vectors (entry_id, family_id, entry_version, model, vector, member_ids, topics, emotions, occurred_at, chunk_dims) \
         SELECT id, family_id, $3, $4, $5, $6, $7, $8, $9, $10 FROM entries WHERE id = $1 AND family_id = $2 \
         ON CONFLICT (entry_id) DO UPDATE SET entry_version = excluded.entry_version, model = excluded.model, \
           vector = excluded.vector, chunk_dims = excluded.chunk_dims, member_ids = excluded.member_ids, topics = excluded.topics, \
           emotions = excluded.emotions, occurred_at = excluded.occurred_at",
    )
    .bind(v.entry_id)
    .bind(family_id)
    .bind(v.entry_version)
    .bind(&v.model)
    .bind(v.flattened())
    .bind(&v.member_ids)
    .bind(&v.topics)
    .bind(&v.emotions)
    .bind(v.occurred_at)
    .bind(v.vector.len() as i32)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(done.rows_affected() > 0)
}
