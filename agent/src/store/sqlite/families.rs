//! `SqliteStore`: families, parents, children, and the links that resolve a parent before the family is known (tokens, Telegram accounts, link codes).

use super::*;

#[async_trait]
impl FamilyStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err).map(|_| ())
    }
    async fn create_family(&self, name: &str) -> StoreResult<Family> {
        let family = Family { id: Uuid::now_v7(), name: name.to_string(), created_at: stored_now() };
        sqlx::query("INSERT INTO families (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(family.id.to_string())
            .bind(&family.name)
            .bind(ms(family.created_at))
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(family)
    }
    async fn create_user(&self, family_id: FamilyId, name: &str) -> StoreResult<User> {
        let mut user = User { id: Uuid::now_v7(), family_id, name: name.to_string(), created_at: stored_now(), tokens_valid_after: None, role: Role::Owner };
        // The family's first parent is its owner; later ones are parents.
        let role: String = sqlx::query_scalar(
            "INSERT INTO users (id, family_id, name, created_at, role) VALUES ($1, $2, $3, $4, \
             CASE WHEN EXISTS (SELECT 1 FROM users WHERE family_id = $2) THEN 'parent' ELSE 'owner' END) RETURNING role",
        )
        .bind(user.id.to_string())
        .bind(family_id.to_string())
        .bind(&user.name)
        .bind(ms(user.created_at))
        .fetch_one(&self.writer)
        .await
        .map_err(|e| match map_err(e) {
            StoreError::Backend(_) => StoreError::NotFound, // the family does not exist
            other => other,
        })?;
        user.role = Role::parse(&role);
        Ok(user)
    }
    async fn get_user(&self, user_id: UserId) -> StoreResult<User> {
        // Every request's first read (a token becomes a family): on this thread.
        self.read(|db| {
            let mut query = db.prepare_cached("SELECT id, family_id, name, created_at, tokens_valid_after, role FROM users WHERE id = ?1")?;
            query.query_row([user_id.to_string()], |row| {
                Ok(User {
                    id: direct::uuid_at(row, "id")?,
                    family_id: direct::uuid_at(row, "family_id")?,
                    name: row.get("name")?,
                    created_at: at(row.get("created_at")?),
                    tokens_valid_after: row.get::<_, Option<i64>>("tokens_valid_after")?.map(at),
                    role: Role::parse(&row.get::<_, String>("role")?),
                })
            })
        })
        .await
    }
    async fn revoke_tokens(&self, user_id: UserId, after: DateTime<Utc>) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET tokens_valid_after = MAX(COALESCE(tokens_valid_after, 0), $2) WHERE id = $1")
            .bind(user_id.to_string())
            .bind(ms(after))
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
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
        sqlx::query("INSERT INTO members (id, family_id, name, aliases, birth_date, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(created.id.to_string())
            .bind(family_id.to_string())
            .bind(&created.name)
            .bind(to_json(&created.aliases))
            .bind(created.birth_date.map(|d| d.format("%Y-%m-%d").to_string()))
            .bind(ms(created.created_at))
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(created)
    }
    async fn list_members(&self, family_id: FamilyId) -> StoreResult<Vec<Member>> {
        // Read for every message (who is it about?): on this thread.
        self.read(|db| {
            let mut query = db.prepare_cached("SELECT * FROM members WHERE family_id = ?1 ORDER BY created_at, id")?;
            query.query_map([family_id.to_string()], direct::member_at)?.collect()
        })
        .await
    }
    async fn update_member(&self, family_id: FamilyId, id: MemberId, name: &str, aliases: &[String], birth_date: Option<NaiveDate>) -> StoreResult<Member> {
        let row = sqlx::query("UPDATE members SET name = $3, aliases = $4, birth_date = $5 WHERE id = $1 AND family_id = $2 RETURNING *")
            .bind(id.to_string())
            .bind(family_id.to_string())
            .bind(name)
            .bind(to_json(&aliases))
            .bind(birth_date.map(|d| d.format("%Y-%m-%d").to_string()))
            .fetch_optional(&self.writer)
            .await
            .map_err(map_err)?;
        member_from_row(&row.ok_or(StoreError::NotFound)?)
    }
    async fn create_link_code(&self, family_id: FamilyId, user_id: UserId, code_hash: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("INSERT INTO link_codes (code_hash, family_id, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(code_hash)
            .bind(family_id.to_string())
            .bind(user_id.to_string())
            .bind(ms(expires_at))
            .bind(ms(Utc::now()))
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
    async fn redeem_link_code(&self, code_hash: &str, telegram_user_id: i64, language: Option<&str>, now: DateTime<Utc>) -> StoreResult<User> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "UPDATE link_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING family_id, user_id",
        )
        .bind(code_hash)
        .bind(ms(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let (family_id, user_id) = (uuid(&row, "family_id")?, uuid(&row, "user_id")?);
        sqlx::query(
            "INSERT INTO telegram_links (telegram_user_id, family_id, user_id, language, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (telegram_user_id) DO UPDATE SET family_id = excluded.family_id, user_id = excluded.user_id, created_at = excluded.created_at",
        )
        .bind(telegram_user_id)
        .bind(family_id.to_string())
        .bind(user_id.to_string())
        .bind(language)
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.get_user(user_id).await
    }
    async fn telegram_link(&self, telegram_user_id: i64) -> StoreResult<Option<(User, Option<String>)>> {
        let row = sqlx::query("SELECT user_id, language FROM telegram_links WHERE telegram_user_id = $1")
            .bind(telegram_user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let user = self.get_user(uuid(&row, "user_id")?).await?;
        Ok(Some((user, row.try_get("language").map_err(map_err)?)))
    }
    async fn set_telegram_language(&self, telegram_user_id: i64, family_id: FamilyId, language: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE telegram_links SET language = $1 WHERE telegram_user_id = $2 AND family_id = $3")
            .bind(language)
            .bind(telegram_user_id)
            .bind(family_id.to_string())
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
    async fn unlink_telegram(&self, telegram_user_id: i64, family_id: FamilyId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM telegram_links WHERE telegram_user_id = $1 AND family_id = $2")
            .bind(telegram_user_id)
            .bind(family_id.to_string())
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }
}
