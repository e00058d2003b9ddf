//! `SqliteStore`: what messaging channels need: update claims, albums, pending media and the message ↔ entry map.

use super::*;

#[async_trait]
impl ChannelStore for SqliteStore {
    async fn begin_idempotent(&self, family_id: FamilyId, key: &str, fingerprint: &str, stale_after: chrono::Duration) -> StoreResult<Idempotent> {
        let now = Utc::now();
        let held = sqlx::query(
            "INSERT INTO idempotency_keys (family_id, key, fingerprint, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (family_id, key) DO UPDATE SET created_at = excluded.created_at \
             WHERE idempotency_keys.status IS NULL AND idempotency_keys.fingerprint = excluded.fingerprint AND idempotency_keys.created_at < $5",
        )
        .bind(family_id.to_string())
        .bind(key)
        .bind(fingerprint)
        .bind(ms(now))
        .bind(ms(now - stale_after))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        if held.rows_affected() == 1 {
            return Ok(Idempotent::New);
        }
        let row = sqlx::query("SELECT fingerprint, status, body FROM idempotency_keys WHERE family_id = $1 AND key = $2")
            .bind(family_id.to_string())
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        idempotent_state(row.try_get("fingerprint").map_err(map_err)?, fingerprint, row.try_get("status").map_err(map_err)?, row.try_get("body").map_err(map_err)?)
    }
    async fn finish_idempotent(&self, family_id: FamilyId, key: &str, status: u16, body: &str) -> StoreResult<()> {
        sqlx::query("UPDATE idempotency_keys SET status = $3, body = $4 WHERE family_id = $1 AND key = $2")
            .bind(family_id.to_string())
            .bind(key)
            .bind(i64::from(status))
            .bind(body)
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
    async fn release_idempotent(&self, family_id: FamilyId, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE family_id = $1 AND key = $2 AND status IS NULL")
            .bind(family_id.to_string())
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
    async fn claim_update(&self, family_id: FamilyId, key: &str) -> StoreResult<bool> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        claim(&mut conn, family_id, key).await
    }
    async fn entry_by_external_key(&self, family_id: FamilyId, key: &str) -> StoreResult<Option<Entry>> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.family_id = $1 AND e.external_key = $2");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(family_id.to_string()).bind(key).fetch_optional(&self.pool).await.map_err(map_err)?;
        row.as_ref().map(entry_from_row).transpose()
    }
    async fn add_pending_media(&self, family_id: FamilyId, entry_id: EntryId, media: &PendingMedia, dedupe_key: Option<&str>) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        if let Some(key) = dedupe_key
            && !claim(&mut tx, family_id, key).await?
        {
            return Err(StoreError::AlreadyHandled);
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
                    description: r.try_get("description").map_err(map_err)?,
                })
            })
            .collect()
    }
    async fn media_fetched(&self, family_id: FamilyId, media_id: Uuid, blob: &crate::blob::StoredBlob) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE media SET blob_key = $1, content_type = $2, size_bytes = $3, sha256 = $4 WHERE id = $5 AND family_id = $6")
            .bind(&blob.key)
            .bind(&blob.content_type)
            .bind(blob.size_bytes as i64)
            .bind(&blob.sha256)
            .bind(media_id.to_string())
            .bind(family_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let photo = sqlx::query("SELECT m.entry_id, e.version FROM media m JOIN entries e ON e.id = m.entry_id WHERE m.id = $1 AND m.family_id = $2 AND m.kind = 'photo'")
            .bind(media_id.to_string())
            .bind(family_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if let Some(r) = photo {
            enqueue_keyed(&mut tx, family_id, JobKind::Describe, uuid(&r, "entry_id")?, r.try_get("version").map_err(map_err)?, &format!("describe:{media_id}")).await?;
        }
        tx.commit().await.map_err(map_err)
    }
    async fn describe_media(&self, family_id: FamilyId, media_id: Uuid, description: &str) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "UPDATE media SET description = $1 WHERE id = $2 AND family_id = $3 \
             RETURNING entry_id, (SELECT version FROM entries WHERE id = media.entry_id) AS version",
        )
        .bind(description)
        .bind(media_id.to_string())
        .bind(family_id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(r) = row else { return Err(StoreError::NotFound) };
        let entry_id = uuid(&r, "entry_id")?;
        let version: Option<i64> = r.try_get("version").map_err(map_err)?;
        let version = version.ok_or(StoreError::NotFound)?;
        enqueue_keyed(&mut tx, family_id, JobKind::Embed, entry_id, version, &format!("embed:{entry_id}:{version}:photo:{media_id}")).await?;
        tx.commit().await.map_err(map_err)
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
        .execute(&self.writer)
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
}
