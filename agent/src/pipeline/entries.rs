//! Entries as a resource: read with insights and history, list with filters,
//! edit (history kept, insights and vector recomputed), delete everywhere.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::agent::{Agent, AgentError, EntryView, MEDIA_LINK_TTL, MediaView};
use crate::domain::*;
use crate::store::JobKind;
use crate::text::members;
use crate::trace::RunType;

/// Listing parameters, as the API takes them.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub member_id: Option<MemberId>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub topic: Option<String>,
    pub emotion: Option<String>,
    pub before: Option<(DateTime<Utc>, EntryId)>,
    pub limit: Option<u32>,
}

/// An edit to an entry.
#[derive(Debug, Clone, Default)]
pub struct EntryPatch {
    pub text: Option<String>,
    pub member_ids: Option<Vec<MemberId>>,
}

pub const MAX_PAGE: u32 = 100;

impl Agent {
    pub async fn entry(&self, family_id: FamilyId, id: EntryId) -> Result<EntryView, AgentError> {
        let entry = self.b.store.get_entry(family_id, id).await?;
        let insights = self.b.store.get_insight(family_id, id).await?.filter(|i| i.entry_version == entry.version);
        let indexed = self.b.store.indexed_version(family_id, id).await? == Some(entry.version);
        let history = self.b.store.entry_history(family_id, id).await?;
        let mut media = Vec::new();
        for m in self.b.store.entry_media(family_id, id).await? {
            let url = match &m.blob_key {
                Some(key) => Some(self.b.blobs.signed_url(family_id, key, MEDIA_LINK_TTL).await.map_err(|e| AgentError::Unavailable(Box::new(e)))?),
                None => None,
            };
            media.push(MediaView { kind: m.kind, content_type: m.content_type, size_bytes: m.size_bytes, sha256: m.sha256, url });
        }
        Ok(EntryView { entry, insights, indexed, history, media })
    }

    /// Every entry of the family (or about one child), newest first, read a page at a time.
    pub(crate) async fn all_entries(&self, family_id: FamilyId, member_id: Option<MemberId>) -> Result<Vec<Entry>, AgentError> {
        let mut all = Vec::new();
        let mut before = None;
        loop {
            let filter = EntryFilter { member_id, before, limit: 500, ..Default::default() };
            let page = self.b.store.list_entries(family_id, &filter).await?;
            let Some(last) = page.last() else { break };
            before = Some((last.occurred_at, last.id));
            let done = page.len() < 500;
            all.extend(page);
            if done {
                break;
            }
        }
        Ok(all)
    }

    pub async fn entries(&self, family_id: FamilyId, q: ListQuery) -> Result<Vec<Entry>, AgentError> {
        let limit = q.limit.unwrap_or(20);
        if limit == 0 || limit > MAX_PAGE {
            return Err(AgentError::Invalid(format!("limit must be between 1 and {MAX_PAGE}")));
        }
        for (field, t) in [("from", q.from), ("to", q.to), ("cursor", q.before.map(|(t, _)| t))] {
            if let Some(t) = t {
                crate::validate::instant(field, t)?;
            }
        }
        for (field, v) in [("topic", &q.topic), ("emotion", &q.emotion)] {
            if let Some(v) = v {
                crate::validate::no_nul(field, v)?;
            }
        }
        if let (Some(from), Some(to)) = (q.from, q.to)
            && from >= to
        {
            return Err(AgentError::Invalid("`from` must be before `to`".into()));
        }
        if let Some(m) = q.member_id
            && !self.b.store.list_members(family_id).await?.iter().any(|k| k.id == m)
        {
            return Err(AgentError::Invalid(format!("no child with id {m} in this family")));
        }
        let filter = EntryFilter {
            member_id: q.member_id,
            from: q.from,
            to: q.to,
            topic: q.topic,
            emotion: q.emotion,
            before: q.before,
            limit,
        };
        Ok(self.b.store.list_entries(family_id, &filter).await?)
    }

    pub async fn edit_entry(&self, user: &User, id: EntryId, patch: EntryPatch) -> Result<Entry, AgentError> {
        let current = self.b.store.get_entry(user.family_id, id).await?;
        let text = match &patch.text {
            Some(t) => super::record::validate_text(t)?,
            None => current.raw_text.clone(),
        };
        let known = self.b.store.list_members(user.family_id).await?;
        let member_ids = match patch.member_ids {
            Some(ids) => {
                if let Some(unknown) = ids.iter().find(|id| !known.iter().any(|m| m.id == **id)) {
                    return Err(AgentError::Invalid(format!("no child with id {unknown} in this family")));
                }
                ids
            }
            None if patch.text.is_some() => members::detect_members(&text, &known),
            None => current.member_ids.clone(),
        };
        if text == current.raw_text && member_ids == current.member_ids {
            return Ok(current);
        }
        let mut root = self.b.tracer.root("edit_entry", RunType::Chain, json!({ "entry_id": id, "text": text }));
        root.metadata("entry_id", json!(id));
        let entry = self.b.store.update_entry(user.family_id, id, &text, &member_ids, &[JobKind::Embed, JobKind::Enrich]).await;
        match &entry {
            Ok(e) => root.end(json!({ "version": e.version })),
            Err(e) => root.fail(&e.to_string()),
        }
        self.wake_workers();
        Ok(entry?)
    }

}
