//! Families with several parents: the owner invites others with one-time
//! codes (redeemed in the app or with `/start CODE` in Telegram), lists and
//! removes parents, and manages the children's records.

use chrono::{DateTime, Utc};
use rand::Rng;

use crate::agent::{Agent, AgentError};
use crate::domain::*;
use crate::store::StoreError;

/// How long an invite stays valid.
pub const INVITE_TTL: chrono::Duration = chrono::Duration::days(7);

/// A one-time code to join the family as a parent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Invite {
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

/// What may change in a child's record.
#[derive(Debug, Clone, Default)]
pub struct MemberPatch {
    pub name: Option<String>,
    pub aliases: Option<Vec<String>>,
    /// `Some(None)` clears the birth date.
    pub birth_date: Option<Option<chrono::NaiveDate>>,
}

impl Agent {
    /// Refuses anyone but the family's owner.
    pub fn require_owner(&self, user: &User, what: &str) -> Result<(), AgentError> {
        if user.role == Role::Owner {
            Ok(())
        } else {
            Err(AgentError::Forbidden(format!("only the family's owner can {what}")))
        }
    }

    /// A one-time invite (12 characters, a week) for another parent to join.
    pub async fn create_invite(&self, user: &User) -> Result<Invite, AgentError> {
        self.require_owner(user, "invite parents")?;
        let code: String = {
            let mut rng = rand::rng();
            (0..12).map(|_| super::channels::CODE_ALPHABET[rng.random_range(0..super::channels::CODE_ALPHABET.len())] as char).collect()
        };
        let expires_at = Utc::now() + INVITE_TTL;
        self.b.store.create_invite(user.family_id, user.id, &super::channels::hash_code(&code), expires_at).await?;
        tracing::info!(family.id = %user.family_id, "invite created");
        Ok(Invite { code, expires_at })
    }

    /// Redeems an invite: a new parent named `name` joins (and, from
    /// Telegram, that account is linked to them).
    pub async fn redeem_invite(&self, code: &str, name: &str, telegram: Option<(i64, Option<&str>)>) -> Result<User, AgentError> {
        let name = crate::validate::label("name", name, 100)?;
        match self.b.store.redeem_invite(&super::channels::hash_code(code), &name, telegram, Utc::now()).await {
            Ok(user) => {
                tracing::info!(user.id = %user.id, family.id = %user.family_id, "a parent joined by invite");
                self.b.metrics.inc("dadly_parents_joined_total", &[]);
                Ok(user)
            }
            Err(StoreError::NotFound) => Err(AgentError::Invalid("this invite is not valid: it may have expired or been used already".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// The family's parents (removed ones marked so).
    pub async fn parents(&self, family_id: FamilyId) -> Result<Vec<User>, AgentError> {
        Ok(self.b.store.list_users(family_id).await?)
    }

    /// Removes a parent from the family: their tokens stop working and their
    /// Telegram account is unlinked; what they wrote stays, still theirs.
    pub async fn remove_parent(&self, owner: &User, id: UserId) -> Result<(), AgentError> {
        self.require_owner(owner, "remove parents")?;
        if id == owner.id {
            return Err(AgentError::Invalid("the owner cannot remove themselves".into()));
        }
        let target = self.b.store.list_users(owner.family_id).await?.into_iter().find(|u| u.id == id).ok_or(AgentError::NotFound)?;
        if target.role == Role::Removed {
            return Ok(());
        }
        self.b.store.set_role(owner.family_id, id, Role::Removed).await?;
        tracing::info!(family.id = %owner.family_id, user.id = %id, "parent removed");
        Ok(())
    }

    /// Merges two records of the same child (owner only): `from`'s entries,
    /// insights, capsules and names move to `into` (its names become aliases),
    /// then `from` goes. The vector index payloads follow.
    pub async fn merge_members(&self, user: &User, from: MemberId, into: MemberId) -> Result<Member, AgentError> {
        self.require_owner(user, "merge children")?;
        if from == into {
            return Err(AgentError::Invalid("a child cannot be merged into themselves".into()));
        }
        let family = self.b.store.list_members(user.family_id).await?;
        let a = family.iter().find(|m| m.id == from).ok_or(AgentError::NotFound)?.clone();
        let b = family.iter().find(|m| m.id == into).ok_or(AgentError::NotFound)?.clone();
        let touched = self.all_entries(user.family_id, Some(from)).await?;
        self.b.store.merge_members(user.family_id, from, into).await?;
        let mut aliases = b.aliases.clone();
        for n in a.names() {
            if !n.eq_ignore_ascii_case(&b.name) && !aliases.iter().any(|x| x.eq_ignore_ascii_case(n)) {
                aliases.push(n.to_string());
            }
        }
        aliases.truncate(20);
        let merged = self.b.store.update_member(user.family_id, into, &b.name, &aliases, b.birth_date.or(a.birth_date)).await?;
        // The index filters on children: move its payloads too.
        for e in touched {
            let now = self.b.store.get_entry(user.family_id, e.id).await?;
            let insight = self.b.store.get_insight(user.family_id, e.id).await?;
            let (topics, emotions) = insight.map(|i| (i.topics, i.emotions)).unwrap_or_default();
            self.b.index.set_payload(user.family_id, e.id, &now.member_ids, &topics, &emotions).await.map_err(|err| AgentError::Unavailable(Box::new(err)))?;
        }
        tracing::info!(family.id = %user.family_id, "two children's records merged");
        Ok(merged)
    }

    /// Renames a child, replaces their aliases or sets their birth date (owner only).
    pub async fn update_member(&self, user: &User, id: MemberId, patch: MemberPatch) -> Result<Member, AgentError> {
        self.require_owner(user, "change the children's records")?;
        let family = self.b.store.list_members(user.family_id).await?;
        let current = family.iter().find(|m| m.id == id).ok_or(AgentError::NotFound)?;
        let name = match &patch.name {
            Some(n) => crate::validate::label("name", n, 100)?,
            None => current.name.clone(),
        };
        if family.iter().any(|m| m.id != id && m.name.eq_ignore_ascii_case(&name)) {
            return Err(AgentError::Conflict(format!("a child named {name} already exists")));
        }
        let aliases = match &patch.aliases {
            Some(list) => {
                let mut out = Vec::new();
                for a in list {
                    let a = crate::validate::label("aliases", a, 100)?;
                    if !out.contains(&a) {
                        out.push(a);
                    }
                }
                if out.len() > 20 {
                    return Err(AgentError::Invalid("at most 20 aliases".into()));
                }
                out
            }
            None => current.aliases.clone(),
        };
        let birth_date = match patch.birth_date {
            Some(Some(d)) => Some(crate::validate::date("birth_date", d)?),
            Some(None) => None,
            None => current.birth_date,
        };
        Ok(self.b.store.update_member(user.family_id, id, &name, &aliases, birth_date).await?)
    }
}
