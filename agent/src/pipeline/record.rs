//! Record: validate, attribute children, resolve the day, store durably with
//! its jobs — all before anything slow happens.

use chrono::{DateTime, FixedOffset, NaiveTime, TimeZone, Utc};
use serde_json::json;

use crate::agent::{Agent, AgentError};
#[cfg(test)]
use crate::agent::MAX_TEXT_CHARS;
use crate::domain::*;
use crate::store::JobKind;
use crate::text::{dates, members};
use crate::trace::{RunType, Span};

/// An entry to record, from chat or from the entries API.
#[derive(Debug, Clone)]
pub struct RecordInput {
    pub text: String,
    pub source: Source,
    /// When it happened, if the caller knows; otherwise resolved from the text.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The children it is about, if the caller knows; otherwise detected.
    pub member_ids: Option<Vec<MemberId>>,
    pub sent_at: DateTime<FixedOffset>,
    /// Channel update id; see `NewEntry::dedupe_key`.
    pub dedupe_key: Option<String>,
    pub reply_to: Option<String>,
}

/// Checks a text a parent sent: not blank, not too long.
pub(crate) fn validate_text(text: &str) -> Result<String, AgentError> {
    crate::validate::text("text", text)
}

/// The instant an entry happened: the resolved day at the time it was sent
/// (or noon, for another day), in the parent's offset.
pub(crate) fn occurred_at(text: &str, sent_at: DateTime<FixedOffset>) -> DateTime<Utc> {
    let today = sent_at.date_naive();
    match dates::resolve_date(text, today) {
        Some(day) if day != today => {
            let noon = day.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default());
            sent_at.offset().from_local_datetime(&noon).single().map(|t| t.with_timezone(&Utc)).unwrap_or(sent_at.to_utc())
        }
        _ => sent_at.to_utc(),
    }
}

/// The children an entry is about: the ids the caller gave (each one of the
/// family's, each once, in order), else those the text names.
pub(crate) fn resolve_members(given: Option<Vec<MemberId>>, text: &str, known: &[Member]) -> Result<Vec<MemberId>, AgentError> {
    let Some(given) = given else { return Ok(members::detect_members(text, known)) };
    let mut ids = Vec::with_capacity(given.len());
    for id in given {
        if !known.iter().any(|m| m.id == id) {
            return Err(AgentError::Invalid(format!("no child with id {id} in this family")));
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

impl Agent {
    /// Stores an entry (and queues its enrichment and indexing) in one transaction.
    pub async fn record(&self, user: &User, input: RecordInput) -> Result<Entry, AgentError> {
        let mut root = self.b.tracer.root("record", RunType::Chain, json!({ "text": input.text, "source": input.source.as_str() }));
        match self.record_in(user, input, &root).await {
            Ok(entry) => {
                root.metadata("entry_id", json!(entry.id));
                root.end(json!({ "entry_id": entry.id }));
                Ok(entry)
            }
            Err(e) => {
                root.fail(&e.to_string());
                Err(e)
            }
        }
    }

    pub(crate) async fn record_in(&self, user: &User, input: RecordInput, parent: &Span) -> Result<Entry, AgentError> {
        self.record_with_members(user, input, parent).await.map(|(entry, _)| entry)
    }

    /// As `record_in`, and the family's members it matched names against
    /// (the chat's reply names the entry's children without reading them again).
    pub(crate) async fn record_with_members(&self, user: &User, input: RecordInput, parent: &Span) -> Result<(Entry, Vec<Member>), AgentError> {
        let text = validate_text(&input.text)?;
        crate::validate::local_instant("sent_at", input.sent_at)?;
        if let Some(t) = input.occurred_at {
            crate::validate::instant("occurred_at", t)?;
        }
        let known = self.b.store.list_members(user.family_id).await?;
        let member_ids = resolve_members(input.member_ids, &text, &known)?;
        let occurred_at = input.occurred_at.unwrap_or_else(|| occurred_at(&text, input.sent_at));
        let mut span = parent.child("store_entry", RunType::Tool, json!({ "members": member_ids, "occurred_at": occurred_at }));
        let new = NewEntry {
            author_id: user.id,
            source: input.source,
            raw_text: text,
            member_ids,
            occurred_at,
            dedupe_key: input.dedupe_key,
            reply_to: input.reply_to,
            ..Default::default()
        };
        let entry = match self.b.store.insert_entry(user.family_id, new, &[JobKind::Embed, JobKind::Enrich]).await {
            Ok(entry) => entry,
            Err(e) => {
                span.fail(&e.to_string());
                return Err(e.into());
            }
        };
        span.metadata("entry_id", json!(entry.id));
        span.end(json!({ "entry_id": entry.id }));
        self.b.metrics.inc("dadly_entries_recorded_total", &[("source", entry.source.as_str())]);
        tracing::info!(entry.id = %entry.id, family.id = %user.family_id, entry.chars = entry.raw_text.chars().count(), "entry recorded");
        self.wake_workers();
        Ok((entry, known))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurred_at_uses_send_time_today_and_local_noon_otherwise() {
        let sent = DateTime::parse_from_rfc3339("2026-11-26T21:15:00+09:00").unwrap();
        assert_eq!(occurred_at("Minji lost her first tooth today", sent), sent.to_utc());
        let y = occurred_at("준호가 어제 처음 자전거를 탔다", sent);
        assert_eq!(y, DateTime::parse_from_rfc3339("2026-11-25T12:00:00+09:00").unwrap().to_utc());
    }

    #[test]
    fn given_children_must_be_the_familys_and_count_once() {
        let kid = |name: &str| Member { id: uuid::Uuid::now_v7(), family_id: uuid::Uuid::nil(), name: name.into(), aliases: vec![], birth_date: None, created_at: Utc::now(), age_notice_at: None };
        let (a, b) = (kid("Minji"), kid("Junho"));
        let known = vec![a.clone(), b.clone()];
        assert_eq!(resolve_members(Some(vec![a.id, b.id, a.id]), "", &known).unwrap(), vec![a.id, b.id], "not only neighbouring repeats");
        assert!(resolve_members(Some(vec![uuid::Uuid::now_v7()]), "", &known).is_err());
        assert_eq!(resolve_members(None, "Junho sang", &known).unwrap(), vec![b.id]);
        assert_eq!(crate::validate::optional_text("caption", "\u{200B}\u{FEFF} ").unwrap(), "", "invisible-only is empty, not an error");
        assert_eq!(crate::validate::optional_text("caption", " 민지。🦒 ").unwrap(), "민지。🦒");
        assert!(crate::validate::optional_text("caption", "a\0b").is_err());
        assert!(crate::validate::optional_text("caption", &"가".repeat(MAX_TEXT_CHARS + 1)).is_err());
    }

    #[test]
    fn blank_and_oversized_texts_are_refused() {
        assert!(validate_text("   \n").is_err());
        assert!(validate_text(&"a".repeat(MAX_TEXT_CHARS + 1)).is_err());
        assert_eq!(validate_text("  hi  ").unwrap(), "hi");
    }
}
