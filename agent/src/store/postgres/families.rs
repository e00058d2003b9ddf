//! `PostgresStore`: families, parents, children, and the links that resolve a parent before the family is known (tokens, Telegram accounts, link codes).

use super::*;

#[async_trait]
impl FamilyStore for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err).map(|_| ())
    }
    async fn create_family(&self, name: &str) -> StoreResult<Family> {
        let family = Family { id: Uuid::now_v7(), name: name.to_string(), created_at: stored_now() };
        let mut tx = self.family_tx(family.id).await?;
        sqlx::query("INSERT INTO families (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(family.id)
            .bind(&family.name)
            .bind(family.created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(family)
    }
    async fn create_user(&self, family_id: FamilyId, name: &str) -> StoreResult<User> {
        let mut user = User { id: Uuid::now_v7(), family_id, name: name.to_string(), created_at: stored_now(), tokens_valid_after: None, role: Role::Owner };
        let mut tx = self.family_tx(family_id).await?;
        // The family's first parent is its owner; later ones are parents.
        let role: String = sqlx::query_scalar(
            "INSERT INTO users (id, family_id, name, created_at, role) VALUES ($1, $2, $3, $4, \
             CASE WHEN EXISTS (SELECT 1 FROM users WHERE family_id = $2) THEN 'parent' ELSE 'owner' END) RETURNING role",
        )
        .bind(user.id)
        .bind(family_id)
        .bind(&user.name)
        .bind(user.created_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        user.role = Role::parse(&role);
        Ok(user)
    }
    async fn get_user(&self, user_id: UserId) -> StoreResult<User> {
        // One round trip: the setting, the query and the transaction in one statement
        // (migrations/postgres/0019_one_round_trip.sql).
        let row = sqlx::query("SELECT * FROM dadly_user($1)").bind(user_id).fetch_one(&self.pool).await.map_err(map_err)?;
        Ok(User {
            id: row.try_get("id").map_err(map_err)?,
            family_id: row.try_get("family_id").map_err(map_err)?,
            name: row.try_get("name").map_err(map_err)?,
            created_at: row.try_get("created_at").map_err(map_err)?,
            tokens_valid_after: row.try_get("tokens_valid_after").map_err(map_err)?,
            role: Role::parse(&row.try_get::<String, _>("role").map_err(map_err)?),
        })
    }
    async fn revoke_tokens(&self, user_id: UserId, after: DateTime<Utc>) -> StoreResult<()> {
        let user = self.get_user(user_id).await?;
        let mut tx = self.family_tx(user.family_id).await?;
        sqlx::query("UPDATE users SET tokens_valid_after = GREATEST(tokens_valid_after, $2) WHERE id = $1")
            .bind(user_id)
            .bind(after)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn create_member(&self, family_id: FamilyId, member: NewMember) -> StoreResult<Member> {
        let created = Member {
            id: Uuid::now_v7(),
            family_id,
            name: member.name,
            aliases: member.aliases,
            birth_date: member.birth_date,
            created_at: stored_now(),
            age_notice_at: None,
        };
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("INSERT INTO members (id, family_id, name, aliases, birth_date, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(created.id)
            .bind(family_id)
            .bind(&created.name)
            .bind(&created.aliases)
            .bind(created.birth_date)
            .bind(created.created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(created)
    }
    async fn list_members(&self, family_id: FamilyId) -> StoreResult<Vec<Member>> {
        // One round trip (see `get_user`).
        let rows = sqlx::query("SELECT * FROM dadly_members($1)").bind(family_id).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(member_from_row).collect()
    }
    async fn update_member(&self, family_id: FamilyId, id: MemberId, name: &str, aliases: &[String], birth_date: Option<NaiveDate>) -> StoreResult<Member> {
        let mut tx = self.family_tx(family_id).await?;
        let row = sqlx::query("UPDATE members SET name = $3, aliases = $4, birth_date = $5 WHERE id = $1 AND family_id = $2 RETURNING *")
            .bind(id)
            .bind(family_id)
            .bind(name)
            .bind(aliases)
            .bind(birth_date)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        member_from_row(&row.ok_or(StoreError::NotFound)?)
    }
    async fn create_link_code(&self, family_id: FamilyId, user_id: UserId, code_hash: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("INSERT INTO link_codes (code_hash, family_id, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4, now())")
            .bind(code_hash)
            .bind(family_id)
            .bind(user_id)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn redeem_link_code(&self, code_hash: &str, telegram_user_id: i64, language: Option<&str>, now: DateTime<Utc>) -> StoreResult<User> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT set_config('app.link_code', $1, true), set_config('app.telegram_user_id', $2, true)")
            .bind(code_hash)
            .bind(telegram_user_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let row = sqlx::query("SELECT family_id, user_id FROM link_codes WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 FOR UPDATE")
            .bind(code_hash)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let (family_id, user_id): (Uuid, Uuid) = (row.try_get("family_id").map_err(map_err)?, row.try_get("user_id").map_err(map_err)?);
        // From here the family is known: act inside it.
        sqlx::query("SELECT set_config('app.family_id', $1, true)").bind(family_id.to_string()).execute(&mut *tx).await.map_err(map_err)?;
        sqlx::query("UPDATE link_codes SET used_at = $2 WHERE code_hash = $1").bind(code_hash).bind(now).execute(&mut *tx).await.map_err(map_err)?;
        // A Telegram user linked to another family moves: drop the old link first.
        sqlx::query("DELETE FROM telegram_links WHERE telegram_user_id = $1").bind(telegram_user_id).execute(&mut *tx).await.map_err(map_err)?;
        sqlx::query("INSERT INTO telegram_links (telegram_user_id, family_id, user_id, language, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(telegram_user_id)
            .bind(family_id)
            .bind(user_id)
            .bind(language)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.get_user(user_id).await
    }
    async fn telegram_link(&self, telegram_user_id: i64) -> StoreResult<Option<(User, Option<String>)>> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT set_config('app.telegram_user_id', $1, true)").bind(telegram_user_id.to_string()).execute(&mut *tx).await.map_err(map_err)?;
        let row = sqlx::query("SELECT user_id, language FROM telegram_links WHERE telegram_user_id = $1")
            .bind(telegram_user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let user = self.get_user(row.try_get("user_id").map_err(map_err)?).await?;
        Ok(Some((user, row.try_get("language").map_err(map_err)?)))
    }
    async fn set_telegram_language(&self, telegram_user_id: i64, family_id: FamilyId, language: Option<&str>) -> StoreResult<()> {
        let mut tx = self.family_tx(family_id).await?;
        sqlx::query("UPDATE telegram_links SET language = $1 WHERE telegram_user_id = $2 AND family_id = $3")
            .bind(language)
            .bind(telegram_user_id)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn unlink_telegram(&self, telegram_user_id: i64, family_id: FamilyId) -> StoreResult<bool> {
        let mut tx = self.family_tx(family_id).await?;
        let done = sqlx::query("DELETE FROM telegram_links WHERE telegram_user_id = $1 AND family_id = $2")
            .bind(telegram_user_id)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }
}
