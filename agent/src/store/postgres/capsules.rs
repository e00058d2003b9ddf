//! `PostgresStore`: time capsules — sealed storage, listing without content, opening once.

use super::*;
use crate::capsule::Sealed;

const CAPSULE_COLUMNS: &str = "id, family_id, author_id, member_id, open_at, created_at, opened_at, entry_id";

fn capsule_from_row(r: &PgRow) -> StoreResult<Capsule> {
    let opened_at: Option<DateTime<Utc>> = r.try_get("opened_at").map_err(map_err)?;
    Ok(Capsule {
        id: r.try_get("id").map_err(map_err)?,
        family_id: r.try_get("family_id").map_err(map_err)?,
        author_id: r.try_get("author_id").map_err(map_err)?,
        member_id: r.try_get("member_id").map_err(map_err)?,
        open_at: r.try_get("open_at").map_err(map_err)?,
        created_at: r.try_get("created_at").map_err(map_err)?,
        status: if opened_at.is_some() { CapsuleStatus::Opened } else { CapsuleStatus::Sealed },
        opened_at,
        entry_id: r.try_get("entry_id").map_err(map_err)?,
    })
}

/// Schedules the capsule's opening at `open_at` (keyed, so it is queued once).
async fn schedule_opening(tx: &mut Tx, family_id: FamilyId, id: Uuid, open_at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO jobs (id, family_id, kind, entry_id, entry_version, dedupe_key, max_attempts, run_at, created_at, updated_at) \
         VALUES ($1, $2, 'open_capsule', $3, 1, $4, $5, $6, now(), now()) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(family_id)
    .bind(id)
    .bind(format!("open_capsule:{id}"))
    .bind(MAX_JOB_ATTEMPTS)
    .bind(open_at)
    .execute(&mut **tx)
    .await
    .map_err(map_err)
    .map(|_| ())
}

async fn capsule_by_id(tx: &mut Tx, id: Uuid) -> StoreResult<Capsule> {
    let sql = format!("SELECT {CAPSULE_COLUMNS} FROM time_capsules WHERE id = $1");
    capsule_from_row(&sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_one(&mut **tx).await.map_err(map_err)?)
}

#[async_trait]
impl CapsuleStore for PostgresStore {
    async fn create_capsule(&self, family_id: FamilyId, c: &NewCapsule) -> StoreResult<Capsule> {
        let mut tx = self.family_tx(family_id).await?;
        let done = sqlx::query(
            "INSERT INTO time_capsules (id, family_id, author_id, member_id, open_at, ciphertext, wrapped_key, key_id, chat_id, confirmed, created_at, attachment, attachment_key) \
             SELECT $1, $2, $3, id, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM members WHERE id = $4 AND family_id = $2",
        )
        .bind(c.id)
        .bind(family_id)
        .bind(c.author_id)
        .bind(c.member_id)
        .bind(c.open_at)
        .bind(&c.sealed.ciphertext)
        .bind(&c.sealed.wrapped_key)
        .bind(&c.sealed.key_id)
        .bind(&c.draft_chat)
        .bind(c.draft_chat.is_none())
        .bind(stored_now())
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
        let capsule = capsule_by_id(&mut tx, c.id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(capsule)
    }
    async fn draft_capsule(&self, family_id: FamilyId, author_id: UserId, chat_id: &str, since: DateTime<Utc>) -> StoreResult<Option<Capsule>> {
        let mut tx = self.family_tx(family_id).await?;
        let sql = format!(
            "SELECT {CAPSULE_COLUMNS} FROM time_capsules WHERE family_id = $1 AND author_id = $2 AND chat_id = $3 AND NOT confirmed \
             AND created_at >= $4 ORDER BY created_at DESC LIMIT 1"
        );
        let row = sqlx::query(AssertSqlSafe(sql)).bind(family_id).bind(author_id).bind(chat_id).bind(since).fetch_optional(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        row.as_ref().map(capsule_from_row).transpose()
    }
    async fn confirm_capsule(&self, family_id: FamilyId, id: Uuid) -> StoreResult<Capsule> {
        let mut tx = self.family_tx(family_id).await?;
        let open_at: Option<DateTime<Utc>> = sqlx::query_scalar("UPDATE time_capsules SET confirmed = true, chat_id = NULL WHERE id = $1 AND family_id = $2 RETURNING open_at")
            .bind(id)
            .bind(family_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        schedule_opening(&mut tx, family_id, id, open_at.ok_or(StoreError::NotFound)?).await?;
        let capsule = capsule_by_id(&mut tx, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(capsule)
    }
    async fn list_capsules(&self, family_id: FamilyId) -> StoreResult<Vec<Capsule>> {
        let mut tx = self.family_tx(family_id).await?;
        let sql = format!("SELECT {CAPSULE_COLUMNS} FROM time_capsules WHERE family_id = $1 AND confirmed ORDER BY open_at, id");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(family_id).fetch_all(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter().map(capsule_from_row).collect()
    }
    async fn delete_capsule(&self, family_id: FamilyId, id: Uuid) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        let done = sqlx::query("DELETE FROM time_capsules WHERE id = $1 AND family_id = $2").bind(id).bind(family_id).execute(&mut *tx).await.map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM jobs WHERE dedupe_key = $1 AND family_id = $2 AND status IN ('queued', 'failed')")
            .bind(format!("open_capsule:{id}"))
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn sealed_capsule(&self, family_id: FamilyId, id: Uuid) -> StoreResult<(Capsule, Sealed)> {
        let mut tx = self.family_tx(family_id).await?;
        let sql = format!("SELECT {CAPSULE_COLUMNS}, ciphertext, wrapped_key, key_id FROM time_capsules WHERE id = $1 AND family_id = $2 AND confirmed");
        let r = sqlx::query(AssertSqlSafe(sql)).bind(id).bind(family_id).fetch_one(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let sealed = Sealed {
            ciphertext: r.try_get("ciphertext").map_err(map_err)?,
            wrapped_key: r.try_get("wrapped_key").map_err(map_err)?,
            key_id: r.try_get("key_id").map_err(map_err)?,
        };
        Ok((capsule_from_row(&r)?, sealed))
    }
    async fn attach_to_draft(&self, family_id: FamilyId, id: Uuid, attachment: &Sealed) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        let done = sqlx::query("UPDATE time_capsules SET attachment = $3, attachment_key = $4 WHERE id = $1 AND family_id = $2 AND NOT confirmed AND key_id = $5")
            .bind(id)
            .bind(family_id)
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
        let mut tx = self.family_tx(family_id).await?;
        let row = sqlx::query("SELECT attachment, attachment_key, key_id FROM time_capsules WHERE id = $1 AND family_id = $2 AND confirmed")
            .bind(id)
            .bind(family_id)
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
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("UPDATE time_capsules SET attachment = NULL, attachment_key = NULL WHERE id = $1 AND family_id = $2")
            .bind(id)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn open_capsule(&self, family_id: FamilyId, id: Uuid, entry: NewEntry, jobs: &[JobKind]) -> StoreResult<Option<Entry>> {
        let entry_id = Uuid::now_v7();
        let mut tx = self.family_tx(family_id).await?;
        // The row lock makes a second opener (another instance) wait, then find it opened.
        let opened = sqlx::query(
            "UPDATE time_capsules SET opened_at = now(), entry_id = $3, ciphertext = '', wrapped_key = '' \
             WHERE id = $1 AND family_id = $2 AND opened_at IS NULL AND confirmed",
        )
        .bind(id)
        .bind(family_id)
        .bind(entry_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if opened.rows_affected() == 0 {
            return Ok(None);
        }
        let created = super::entries::insert_entry_tx(&mut tx, family_id, entry_id, &entry, jobs, None).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(created))
    }
    async fn capsule_delivered(&self, family_id: FamilyId, id: Uuid) -> StoreResult<bool> {
        let mut tx = self.family_tx(family_id).await?;
        let done = sqlx::query("UPDATE time_capsules SET delivered_at = now() WHERE id = $1 AND family_id = $2 AND delivered_at IS NULL")
            .bind(id)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
    async fn telegram_users(&self, family_id: FamilyId, owners_only: bool) -> StoreResult<Vec<i64>> {
        let mut tx = self.family_tx(family_id).await?;
        let ids = sqlx::query_scalar(
            "SELECT t.telegram_user_id FROM telegram_links t JOIN users u ON u.id = t.user_id \
             WHERE t.family_id = $1 AND u.role <> 'removed' AND (NOT $2 OR u.role = 'owner') ORDER BY t.telegram_user_id",
        )
        .bind(family_id)
        .bind(owners_only)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(ids)
    }
}
