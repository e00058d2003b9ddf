//! `SqliteStore`: daily prompts — who wants them, one a day, what was asked.

use super::*;

#[async_trait]
impl PromptStore for SqliteStore {
    async fn set_prompt_time(&self, family_id: FamilyId, user_id: UserId, time: Option<&str>, utc_offset: Option<&str>) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE users SET prompt_time = $3 WHERE id = $1 AND family_id = $2")
            .bind(user_id.to_string())
            .bind(family_id.to_string())
            .bind(time)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if let Some(offset) = utc_offset {
            sqlx::query("UPDATE families SET utc_offset = $2 WHERE id = $1").bind(family_id.to_string()).bind(offset).execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }
    async fn prompt_settings(&self, family_id: FamilyId, user_id: UserId) -> StoreResult<(Option<String>, Option<String>)> {
        let r = sqlx::query("SELECT u.prompt_time, f.utc_offset FROM users u JOIN families f ON f.id = u.family_id WHERE u.id = $1 AND u.family_id = $2")
            .bind(user_id.to_string())
            .bind(family_id.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok((r.try_get("prompt_time").map_err(map_err)?, r.try_get("utc_offset").map_err(map_err)?))
    }
    async fn prompt_candidates(&self) -> StoreResult<Vec<PromptCandidate>> {
        let rows = sqlx::query(
            "SELECT u.family_id, u.id, u.prompt_time, u.prompt_last_on, f.utc_offset FROM users u JOIN families f ON f.id = u.family_id \
             WHERE u.prompt_time IS NOT NULL AND u.role <> 'removed' AND EXISTS (SELECT 1 FROM telegram_links t WHERE t.user_id = u.id)",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let last: Option<String> = r.try_get("prompt_last_on").map_err(map_err)?;
                Ok(PromptCandidate {
                    family_id: uuid(r, "family_id")?,
                    user_id: uuid(r, "id")?,
                    time: r.try_get("prompt_time").map_err(map_err)?,
                    last_on: last.and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()),
                    utc_offset: r.try_get("utc_offset").map_err(map_err)?,
                })
            })
            .collect()
    }
    async fn claim_prompt_day(&self, family_id: FamilyId, user_id: UserId, day: NaiveDate) -> StoreResult<bool> {
        let d = day.format("%Y-%m-%d").to_string();
        let done = sqlx::query("UPDATE users SET prompt_last_on = $3 WHERE id = $1 AND family_id = $2 AND (prompt_last_on IS NULL OR prompt_last_on < $3)")
            .bind(user_id.to_string())
            .bind(family_id.to_string())
            .bind(d)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
    async fn recent_prompts(&self, family_id: FamilyId, user_id: UserId, since: NaiveDate) -> StoreResult<Vec<String>> {
        sqlx::query_scalar("SELECT question FROM prompt_log WHERE family_id = $1 AND user_id = $2 AND sent_on >= $3")
            .bind(family_id.to_string())
            .bind(user_id.to_string())
            .bind(since.format("%Y-%m-%d").to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)
    }
    async fn log_prompt(&self, family_id: FamilyId, user_id: UserId, question: &str, member_id: Option<MemberId>, day: NaiveDate, chat_key: &str, message_id: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO prompt_log (id, family_id, user_id, question, member_id, sent_on, chat_key, message_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(Uuid::now_v7().to_string())
            .bind(family_id.to_string())
            .bind(user_id.to_string())
            .bind(question)
            .bind(member_id.map(|m| m.to_string()))
            .bind(day.format("%Y-%m-%d").to_string())
            .bind(chat_key)
            .bind(message_id)
            .bind(ms(Utc::now()))
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
    async fn prompt_for_message(&self, family_id: FamilyId, chat_key: &str, message_id: i64) -> StoreResult<Option<SentPrompt>> {
        let row = sqlx::query("SELECT id, question, member_id, entry_id FROM prompt_log WHERE family_id = $1 AND chat_key = $2 AND message_id = $3")
            .bind(family_id.to_string())
            .bind(chat_key)
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let Some(r) = row else { return Ok(None) };
        let member: Option<String> = r.try_get("member_id").map_err(map_err)?;
        let entry: Option<String> = r.try_get("entry_id").map_err(map_err)?;
        Ok(Some(SentPrompt {
            id: uuid(&r, "id")?,
            question: r.try_get("question").map_err(map_err)?,
            member_id: member.and_then(|m| m.parse().ok()),
            entry_id: entry.and_then(|e| e.parse().ok()),
        }))
    }
    async fn telegram_link_of(&self, family_id: FamilyId, user_id: UserId) -> StoreResult<Option<(i64, Option<String>)>> {
        let row = sqlx::query("SELECT telegram_user_id, language FROM telegram_links WHERE family_id = $1 AND user_id = $2 LIMIT 1")
            .bind(family_id.to_string())
            .bind(user_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|r| Ok((r.try_get("telegram_user_id").map_err(map_err)?, r.try_get("language").map_err(map_err)?))).transpose()
    }
    async fn link_prompt_entry(&self, family_id: FamilyId, prompt_id: Uuid, entry_id: EntryId) -> StoreResult<()> {
        sqlx::query("UPDATE prompt_log SET entry_id = $3 WHERE id = $1 AND family_id = $2")
            .bind(prompt_id.to_string())
            .bind(family_id.to_string())
            .bind(entry_id.to_string())
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
}
