//! `SqliteStore`: erasure — every copy of what is erased, and the audit record that it was.

use super::*;

#[async_trait]
impl ErasureStore for SqliteStore {
    async fn forget_text(&self, family_id: FamilyId, needles: &[String]) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let mut n = 0;
        for needle in needles.iter().filter(|n| !n.is_empty()) {
            for sql in [
                "DELETE FROM chat_turns WHERE family_id = $1 AND instr(content, $2) > 0",
                "DELETE FROM idempotency_keys WHERE family_id = $1 AND instr(COALESCE(body, ''), $2) > 0",
            ] {
                n += sqlx::query(sql).bind(family_id.to_string()).bind(needle).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }
    async fn detach_member(&self, family_id: FamilyId, entry_id: EntryId, member_id: MemberId) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let (f, e, m) = (family_id.to_string(), entry_id.to_string(), member_id.to_string());
        sqlx::query("DELETE FROM entry_members WHERE entry_id = $1 AND member_id = $2").bind(&e).bind(&m).execute(&mut *tx).await.map_err(map_err)?;
        for table in ["entry_insights", "entry_vectors"] {
            let sql = format!(
                "UPDATE {table} SET member_ids = (SELECT COALESCE(json_group_array(value), '[]') FROM json_each({table}.member_ids) WHERE value <> $3) \
                 WHERE entry_id = $1 AND family_id = $2"
            );
            sqlx::query(AssertSqlSafe(sql)).bind(&e).bind(&f).bind(&m).execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }
    async fn merge_members(&self, family_id: FamilyId, from: MemberId, into: MemberId) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let (f, a, b) = (family_id.to_string(), from.to_string(), into.to_string());
        let both: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE family_id = $1 AND id IN ($2, $3)").bind(&f).bind(&a).bind(&b).fetch_one(&mut *tx).await.map_err(map_err)?;
        if both != 2 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("INSERT OR IGNORE INTO entry_members (entry_id, member_id, family_id) SELECT entry_id, $3, family_id FROM entry_members WHERE member_id = $2 AND family_id = $1")
            .bind(&f).bind(&a).bind(&b).execute(&mut *tx).await.map_err(map_err)?;
        sqlx::query("DELETE FROM entry_members WHERE member_id = $2 AND family_id = $1").bind(&f).bind(&a).execute(&mut *tx).await.map_err(map_err)?;
        for table in ["entry_insights", "entry_vectors"] {
            // Replace `from` by `into`, once.
            let sql = format!(
                "UPDATE {table} SET member_ids = (SELECT json_group_array(DISTINCT CASE WHEN value = $2 THEN $3 ELSE value END) FROM json_each({table}.member_ids)) \
                 WHERE family_id = $1 AND EXISTS (SELECT 1 FROM json_each({table}.member_ids) WHERE value = $2)"
            );
            sqlx::query(AssertSqlSafe(sql)).bind(&f).bind(&a).bind(&b).execute(&mut *tx).await.map_err(map_err)?;
        }
        sqlx::query("UPDATE time_capsules SET member_id = $3 WHERE member_id = $2 AND family_id = $1").bind(&f).bind(&a).bind(&b).execute(&mut *tx).await.map_err(map_err)?;
        sqlx::query("DELETE FROM members WHERE id = $2 AND family_id = $1").bind(&f).bind(&a).execute(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn delete_member(&self, family_id: FamilyId, member_id: MemberId) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        // Capsules for the child (sealed messages included) and their opening jobs go with the record.
        sqlx::query("DELETE FROM jobs WHERE kind = 'open_capsule' AND entry_id IN (SELECT id FROM time_capsules WHERE member_id = $1 AND family_id = $2)")
            .bind(member_id.to_string())
            .bind(family_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let done = sqlx::query("DELETE FROM members WHERE id = $1 AND family_id = $2").bind(member_id.to_string()).bind(family_id.to_string()).execute(&mut *tx).await.map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(map_err)
    }
    async fn delete_family(&self, family_id: FamilyId) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let f = family_id.to_string();
        // Rows that name the family without a foreign key first; the rest cascade from `families`.
        for sql in [
            "DELETE FROM media WHERE family_id = $1",
            "DELETE FROM jobs WHERE family_id = $1",
            "DELETE FROM processed_updates WHERE family_id = $1",
            "DELETE FROM idempotency_keys WHERE family_id = $1",
            "DELETE FROM channel_messages WHERE family_id = $1",
            "DELETE FROM model_usage WHERE family_id = $1",
            "DELETE FROM entry_vectors WHERE family_id = $1",
            "DELETE FROM entries WHERE family_id = $1",
            "DELETE FROM families WHERE id = $1",
        ] {
            sqlx::query(sql).bind(&f).execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        // Reclaim the space, so the erased text does not linger in free pages.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.writer).await.map_err(map_err)?;
        Ok(())
    }
    async fn record_export_file(&self, family_id: FamilyId, blob_key: &str) -> StoreResult<()> {
        sqlx::query("INSERT INTO export_files (family_id, blob_key, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(family_id.to_string())
            .bind(blob_key)
            .bind(ms(Utc::now()))
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
    async fn take_export_files(&self, family_id: FamilyId) -> StoreResult<Vec<String>> {
        sqlx::query_scalar("DELETE FROM export_files WHERE family_id = $1 RETURNING blob_key").bind(family_id.to_string()).fetch_all(&self.writer).await.map_err(map_err)
    }
    async fn compact(&self) -> StoreResult<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.writer).await.map_err(map_err).map(|_| ())
    }
    async fn record_erasure(&self, family_id: FamilyId, actor_id: UserId, kind: &str, counts: &serde_json::Value) -> StoreResult<()> {
        sqlx::query("INSERT INTO erasures (id, family_id, actor_id, kind, counts, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(Uuid::now_v7().to_string())
            .bind(family_id.to_string())
            .bind(actor_id.to_string())
            .bind(kind)
            .bind(counts.to_string())
            .bind(ms(Utc::now()))
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
    async fn erasures(&self, family_id: FamilyId) -> StoreResult<Vec<Erasure>> {
        let rows = sqlx::query("SELECT * FROM erasures WHERE family_id = $1 ORDER BY created_at, id").bind(family_id.to_string()).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let counts: String = r.try_get("counts").map_err(map_err)?;
                Ok(Erasure {
                    id: uuid(r, "id")?,
                    actor_id: uuid(r, "actor_id")?,
                    kind: r.try_get("kind").map_err(map_err)?,
                    counts: serde_json::from_str(&counts).unwrap_or_default(),
                    created_at: at(r.try_get("created_at").map_err(map_err)?),
                })
            })
            .collect()
    }
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn expired_audio(&self, before: DateTime<Utc>) -> StoreResult<Vec<(FamilyId, Uuid, String)>> {
        let rows = sqlx::query(
            "SELECT m.family_id, m.id, m.blob_key FROM media m JOIN entries e ON e.id = m.entry_id \
             WHERE m.kind = 'voice' AND m.blob_key <> '' AND e.status = 'ready' AND m.created_at < $1",
        )
        .bind(ms(before))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(|r| Ok((uuid(r, "family_id")?, uuid(r, "id")?, r.try_get("blob_key").map_err(map_err)?))).collect()
    }
    async fn forget_media_blob(&self, family_id: FamilyId, media_id: Uuid) -> StoreResult<()> {
        sqlx::query("UPDATE media SET blob_key = '', size_bytes = 0 WHERE id = $1 AND family_id = $2")
            .bind(media_id.to_string())
            .bind(family_id.to_string())
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
    async fn children_of_age(&self, born_by: NaiveDate) -> StoreResult<Vec<(FamilyId, MemberId)>> {
        let rows = sqlx::query("SELECT family_id, id FROM members WHERE birth_date IS NOT NULL AND birth_date <= $1 AND age_notice_at IS NULL")
            .bind(born_by.format("%Y-%m-%d").to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(|r| Ok((uuid(r, "family_id")?, uuid(r, "id")?))).collect()
    }
    async fn mark_age_notice(&self, family_id: FamilyId, member_id: MemberId) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE members SET age_notice_at = $3 WHERE id = $1 AND family_id = $2 AND age_notice_at IS NULL")
            .bind(member_id.to_string())
            .bind(family_id.to_string())
            .bind(ms(Utc::now()))
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}
