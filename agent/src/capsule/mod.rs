//! Time capsules: a message for a child, sealed until an opening day. Until
//! then it is stored only encrypted (`seal`), listed only as its existence,
//! author, child and date, and kept out of every prompt, trace, export, log
//! and search; even its author cannot read it back. On the day, a scheduled
//! job opens it exactly once: it becomes an ordinary entry (enriched,
//! embedded, citable) and the family is told.

pub mod seal;
pub mod when;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use serde_json::json;

pub use seal::{Attachment, CapsuleKey, SealError, Sealed};

use crate::agent::{Agent, AgentError, Message, Outcome};
use crate::domain::*;
use crate::pipeline::JobError;
use crate::store::{Job, JobKind, NewCapsule, StoreError};
use crate::text::{is_korean, members};
use crate::trace::{RunType, Span};

/// Where an opened capsule's media comes from (`capsule:<id>`): its sealed attachment.
pub(crate) const CAPSULE_SOURCE: &str = "capsule:";

/// The photo and voice note types a capsule takes, recognised by their bytes.
pub fn check_attachment(a: &Attachment) -> Result<(), AgentError> {
    if a.bytes.is_empty() {
        return Err(AgentError::Invalid("the attachment is empty".into()));
    }
    match a.kind.as_str() {
        "photo" if a.content_type.starts_with("image/") => Ok(()),
        "voice" if a.content_type.starts_with("audio/") || a.content_type == "video/webm" => Ok(()),
        _ => Err(AgentError::Invalid("a capsule takes one photo or one voice note".into())),
    }
}

/// How long a chat draft waits for the parent's "yes".
const DRAFT_MINUTES: i64 = 30;

/// Whether a chat message asks to make a time capsule (its text is then kept
/// out of traces and chat memory from the start). A question about one
/// ("what was in Minji's time capsule?") is an ordinary question.
pub fn mentions_capsule(text: &str) -> bool {
    let t = text.trim_start().to_lowercase();
    if t.starts_with("/capsule") {
        return true;
    }
    let named = t.contains("time capsule") || t.contains("timecapsule") || t.contains("타임캡슐") || t.contains("타임 캡슐");
    named && crate::text::route::route(text).0 != crate::text::route::Intent::Ask
}

pub(crate) fn is_confirmation(text: &str) -> bool {
    let t = text.trim().trim_end_matches(['.', '!']).to_lowercase();
    matches!(t.as_str(), "/seal" | "yes" | "yes, seal it" | "seal it" | "seal" | "ok" | "네" | "응" | "좋아" | "봉인" | "봉인해줘" | "봉인해 줘")
}

fn is_cancel(text: &str) -> bool {
    let t = text.trim().to_lowercase();
    matches!(t.as_str(), "/cancel" | "cancel" | "no" | "취소" | "아니")
}

/// The message part of a capsule request: after the first colon or line
/// break, when there is one; else all of it.
pub(crate) fn capsule_body(text: &str) -> &str {
    let t = text.trim();
    let t = t.strip_prefix("/capsule").unwrap_or(t).trim();
    match t.find([':', '：', '\n']) {
        Some(i) if !t[i..].trim_start_matches([':', '：', '\n']).trim().is_empty() => t[i..].trim_start_matches([':', '：', '\n']).trim(),
        _ => t,
    }
}

/// Local noon of a day in the given offset, as an instant.
fn noon(day: chrono::NaiveDate, offset: &chrono::FixedOffset) -> Option<DateTime<Utc>> {
    offset.from_local_datetime(&day.and_time(NaiveTime::from_hms_opt(12, 0, 0)?)).single().map(|t| t.to_utc())
}

impl Agent {
    /// A photo or voice note sent while this parent has a capsule draft open
    /// in this chat goes into the draft (replacing one sent before it).
    /// `None` when there is no open draft.
    pub(crate) async fn attach_to_capsule_draft(&self, user: &User, chat_id: &str, attachment: Attachment, dedupe_key: Option<&str>, korean: bool) -> Result<Option<String>, AgentError> {
        let since = Utc::now() - chrono::Duration::minutes(DRAFT_MINUTES);
        let Some(draft) = self.b.store.draft_capsule(user.family_id, user.id, chat_id, since).await? else { return Ok(None) };
        check_attachment(&attachment)?;
        if let Some(key) = dedupe_key
            && !self.b.store.claim_update(user.family_id, key).await?
        {
            return Ok(Some(String::new()));
        }
        let sealed = self.capsule_key()?.seal_attachment(draft.id, &attachment);
        self.b.store.attach_to_draft(user.family_id, draft.id, &sealed).await?;
        tracing::info!(capsule.id = %draft.id, kind = %attachment.kind, "attachment sealed into a capsule draft");
        let what = match (korean, attachment.kind.as_str()) {
            (true, "voice") => "음성 메시지를",
            (true, _) => "사진을",
            (false, "voice") => "the voice note",
            (false, _) => "the photo",
        };
        Ok(Some(if korean {
            format!("타임캡슐에 {what} 넣었어요. \"네\"(또는 /seal)라고 답하면 봉인하고, /cancel 하면 지울게요.")
        } else {
            format!("I've put {what} in the capsule. Reply \"yes\" (or /seal) to seal it, or /cancel.")
        }))
    }

    fn capsule_key(&self) -> Result<&CapsuleKey, AgentError> {
        self.b.capsule_key.as_ref().ok_or_else(|| AgentError::Unavailable("no capsule key is configured (DADLY_CAPSULE_KEY)".into()))
    }

    /// Seals a message for a child until `open_at`. Nothing of the message is
    /// traced or logged: only its length.
    /// An attachment (a photo or voice note) is sealed the same way; with one,
    /// the message may be empty.
    pub async fn seal_capsule(&self, user: &User, member_id: MemberId, open_at: DateTime<Utc>, message: &str, attachment: Option<Attachment>) -> Result<Capsule, AgentError> {
        self.new_capsule(user, member_id, open_at, message, attachment, None).await
    }

    async fn new_capsule(&self, user: &User, member_id: MemberId, open_at: DateTime<Utc>, message: &str, attachment: Option<Attachment>, draft_chat: Option<String>) -> Result<Capsule, AgentError> {
        let message = match &attachment {
            Some(a) => {
                check_attachment(a)?;
                crate::validate::optional_text("message", message)?
            }
            None => crate::validate::text("message", message)?,
        };
        crate::validate::instant("open_at", open_at)?;
        if open_at <= Utc::now() {
            return Err(AgentError::Invalid("`open_at` must be in the future".into()));
        }
        if !self.b.store.list_members(user.family_id).await?.iter().any(|m| m.id == member_id) {
            return Err(AgentError::Invalid(format!("no child with id {member_id} in this family")));
        }
        let id = uuid::Uuid::now_v7();
        let key = self.capsule_key()?;
        let sealed = key.seal(id, &message);
        let sealed_attachment = attachment.as_ref().map(|a| key.seal_attachment(id, a));
        let root = self.b.tracer.root(
            "seal_capsule",
            RunType::Chain,
            json!({ "capsule_id": id, "member_id": member_id, "open_at": open_at, "chars": message.chars().count(), "attachment": attachment.as_ref().map(|a| &a.kind) }),
        );
        let new = NewCapsule { id, author_id: user.id, member_id, open_at, sealed, attachment: sealed_attachment, draft_chat };
        match self.b.store.create_capsule(user.family_id, &new).await {
            Ok(capsule) => {
                root.end(json!({ "capsule_id": capsule.id, "draft": new.draft_chat.is_some() }));
                self.b.metrics.inc("dadly_capsules_total", &[("event", if new.draft_chat.is_some() { "drafted" } else { "sealed" })]);
                tracing::info!(capsule.id = %capsule.id, family.id = %user.family_id, "capsule stored sealed");
                self.wake_workers();
                Ok(capsule)
            }
            Err(e) => {
                root.fail(&e.to_string());
                Err(e.into())
            }
        }
    }

    /// The family's capsules: sealed ones as their existence only.
    pub async fn capsules(&self, family_id: FamilyId) -> Result<Vec<Capsule>, AgentError> {
        Ok(self.b.store.list_capsules(family_id).await?)
    }

    /// Deletes a capsule (the only thing anyone can do with a sealed one).
    pub async fn delete_capsule(&self, family_id: FamilyId, id: uuid::Uuid) -> Result<(), AgentError> {
        self.b.store.delete_capsule(family_id, id).await?;
        self.b.metrics.inc("dadly_capsules_total", &[("event", "deleted")]);
        Ok(())
    }

    /// A capsule request in chat: drafts it and asks for confirmation, seals
    /// a draft on "yes", drops it on "cancel". `None` when the message is
    /// none of these.
    /// A photo or voice note sent with the request is sealed with it.
    pub(crate) async fn capsule_chat(&self, user: &User, message: &Message, text: &str, attachment: Option<Attachment>) -> Result<Option<Outcome>, AgentError> {
        let korean = is_korean(text);
        let since = Utc::now() - chrono::Duration::minutes(DRAFT_MINUTES);
        if is_confirmation(text) || is_cancel(text) {
            let Some(draft) = self.b.store.draft_capsule(user.family_id, user.id, &message.chat_id, since).await? else { return Ok(None) };
            if is_cancel(text) {
                self.b.store.delete_capsule(user.family_id, draft.id).await?;
                let reply = if korean { "타임캡슐을 만들지 않았어요. 내용은 지웠어요." } else { "Okay — no capsule. I've discarded that message." };
                return Ok(Some(Outcome::Capsule { reply: reply.into(), capsule: None }));
            }
            let capsule = self.b.store.confirm_capsule(user.family_id, draft.id).await?;
            self.b.metrics.inc("dadly_capsules_total", &[("event", "sealed")]);
            self.wake_workers();
            let day = capsule.open_at.with_timezone(message.sent_at.offset()).format("%Y-%m-%d");
            let reply = if korean {
                format!("봉인했어요 ✉️ {day}에 열려요. 그때까지는 아무도 (쓰신 분도) 읽을 수 없어요.")
            } else {
                format!("Sealed ✉️ It opens on {day}. Until then nobody can read it — not even you.")
            };
            return Ok(Some(Outcome::Capsule { reply, capsule: Some(capsule) }));
        }
        if !mentions_capsule(text) {
            return Ok(None);
        }
        let family = self.b.store.list_members(user.family_id).await?;
        let named = members::detect_members(text, &family);
        let child = match named.as_slice() {
            [one] => family.iter().find(|m| m.id == *one),
            _ => None,
        };
        let today = message.sent_at.date_naive();
        let Some(child) = child else {
            let reply = if korean { "누구에게 보내는 타임캡슐인지 아이 이름을 한 명 적어 주세요." } else { "Who is the capsule for? Name one child in the message." };
            return Ok(Some(Outcome::Capsule { reply: reply.into(), capsule: None }));
        };
        let Some(day) = when::opening_date(text, Some(child), today) else {
            let reply = if korean {
                "언제 열지 알려 주세요: \"18번째 생일에\", \"10년 후\", 또는 \"2036-03-14\"처럼요.".to_string()
            } else if child.birth_date.is_none() {
                format!("When should it open? Say \"in 10 years\" or a date like 2036-03-14 (for \"on {}'s 18th birthday\", add a birth date first).", child.name)
            } else {
                "When should it open? Say \"on her 18th birthday\", \"in 10 years\" or a date like 2036-03-14.".into()
            };
            return Ok(Some(Outcome::Capsule { reply, capsule: None }));
        };
        let open_at = noon(day, message.sent_at.offset()).ok_or_else(|| AgentError::Invalid("that opening day is out of range".into()))?;
        // A redelivered request drafts nothing twice.
        if let Some(key) = &message.dedupe_key
            && !self.b.store.claim_update(user.family_id, key).await?
        {
            return Ok(Some(Outcome::Duplicate));
        }
        let with = attachment.as_ref().map(|a| a.kind.clone());
        self.new_capsule(user, child.id, open_at, capsule_body(text), attachment, Some(message.chat_id.clone())).await?;
        let age = when::age_on(child, day).map(|a| if korean { format!(" ({a}살)") } else { format!(" (age {a})") }).unwrap_or_default();
        let reply = match (korean, with.as_deref()) {
            (true, Some(kind)) => format!(
                "{}에게 보내는 메시지와 {}을 {day}{age}까지 봉인할까요? \"네\"(또는 /seal)라고 답하면 봉인하고, /cancel 하면 지울게요.",
                child.name,
                if kind == "voice" { "음성 메시지" } else { "사진" }
            ),
            (true, None) => format!(
                "{}에게 보내는 메시지를 {day}{age}까지 봉인할까요? 사진이나 음성 메시지를 지금 보내면 함께 넣을게요. \"네\"(또는 /seal)라고 답하면 봉인하고, /cancel 하면 지울게요.",
                child.name
            ),
            (false, Some(kind)) => format!("Shall I seal this message and its {} for {} until {day}{age}? Reply \"yes\" (or /seal) to seal it, or /cancel.", if kind == "voice" { "voice note" } else { "photo" }, child.name),
            (false, None) => format!(
                "Shall I seal this message for {} until {day}{age}? Send a photo or a voice note now to put it in too. Reply \"yes\" (or /seal) to seal it, or /cancel.",
                child.name
            ),
        };
        Ok(Some(Outcome::Capsule { reply, capsule: None }))
    }

    /// The opening job: decrypts the capsule, makes it an entry exactly once,
    /// and tells the family (each linked parent, once).
    pub(crate) async fn open_capsule_job(&self, job: &Job, root: &Span) -> Result<&'static str, JobError> {
        let (capsule, sealed) = match self.b.store.sealed_capsule(job.family_id, job.entry_id).await {
            Ok(found) => found,
            Err(StoreError::NotFound) => return Ok("deleted"),
            Err(e) => return Err(e.into()),
        };
        let entry_id = match capsule.entry_id {
            Some(entry_id) => entry_id,
            None => {
                let key = self.capsule_key().map_err(|e| JobError::Waiting(e.to_string()))?;
                let message = key.open(capsule.id, &sealed).map_err(JobError::Sealed)?;
                // The attachment becomes the entry's media, fetched (decrypted) by its own job.
                let attachment = match self.b.store.capsule_attachment(job.family_id, capsule.id).await? {
                    Some(a) => Some(key.open_attachment(capsule.id, &a).map_err(JobError::Sealed)?),
                    None => None,
                };
                let voice_only = message.is_empty() && attachment.as_ref().is_some_and(|a| a.kind == "voice");
                let mut jobs = vec![];
                if voice_only {
                    jobs.push(JobKind::Transcribe);
                } else {
                    jobs.extend([JobKind::Embed, JobKind::Enrich]);
                    if attachment.is_some() {
                        jobs.push(JobKind::FetchMedia);
                    }
                }
                let new = NewEntry {
                    author_id: capsule.author_id,
                    source: Source::Capsule,
                    raw_text: message,
                    member_ids: vec![capsule.member_id],
                    // The day it was written: the timeline shows it then, opened now.
                    occurred_at: capsule.created_at,
                    status: if voice_only { EntryStatus::Transcribing } else { EntryStatus::Ready },
                    media: attachment
                        .iter()
                        .map(|a| PendingMedia { kind: a.kind.clone(), source_ref: format!("{CAPSULE_SOURCE}{}", capsule.id), content_type: a.content_type.clone() })
                        .collect(),
                    ..Default::default()
                };
                let span = root.child("open_capsule", RunType::Tool, json!({ "capsule_id": capsule.id, "attachment": attachment.as_ref().map(|a| &a.kind) }));
                match self.b.store.open_capsule(job.family_id, capsule.id, new, &jobs).await? {
                    Some(entry) => {
                        span.end(json!({ "entry_id": entry.id }));
                        self.b.metrics.inc("dadly_capsules_total", &[("event", "opened")]);
                        tracing::info!(capsule.id = %capsule.id, entry.id = %entry.id, "capsule opened");
                        self.wake_workers();
                        entry.id
                    }
                    None => {
                        span.end(json!({ "already_opened": true }));
                        return Ok("already opened");
                    }
                }
            }
        };
        self.deliver_capsule(job.family_id, &capsule, entry_id).await
    }

    /// Tells every linked parent, once: the delivery is claimed before it is sent.
    async fn deliver_capsule(&self, family_id: FamilyId, capsule: &Capsule, entry_id: EntryId) -> Result<&'static str, JobError> {
        if !self.b.store.capsule_delivered(family_id, capsule.id).await? {
            return Ok("opened; delivered before");
        }
        let Some(channel) = self.channel_for("telegram:") else { return Ok("opened") };
        let entry = self.b.store.get_entry(family_id, entry_id).await?;
        let family = self.b.store.list_members(family_id).await?;
        let child = family.iter().find(|m| m.id == capsule.member_id).map(|m| m.name.clone()).unwrap_or_default();
        let author = self.b.store.get_user(capsule.author_id).await.map(|u| u.name).unwrap_or_default();
        let written = capsule.created_at.format("%Y-%m-%d");
        let text = if is_korean(&entry.raw_text) {
            format!("📦 {author}님이 {written}에 {child}에게 남긴 타임캡슐이 오늘 열렸어요:\n\n{}", entry.raw_text)
        } else {
            format!("📦 A time capsule for {child} from {author}, sealed on {written}, opens today:\n\n{}", entry.raw_text)
        };
        for user in self.b.store.telegram_users(family_id, false).await? {
            if let Err(e) = channel.notify(&format!("telegram:{user}"), &text).await {
                tracing::warn!(error = %e, capsule.id = %capsule.id, "could not deliver an opened capsule to a parent");
            }
        }
        Ok("opened and delivered")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capsule_requests_and_answers_are_recognised() {
        assert!(mentions_capsule("Time capsule for Minji, open on her 18th birthday: I love you"));
        assert!(mentions_capsule("/capsule Minji in 10 years: hi"));
        assert!(mentions_capsule("민지 타임캡슐, 10년 후에: 사랑해"));
        assert!(!mentions_capsule("Minji lost a tooth"));
        assert!(!mentions_capsule("What was in Minji's time capsule?"), "a question about one");
        assert!(!mentions_capsule("민지 타임캡슐에 뭐라고 썼지?"));
        assert_eq!(capsule_body("Time capsule for Minji on her 18th birthday: Dear Minji, we love you"), "Dear Minji, we love you");
        assert_eq!(capsule_body("/capsule 민지 10년 후\n사랑해"), "사랑해");
        assert!(is_confirmation("Yes!") && is_confirmation("네") && is_confirmation("/seal"));
        assert!(is_cancel("/cancel") && !is_cancel("yes"));
    }
}
