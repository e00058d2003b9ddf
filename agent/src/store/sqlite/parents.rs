//! `SqliteStore`: several parents per family — invites, parents, roles.

use super::*;

#[async_trait]
impl ParentStore for SqliteStore {
    async fn create_invite(&self, family_id: FamilyId, created_by: UserId, code_hash: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("INSERT INTO invites (code_hash, family_id, created_by, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(code_hash)
            .bind(family_id.to_string())
            .bind(created_by.to_string())
            .bind(ms(expires_at))
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
    async fn redeem_invite(&self, code_hash: &str, name: &str, telegram: Option<(i64, Option<&str>)>, now: DateTime<Utc>) -> StoreResult<User> {
        let mut tx = self.write_tx().await?;
        let family: Option<String> = sqlx::query_scalar("SELECT family_id FROM invites WHERE code_hash = $1 AND redeemed_at IS NULL AND expires_at > $2")
            .bind(code_hash)
            .bind(ms(now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let family = family.ok_or(StoreError::NotFound)?;
        let user_id = Uuid::now_v7();
        sqlx::query("INSERT INTO users (id, family_id, name, created_at, role) VALUES ($1, $2, $3, $4, 'parent')")
            .bind(user_id.to_string())
            .bind(&family)
            .bind(name)
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("UPDATE invites SET redeemed_at = $2, redeemed_by = $3 WHERE code_hash = $1")
            .bind(code_hash)
            .bind(ms(now))
            .bind(user_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if let Some((telegram_user_id, language)) = telegram {
            sqlx::query("DELETE FROM telegram_links WHERE telegram_user_id = $1").bind(telegram_user_id).execute(&mut *tx).await.map_err(map_err)?;
            sqlx::query("INSERT INTO telegram_links (telegram_user_id, family_id, user_id, language, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(telegram_user_id)
                .bind(&family)
                .bind(user_id.to_string())
                .bind(language)
                .bind(ms(now))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        self.get_user(user_id).await
    }
    async fn list_users(&self, family_id: FamilyId) -> StoreResult<Vec<User>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM users WHERE family_id = $1 ORDER BY created_at, id")
            .bind(family_id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            users.push(self.get_user(id.parse().map_err(|e| StoreError::Backend(Box::new(e)))?).await?);
        }
        Ok(users)
    }
    async fn set_role(&self, family_id: FamilyId, user_id: UserId, role: Role) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE users SET role = $3 WHERE id = $1 AND family_id = $2")
            .bind(user_id.to_string())
            .bind(family_id.to_string())
            .bind(role.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if role == Role::Removed {
            sqlx::query("DELETE FROM telegram_links WHERE user_id = $1 AND family_id = $2")
                .bind(user_id.to_string())
                .bind(family_id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            sqlx::query("UPDATE users SET tokens_valid_after = $2 WHERE id = $1").bind(user_id.to_string()).bind(ms(Utc::now())).execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }
}
