//! Erasure: an entry, a child, or a whole family, from every backend — the
//! store (rows, versions, insights, media rows, chat memory, kept replies),
//! the vector index, the blob store and the local trace files — with an
//! audit record that says an erasure happened, never what was erased.

use serde_json::json;

use crate::agent::{Agent, AgentError};
use crate::domain::*;
use crate::trace::as_in_json;

/// What an erasure removed, by kind.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ErasureCounts {
    pub entries_deleted: u64,
    pub entries_detached: u64,
    pub media: u64,
    pub capsules: u64,
    pub chat_turns_and_replies: u64,
    pub trace_runs: u64,
}

/// The pieces of a text to look for in other stores: the whole text, and
/// its opening (answers quote entries cut short).
fn needles(text: &str) -> Vec<String> {
    let mut out = vec![text.to_string()];
    let opening: String = text.chars().take(60).collect();
    if opening.chars().count() >= 24 && opening != text {
        out.push(opening);
    }
    out
}

impl Agent {
    /// Deletes one entry and every copy of its text: history, insight,
    /// vector, media (rows and objects), chat memory, kept replies, local traces.
    pub async fn delete_entry(&self, family_id: FamilyId, id: EntryId) -> Result<(), AgentError> {
        self.erase_entry(family_id, id, &mut ErasureCounts::default()).await
    }

    async fn erase_entry(&self, family_id: FamilyId, id: EntryId, counts: &mut ErasureCounts) -> Result<(), AgentError> {
        let entry = self.b.store.get_entry(family_id, id).await?;
        let mut texts: Vec<String> = self.b.store.entry_history(family_id, id).await?.into_iter().map(|v| v.raw_text).collect();
        texts.push(entry.raw_text.clone());
        let media = self.b.store.entry_media(family_id, id).await?;
        self.b.store.delete_entry(family_id, id).await?;
        for key in media.iter().filter_map(|m| m.blob_key.as_deref()) {
            // The entry is gone either way; a blob left behind is logged, not an error for the parent.
            match self.b.blobs.delete(family_id, key).await {
                Ok(()) => counts.media += 1,
                Err(e) => tracing::warn!(error = %e, entry.id = %id, "could not delete a media blob"),
            }
        }
        let mut found: Vec<String> = texts.iter().filter(|t| !t.trim().is_empty()).flat_map(|t| needles(t)).collect();
        found.push(id.to_string());
        counts.chat_turns_and_replies += self.b.store.forget_text(family_id, &found).await?;
        counts.trace_runs += self.b.tracer.sink().forget(found.iter().map(|n| as_in_json(n)).collect()).await;
        // Kept export files hold a copy of it.
        counts.media += self.forget_export_files(family_id).await?;
        counts.entries_deleted += 1;
        tracing::info!(entry.id = %id, family.id = %family_id, "entry deleted with its copies");
        self.wake_workers();
        Ok(())
    }

    /// A child's right to be forgotten (owner only, confirmed with the child's
    /// name): their entries go, entries about several children lose only them
    /// (unless `all_entries`), and so do their capsules, chat memory and traces.
    pub async fn erase_member(&self, owner: &User, member_id: MemberId, confirm: &str, all_entries: bool) -> Result<ErasureCounts, AgentError> {
        self.require_owner(owner, "erase a child's data")?;
        let family = self.b.store.list_members(owner.family_id).await?;
        let child = family.iter().find(|m| m.id == member_id).ok_or(AgentError::NotFound)?.clone();
        if !confirm.trim().eq_ignore_ascii_case(&child.name) {
            return Err(AgentError::Invalid(format!("to erase everything about this child, confirm with their name (`confirm={}`)", child.name)));
        }
        let fid = owner.family_id;
        let mut counts = ErasureCounts::default();
        for entry in self.all_entries(fid, Some(member_id)).await? {
            if all_entries || entry.member_ids.iter().all(|m| *m == member_id) {
                self.erase_entry(fid, entry.id, &mut counts).await?;
            } else {
                self.b.store.detach_member(fid, entry.id, member_id).await?;
                let remaining: Vec<MemberId> = entry.member_ids.iter().copied().filter(|m| *m != member_id).collect();
                let insight = self.b.store.get_insight(fid, entry.id).await?;
                let (topics, emotions) = insight.map(|i| (i.topics, i.emotions)).unwrap_or_default();
                self.b.index.set_payload(fid, entry.id, &remaining, &topics, &emotions).await.map_err(|e| AgentError::Unavailable(Box::new(e)))?;
                counts.entries_detached += 1;
            }
        }
        counts.capsules = self.b.store.list_capsules(fid).await?.iter().filter(|c| c.member_id == member_id).count() as u64;
        let names: Vec<String> = child.names().map(str::to_string).collect();
        counts.chat_turns_and_replies += self.b.store.forget_text(fid, &names).await?;
        counts.trace_runs += self.b.tracer.sink().forget(names.iter().map(|n| as_in_json(n)).chain([member_id.to_string()]).collect()).await;
        self.b.store.delete_member(fid, member_id).await?;
        self.b.store.compact().await?;
        self.b.store.record_erasure(fid, owner.id, "child", &json!(counts)).await?;
        self.b.metrics.inc("dadly_erasures_total", &[("kind", "child")]);
        tracing::info!(family.id = %fid, "a child's data was erased");
        Ok(counts)
    }

    /// Deletes the whole family (owner only, confirmed): every entry, child,
    /// parent, capsule, vector, media object and local trace.
    pub async fn erase_family(&self, owner: &User, confirm: &str) -> Result<ErasureCounts, AgentError> {
        self.require_owner(owner, "delete the family")?;
        if confirm.trim() != "erase-everything" {
            return Err(AgentError::Invalid("to delete the family and everything in it, confirm with `confirm=erase-everything`".into()));
        }
        let fid = owner.family_id;
        let mut counts = ErasureCounts::default();
        for entry in self.all_entries(fid, None).await? {
            self.erase_entry(fid, entry.id, &mut counts).await?;
            // The queued unindex job goes with the family's rows: unindex now.
            self.b.index.delete(fid, entry.id).await.map_err(|e| AgentError::Unavailable(Box::new(e)))?;
        }
        counts.capsules = self.b.store.list_capsules(fid).await?.len() as u64;
        let names: Vec<String> = self.b.store.list_members(fid).await?.iter().flat_map(|m| m.names().map(str::to_string).collect::<Vec<_>>()).collect();
        counts.trace_runs += self.b.tracer.sink().forget(names.iter().map(|n| as_in_json(n)).chain([fid.to_string()]).collect()).await;
        self.b.store.delete_family(fid).await?;
        self.b.store.compact().await?;
        self.b.store.record_erasure(fid, owner.id, "family", &json!(counts)).await?;
        self.b.metrics.inc("dadly_erasures_total", &[("kind", "family")]);
        tracing::info!(family.id = %fid, "a family was erased");
        Ok(counts)
    }

    /// The family's erasure audit: who, when, how many — never what.
    pub async fn erasures(&self, family_id: FamilyId) -> Result<Vec<crate::store::Erasure>, AgentError> {
        Ok(self.b.store.erasures(family_id).await?)
    }
}

impl Agent {
    /// Tells each family's owner, once, when a child has turned 14: the
    /// child may now ask for their data to be erased, and how.
    pub async fn age_notices(&self, today: chrono::NaiveDate) {
        let Some(born_by) = today.checked_sub_months(chrono::Months::new(14 * 12)) else { return };
        let due = match self.b.store.children_of_age(born_by).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for children turning 14");
                return;
            }
        };
        for (family_id, member_id) in due {
            match self.b.store.mark_age_notice(family_id, member_id).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "could not record an age notice");
                    continue;
                }
            }
            let name = self.b.store.list_members(family_id).await.ok().and_then(|m| m.into_iter().find(|m| m.id == member_id)).map(|m| m.name).unwrap_or_default();
            let text = format!(
                "{name} is 14 now. From this age {name} may ask for everything Dadly keeps about them to be erased — their entries, photos, voice notes and capsules. \
                 If they do, erase it in the app (Children → Erase) or with DELETE /v1/members/{member_id}?confirm={name}.\n\n\
                 {name}이(가) 14살이 되었어요. 이제 {name}은(는) Dadly에 남은 자신에 대한 기록을 지워 달라고 요청할 수 있어요. 요청하면 앱에서 지워 주세요."
            );
            self.b.metrics.inc("dadly_age_notices_total", &[]);
            tracing::info!(family.id = %family_id, member.id = %member_id, "owner told that a child turned 14");
            let Some(channel) = self.channel_for("telegram:") else { continue };
            for user in self.b.store.telegram_users(family_id, true).await.unwrap_or_default() {
                if let Err(e) = channel.notify(&format!("telegram:{user}"), &text).await {
                    tracing::warn!(error = %e, "could not send an age notice");
                }
            }
        }
    }
}
