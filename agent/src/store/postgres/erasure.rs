//! `PostgresStore`: erasure — every copy of what is erased, and the audit record that it was.

use super::*;

#[async_trait]
impl ErasureStore for PostgresStore {
    async fn forget_text(&self, family_id: FamilyId, needles: &[String]) -> StoreResult<u64> {
        let mut tx = self.family_tx(family_id).await?;
        let mut n = 0;
        for needle in needles.iter().filter(|n| !n.is_empty()) {
            for sql in [
                "DELETE FROM chat_turns WHERE family_id = $1 AND strpos(content, $2) > 0",
                "DELETE FROM idempotency_keys WHERE family_id = $1 AND strpos(COALESCE(body, ''), $2) > 0",
            ] {
                n += sqlx::query(sql).bind(family_id).bind(needle).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }
    async fn detach_member(&self, family_id: FamilyId, entry_id: EntryId, member_id: MemberId) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("DELETE FROM entry_members WHERE entry_id = $1 AND member_id = $2").bind(entry_id).bind(member_id).execute(&mut *tx).await.map_err(map_err)?;
        for table in ["entry_insights", "entry_vectors"] {
            let sql = format!("UPDATE {table} SET member_ids = array_remove(member_ids, $3) WHERE entry_id = $1 AND family_id = $2");
            sqlx::query(AssertSqlSafe(sql)).bind(entry_id).bind(family_id).bind(member_id).execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }
    async fn merge_members(&self, family_id: FamilyId, from: MemberId, into: MemberId) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        let both: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE family_id = $1 AND id IN ($2, $3)").bind(family_id).bind(from).bind(into).fetch_one(&mut *tx).await.map_err(map_err)?;
        if both != 2 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("INSERT INTO entry_members (entry_id, member_id, family_id) SELECT entry_id, $3, family_id FROM entry_members WHERE member_id = $2 AND family_id = $1 ON CONFLICT DO NOTHING")
            .bind(family_id).bind(from).bind(into).execute(&mut *tx).await.map_err(map_err)?;
        sqlx::query("DELETE FROM entry_members WHERE member_id = $2 AND family_id = $1").bind(family_id).bind(from).execute(&mut *tx).await.map_err(map_err)?;
        for table in ["entry_insights", "entry_vectors"] {
            let sql = format!(
                "UPDATE {table} SET member_ids = (SELECT array_agg(DISTINCT m) FROM unnest(array_replace(member_ids, $2, $3)) m) WHERE family_id = $1 AND $2 = ANY(member_ids)"
            );
            sqlx::query(AssertSqlSafe(sql)).bind(family_id).bind(from).bind(into).execute(&mut *tx).await.map_err(map_err)?;
        }
        sqlx::query("UPDATE time_capsules SET member_id = $3 WHERE member_id = $2 AND family_id = $1").bind(family_id).bind(from).bind(into).execute(&mut *tx).await.map_err(map_err)?;
        sqlx::query("DELETE FROM members WHERE id = $2 AND family_id = $1").bind(family_id).bind(from).execute(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn delete_member(&self, family_id: FamilyId, member_id: MemberId) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("DELETE FROM jobs WHERE kind = 'open_capsule' AND family_id = $2 AND entry_id IN (SELECT id FROM time_capsules WHERE member_id = $1)")
            .bind(member_id)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let done = sqlx::query("DELETE FROM members WHERE id = $1 AND family_id = $2").bind(member_id).bind(family_id).execute(&mut *tx).await.map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(map_err)
    }
    async fn delete_family(&self, family_id: FamilyId) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
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
            sqlx::query(sql).bind(family_id).execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }
    async fn record_export_file(&self, family_id: FamilyId, blob_key: &str) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("INSERT INTO export_files (family_id, blob_key, created_at) VALUES ($1, $2, now()) ON CONFLICT DO NOTHING")
            .bind(family_id)
            .bind(blob_key)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn take_export_files(&self, family_id: FamilyId) -> StoreResult<Vec<String>> {
        let mut tx = self.family_tx(family_id).await?;
        let keys = sqlx::query_scalar("DELETE FROM export_files WHERE family_id = $1 RETURNING blob_key").bind(family_id).fetch_all(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(keys)
    }
    async fn record_erasure(&self, family_id: FamilyId, actor_id: UserId, kind: &str, counts: &serde_json::Value) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("INSERT INTO erasures (id, family_id, actor_id, kind, counts, created_at) VALUES ($1, $2, $3, $4, $5, now())")
            .bind(Uuid::now_v7())
            .bind(family_id)
            .bind(actor_id)
            .bind(kind)
            .bind(counts)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn erasures(&self, family_id: FamilyId) -> StoreResult<Vec<Erasure>> {
        let mut tx = self.family_tx(family_id).await?;
        let rows = sqlx::query("SELECT * FROM erasures WHERE family_id = $1 ORDER BY created_at, id").bind(family_id).fetch_all(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(Erasure {
                    id: r.try_get("id").map_err(map_err)?,
                    actor_id: r.try_get("actor_id").map_err(map_err)?,
                    kind: r.try_get("kind").map_err(map_err)?,
                    counts: r.try_get("counts").map_err(map_err)?,
                    created_at: r.try_get("created_at").map_err(map_err)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl RetentionStore for PostgresStore {
    async fn expired_audio(&self, before: DateTime<Utc>) -> StoreResult<Vec<(FamilyId, Uuid, String)>> {
        let rows = sqlx::query("SELECT family_id, media_id, blob_key FROM dadly_expired_audio($1)").bind(before).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter()
            .map(|r| Ok((r.try_get("family_id").map_err(map_err)?, r.try_get("media_id").map_err(map_err)?, r.try_get("blob_key").map_err(map_err)?)))
            .collect()
    }
    async fn forget_media_blob(&self, family_id: FamilyId, media_id: Uuid) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("UPDATE media SET blob_key = '', size_bytes = 0 WHERE id = $1 AND family_id = $2").bind(media_id).bind(family_id).execute(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn children_of_age(&self, born_by: NaiveDate) -> StoreResult<Vec<(FamilyId, MemberId)>> {
        let rows = sqlx::query("SELECT family_id, member_id FROM dadly_children_of_age($1)").bind(born_by).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(|r| Ok((r.try_get("family_id").map_err(map_err)?, r.try_get("member_id").map_err(map_err)?))).collect()
    }
    async fn mark_age_notice(&self, family_id: FamilyId, member_id: MemberId) -> StoreResult<bool> {
        let mut tx = self.family_tx(family_id).await?;
        let done = sqlx::query("UPDATE members SET age_notice_at = now() WHERE id = $1 AND family_id = $2 AND age_notice_at IS NULL")
            .bind(member_id)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}
