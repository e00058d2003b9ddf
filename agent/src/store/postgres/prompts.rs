//! `PostgresStore`: daily prompts — who wants them, one a day, what was asked.

use super::*;

#[async_trait]
impl PromptStore for PostgresStore {
    async fn set_prompt_time(&self, family_id: FamilyId, user_id: UserId, time: Option<&str>, utc_offset: Option<&str>) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        let done = sqlx::query("UPDATE users SET prompt_time = $3 WHERE id = $1 AND family_id = $2").bind(user_id).bind(family_id).bind(time).execute(&mut *tx).await.map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if let Some(offset) = utc_offset {
            sqlx::query("UPDATE families SET utc_offset = $2 WHERE id = $1").bind(family_id).bind(offset).execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }
    async fn prompt_settings(&self, family_id: FamilyId, user_id: UserId) -> StoreResult<(Option<String>, Option<String>)> {
        let mut tx = self.family_tx(family_id).await?;
        let r = sqlx::query("SELECT u.prompt_time, f.utc_offset FROM users u JOIN families f ON f.id = u.family_id WHERE u.id = $1 AND u.family_id = $2")
            .bind(user_id)
            .bind(family_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok((r.try_get("prompt_time").map_err(map_err)?, r.try_get("utc_offset").map_err(map_err)?))
    }
    async fn prompt_candidates(&self) -> StoreResult<Vec<PromptCandidate>> {
        let rows = sqlx::query("SELECT family_id, user_id, prompt_time, prompt_last_on, utc_offset FROM dadly_prompt_candidates()").fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(PromptCandidate {
                    family_id: r.try_get("family_id").map_err(map_err)?,
                    user_id: r.try_get("user_id").map_err(map_err)?,
                    time: r.try_get("prompt_time").map_err(map_err)?,
                    last_on: r.try_get("prompt_last_on").map_err(map_err)?,
                    utc_offset: r.try_get("utc_offset").map_err(map_err)?,
                })
            })
            .collect()
    }
    async fn claim_prompt_day(&self, family_id: FamilyId, user_id: UserId, day: NaiveDate) -> StoreResult<bool> {
        let mut tx = self.family_tx(family_id).await?;
        let done = sqlx::query("UPDATE users SET prompt_last_on = $3 WHERE id = $1 AND family_id = $2 AND (prompt_last_on IS NULL OR prompt_last_on < $3)")
            .bind(user_id)
            .bind(family_id)
            .bind(day)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
    async fn recent_prompts(&self, family_id: FamilyId, user_id: UserId, since: NaiveDate) -> StoreResult<Vec<String>> {
        let mut tx = self.family_tx(family_id).await?;
        let keys = sqlx::query_scalar("SELECT question FROM prompt_log WHERE family_id = $1 AND user_id = $2 AND sent_on >= $3")
            .bind(family_id)
            .bind(user_id)
            .bind(since)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(keys)
    }
    async fn log_prompt(&self, family_id: FamilyId, user_id: UserId, question: &str, member_id: Option<MemberId>, day: NaiveDate, chat_key: &str, message_id: i64) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("INSERT INTO prompt_log (id, family_id, user_id, question, member_id, sent_on, chat_key, message_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())")
            .bind(Uuid::now_v7())
            .bind(family_id)
            .bind(user_id)
            .bind(question)
            .bind(member_id)
            .bind(day)
            .bind(chat_key)
            .bind(message_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn prompt_for_message(&self, family_id: FamilyId, chat_key: &str, message_id: i64) -> StoreResult<Option<SentPrompt>> {
        let mut tx = self.family_tx(family_id).await?;
        let row = sqlx::query("SELECT id, question, member_id, entry_id FROM prompt_log WHERE family_id = $1 AND chat_key = $2 AND message_id = $3")
            .bind(family_id)
            .bind(chat_key)
            .bind(message_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(SentPrompt {
            id: r.try_get("id").map_err(map_err)?,
            question: r.try_get("question").map_err(map_err)?,
            member_id: r.try_get("member_id").map_err(map_err)?,
            entry_id: r.try_get("entry_id").map_err(map_err)?,
        }))
    }
    async fn telegram_link_of(&self, family_id: FamilyId, user_id: UserId) -> StoreResult<Option<(i64, Option<String>)>> {
        let mut tx = self.family_tx(family_id).await?;
        let row = sqlx::query("SELECT telegram_user_id, language FROM telegram_links WHERE family_id = $1 AND user_id = $2 LIMIT 1")
            .bind(family_id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        row.map(|r| Ok((r.try_get("telegram_user_id").map_err(map_err)?, r.try_get("language").map_err(map_err)?))).transpose()
    }
    async fn link_prompt_entry(&self, family_id: FamilyId, prompt_id: Uuid, entry_id: EntryId) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("UPDATE prompt_log SET entry_id = $3 WHERE id = $1 AND family_id = $2").bind(prompt_id).bind(family_id).bind(entry_id).execute(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
}
