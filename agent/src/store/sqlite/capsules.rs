//! `SqliteStore`: time capsules — sealed storage, listing without content, opening once.

use super::*;
use crate::capsule::Sealed;

const CAPSULE_COLUMNS: &str = "id, family_id, author_id, member_id, open_at, created_at, opened_at, entry_id";

fn capsule_from_row(r: &SqliteRow) -> StoreResult<Capsule> {
    let opened_at: Option<i64> = r.try_get("opened_at").map_err(map_err)?;
    let entry_id: Option<String> = r.try_get("entry_id").map_err(map_err)?;
    Ok(Capsule {
        id: uuid(r, "id")?,
        family_id: uuid(r, "family_id")?,
        author_id: uuid(r, "author_id")?,
        member_id: uuid(r, "member_id")?,
        open_at: at(r.try_get("open_at").map_err(map_err)?),
        created_at: at(r.try_get("created_at").map_err(map_err)?),
        status: if opened_at.is_some() { CapsuleStatus::Opened } else { CapsuleStatus::Sealed },
        opened_at: opened_at.map(at),
        entry_id: entry_id.and_then(|e| e.parse().ok()),
    })
}

/// Schedules the capsule's opening at `open_at` (keyed, so it is queued once).
async fn schedule_opening(tx: &mut sqlx::SqliteConnection, family_id: FamilyId, id: Uuid, open_at: DateTime<Utc>) -> StoreResult<()> {
    let now = ms(Utc::now());
    sqlx::query(
        "INSERT INTO jobs (id, family_id, kind, entry_id, entry_version, dedupe_key, max_attempts, run_at, created_at, updated_at) \
         VALUES ($1, $2, 'open_capsule', $3, 1, $4, $5, $6, $7, $7) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(family_id.to_string())
    .bind(id.to_string())
    .bind(format!("open_capsule:{id}"))
    .bind(MAX_JOB_ATTEMPTS)
    .bind(ms(open_at))
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(map_err)
    .map(|_| ())
}

#[async_trait]
impl CapsuleStore for SqliteStore {
    async fn create_capsule(&self, family_id: FamilyId, c: &NewCapsule) -> StoreResult<Capsule> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "INSERT INTO time_capsules (id, family_id, author_id, member_id, open_at, ciphertext, wrapped_key, key_id, chat_id, confirmed, created_at, attachment, attachment_key) \
             SELECT $1, $2, $3, id, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM members WHERE id = $4 AND family_id = $2",
        )
        .bind(c.id.to_string())
        .bind(family_id.to_string())
        .bind(c.author_id.to_string())
        .bind(c.member_id.to_string())
        .bind(ms(c.open_at))
        .bind(&c.sealed.ciphertext)
        .bind(&c.sealed.wrapped_key)
        .bind(&c.sealed.key_id)
        .bind(&c.draft_chat)
        .bind(c.draft_chat.is_none())
        .bind(ms(Utc::now()))
        .bind(c.attachment.as_ref().map(|a| a.ciphertext.clone()))
        .bind(c.attachment.as_ref().map(|a| a.wrapped_key.clone()))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound);
        }
        if c.draft_chat.is_none() {
            schedule_opening(&mut tx, family_id, c.id, c.open_at).await?;
        }
        tx.commit().await.map_err(map_err)?;
        let sql = format!("SELECT {CAPSULE_COLUMNS} FROM time_capsules WHERE id = $1");
        capsule_from_row(&sqlx::query(AssertSqlSafe(sql)).bind(c.id.to_string()).fetch_one(&self.pool).await.map_err(map_err)?)
    }
    async fn draft_capsule(&self, family_id: FamilyId, author_id: UserId, chat_id: &str, since: DateTime<Utc>) -> StoreResult<Option<Capsule>> {
        let sql = format!(
            "SELECT {CAPSULE_COLUMNS} FROM time_capsules WHERE family_id = $1 AND author_id = $2 AND chat_id = $3 AND confirmed = 0 \
             AND created_at >= $4 ORDER BY created_at DESC LIMIT 1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(family_id.to_string())
            .bind(author_id.to_string())
            .bind(chat_id)
            .bind(ms(since))
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(capsule_from_row).transpose()
    }
    async fn confirm_capsule(&self, family_id: FamilyId, id: Uuid) -> StoreResult<Capsule> {
        let mut tx = self.write_tx().await?;
        let open_at: Option<i64> = sqlx::query_scalar("UPDATE time_capsules SET confirmed = 1, chat_id = NULL WHERE id = $1 AND family_id = $2 RETURNING open_at")
            .bind(id.to_string())
            .bind(family_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        schedule_opening(&mut tx, family_id, id, at(open_at.ok_or(StoreError::NotFound)?)).await?;
        tx.commit().await.map_err(map_err)?;
        let sql = format!("SELECT {CAPSULE_COLUMNS} FROM time_capsules WHERE id = $1");
        capsule_from_row(&sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).fetch_one(&self.pool).await.map_err(map_err)?)
    }
    async fn list_capsules(&self, family_id: FamilyId) -> StoreResult<Vec<Capsule>> {
        let sql = format!("SELECT {CAPSULE_COLUMNS} FROM time_capsules WHERE family_id = $1 AND confirmed = 1 ORDER BY open_at, id");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(family_id.to_string()).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(capsule_from_row).collect()
    }
    async fn delete_capsule(&self, family_id: FamilyId, id: Uuid) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM time_capsules WHERE id = $1 AND family_id = $2")
            .bind(id.to_string())
            .bind(family_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM jobs WHERE dedupe_key = $1 AND status IN ('queued', 'failed')")
            .bind(format!("open_capsule:{id}"))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn sealed_capsule(&self, family_id: FamilyId, id: Uuid) -> StoreResult<(Capsule, Sealed)> {
        let sql = format!("SELECT {CAPSULE_COLUMNS}, ciphertext, wrapped_key, key_id FROM time_capsules WHERE id = $1 AND family_id = $2 AND confirmed = 1");
        let r = sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).bind(family_id.to_string()).fetch_one(&self.pool).await.map_err(map_err)?;
        let sealed = Sealed {
            ciphertext: r.try_get("ciphertext").map_err(map_err)?,
            wrapped_key: r.try_get("wrapped_key").map_err(map_err)?,
            key_id: r.try_get("key_id").map_err(map_err)?,
        };
        Ok((capsule_from_row(&r)?, sealed))
    }
    async fn attach_to_draft(&self, family_id: FamilyId, id: Uuid, attachment: &Sealed) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE time_capsules SET attachment = $3, attachment_key = $4 WHERE id = $1 AND family_id = $2 AND confirmed = 0 AND key_id = $5")
            .bind(id.to_string())
            .bind(family_id.to_string())
            .bind(&attachment.ciphertext)
            .bind(&attachment.wrapped_key)
            .bind(&attachment.key_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(map_err)
    }
    async fn capsule_attachment(&self, family_id: FamilyId, id: Uuid) -> StoreResult<Option<Sealed>> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT attachment, attachment_key, key_id FROM time_capsules WHERE id = $1 AND family_id = $2 AND confirmed = 1")
            .bind(id.to_string())
            .bind(family_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await.map_err(map_err)?;
        let ciphertext: Option<Vec<u8>> = row.try_get("attachment").map_err(map_err)?;
        let wrapped_key: Option<Vec<u8>> = row.try_get("attachment_key").map_err(map_err)?;
        Ok(match (ciphertext, wrapped_key) {
            (Some(ciphertext), Some(wrapped_key)) if !ciphertext.is_empty() => Some(Sealed { ciphertext, wrapped_key, key_id: row.try_get("key_id").map_err(map_err)? }),
            _ => None,
        })
    }
    async fn clear_capsule_attachment(&self, family_id: FamilyId, id: Uuid) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE time_capsules SET attachment = NULL, attachment_key = NULL WHERE id = $1 AND family_id = $2")
            .bind(id.to_string())
            .bind(family_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn open_capsule(&self, family_id: FamilyId, id: Uuid, entry: NewEntry, jobs: &[JobKind]) -> StoreResult<Option<Entry>> {
        let entry_id = Uuid::now_v7();
        let mut tx = self.write_tx().await?;
        let opened = sqlx::query("UPDATE time_capsules SET opened_at = $3, entry_id = $4 WHERE id = $1 AND family_id = $2 AND opened_at IS NULL AND confirmed = 1")
            .bind(id.to_string())
            .bind(family_id.to_string())
            .bind(ms(Utc::now()))
            .bind(entry_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if opened.rows_affected() == 0 {
            return Ok(None);
        }
        super::entries::insert_entry_tx(&mut tx, family_id, entry_id, &entry, jobs).await?;
        // The sealed copy goes: from now on the message is an ordinary entry.
        sqlx::query("UPDATE time_capsules SET ciphertext = x'', wrapped_key = x'' WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.get_entry(family_id, entry_id).await.map(Some)
    }
    async fn capsule_delivered(&self, family_id: FamilyId, id: Uuid) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE time_capsules SET delivered_at = $3 WHERE id = $1 AND family_id = $2 AND delivered_at IS NULL")
            .bind(id.to_string())
            .bind(family_id.to_string())
            .bind(ms(Utc::now()))
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
    async fn telegram_users(&self, family_id: FamilyId, owners_only: bool) -> StoreResult<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT t.telegram_user_id FROM telegram_links t JOIN users u ON u.id = t.user_id \
             WHERE t.family_id = $1 AND u.role <> 'removed' AND (NOT $2 OR u.role = 'owner') ORDER BY t.telegram_user_id",
        )
        .bind(family_id.to_string())
        .bind(owners_only)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)
    }
}
