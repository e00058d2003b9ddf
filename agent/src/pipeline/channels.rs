//! What messaging channels need beyond chat: one-time link codes that tie a
//! Telegram account to a parent, media messages (voice notes, photos, albums)
//! recorded at once and fetched in the background, edits by message, the
//! family's export.

use chrono::{DateTime, FixedOffset, Utc};
use rand::Rng;
use serde::Serialize;
use serde_json::json;

use crate::agent::{Agent, AgentError};
use crate::domain::*;
use crate::store::{JobKind, StoreError};
use crate::text::members;

/// How long a link code works.
pub const LINK_CODE_TTL: chrono::Duration = chrono::Duration::minutes(15);
/// Letters and digits that cannot be confused with each other.
pub(crate) const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

#[derive(Debug, Clone, Serialize)]
pub struct LinkCode {
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

/// A photo or voice note from a channel.
#[derive(Debug, Clone)]
pub struct MediaMessage {
    pub media: PendingMedia,
    pub caption: Option<String>,
    /// Messages with the same album key become one entry.
    pub album_key: Option<String>,
    pub dedupe_key: Option<String>,
    pub reply_to: Option<String>,
    pub sent_at: DateTime<FixedOffset>,
    /// The conversation it came from: a capsule drafted there takes the media.
    pub chat_id: Option<String>,
    /// Whether the parent reads Korean (for replies when there is no caption to tell).
    pub korean: bool,
}

/// What recording a media message did.
#[derive(Debug, Clone)]
pub enum MediaOutcome {
    /// A new entry.
    Recorded(Entry),
    /// Added to the entry an earlier message of the same album started.
    JoinedAlbum(Entry),
    /// The channel delivered it before; nothing new was stored.
    Duplicate,
    /// It went into a time capsule (drafted with its caption, or an open draft
    /// of this chat); `reply` says what happens next. Nothing was recorded.
    Capsule { reply: String },
}

pub(crate) fn hash_code(code: &str) -> String {
    let normal: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_uppercase();
    crate::blob::sha256_hex(normal.as_bytes())
}

impl Agent {
    /// A one-time code the parent sends to the bot (`/start CODE`) to link their account.
    pub async fn create_link_code(&self, user: &User) -> Result<LinkCode, AgentError> {
        let code: String = {
            // ThreadRng is not Send: keep it out of the await below.
            let mut rng = rand::rng();
            (0..8).map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char).collect()
        };
        let expires_at = Utc::now() + LINK_CODE_TTL;
        self.b.store.create_link_code(user.family_id, user.id, &hash_code(&code), expires_at).await?;
        Ok(LinkCode { code, expires_at })
    }

    /// Links a Telegram account to the parent a valid, unused code names.
    pub async fn link_telegram(&self, code: &str, telegram_user_id: i64, language: Option<&str>) -> Result<User, AgentError> {
        match self.b.store.redeem_link_code(&hash_code(code), telegram_user_id, language, Utc::now()).await {
            Ok(user) => {
                tracing::info!(user.id = %user.id, family.id = %user.family_id, "telegram account linked");
                Ok(user)
            }
            Err(StoreError::NotFound) => Err(AgentError::Invalid("this code is not valid: it may have expired or been used already".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// The parent a Telegram account is linked to, and their language override.
    pub async fn telegram_user(&self, telegram_user_id: i64) -> Result<Option<(User, Option<String>)>, AgentError> {
        Ok(self.b.store.telegram_link(telegram_user_id).await?)
    }

    pub async fn unlink_telegram(&self, telegram_user_id: i64, user: &User) -> Result<bool, AgentError> {
        Ok(self.b.store.unlink_telegram(telegram_user_id, user.family_id).await?)
    }

    pub async fn set_telegram_language(&self, telegram_user_id: i64, user: &User, language: Option<&str>) -> Result<(), AgentError> {
        Ok(self.b.store.set_telegram_language(telegram_user_id, user.family_id, language).await?)
    }

    /// Records a photo or voice note at once; fetching (and transcribing) runs
    /// as jobs, so nothing slow stands between the message and its safety.
    pub async fn record_media(&self, user: &User, msg: MediaMessage) -> Result<MediaOutcome, AgentError> {
        let caption = crate::validate::optional_text("caption", msg.caption.as_deref().unwrap_or(""))?;
        crate::validate::local_instant("sent_at", msg.sent_at)?;
        if let Some(outcome) = self.media_for_capsule(user, &msg, &caption).await? {
            self.wake_workers();
            return Ok(outcome);
        }
        let mut root = self.b.tracer.root("record_media", crate::trace::RunType::Chain, json!({ "kind": msg.media.kind, "caption": caption }));
        let result = self.record_media_in(user, msg, caption).await;
        match &result {
            Ok(MediaOutcome::Recorded(e) | MediaOutcome::JoinedAlbum(e)) => {
                root.metadata("entry_id", json!(e.id));
                root.end(json!({ "entry_id": e.id }));
            }
            Ok(MediaOutcome::Duplicate) => root.end(json!({ "duplicate": true })),
            Ok(MediaOutcome::Capsule { .. }) => root.end(json!({ "capsule": true })),
            Err(e) => root.fail(&e.to_string()),
        }
        self.wake_workers();
        result
    }

    /// A photo or voice note whose caption asks for a time capsule, or sent
    /// while a capsule draft is open in its chat, is sealed into the capsule
    /// (fetched now: it must never reach the journal or a trace). Its caption
    /// and bytes are not traced or logged.
    async fn media_for_capsule(&self, user: &User, msg: &MediaMessage, caption: &str) -> Result<Option<MediaOutcome>, AgentError> {
        let Some(chat_id) = &msg.chat_id else { return Ok(None) };
        let asks = crate::capsule::mentions_capsule(caption);
        if !asks && !caption.is_empty() {
            return Ok(None);
        }
        let since = Utc::now() - chrono::Duration::minutes(30);
        if !asks && self.b.store.draft_capsule(user.family_id, user.id, chat_id, since).await?.is_none() {
            return Ok(None);
        }
        let source = &msg.media.source_ref;
        let channel = self.channel_for(source).ok_or_else(|| AgentError::Unavailable(format!("no channel for {source}").into()))?;
        let bytes = channel.fetch(source).await.map_err(|e| AgentError::Unavailable(Box::new(e)))?;
        let attachment = crate::capsule::Attachment { kind: msg.media.kind.clone(), content_type: msg.media.content_type.clone(), bytes };
        let korean = if caption.is_empty() { msg.korean } else { crate::text::is_korean(caption) };
        if asks {
            let message = crate::agent::Message {
                chat_id: chat_id.clone(),
                text: caption.to_string(),
                sent_at: msg.sent_at,
                source: if msg.media.kind == "voice" { Source::Voice } else { Source::Photo },
                dedupe_key: msg.dedupe_key.clone(),
                reply_to: msg.reply_to.clone(),
            };
            return Ok(match self.capsule_chat(user, &message, caption, Some(attachment)).await? {
                Some(crate::agent::Outcome::Capsule { reply, .. }) => Some(MediaOutcome::Capsule { reply }),
                Some(crate::agent::Outcome::Duplicate) => Some(MediaOutcome::Duplicate),
                _ => None,
            });
        }
        Ok(match self.attach_to_capsule_draft(user, chat_id, attachment, msg.dedupe_key.as_deref(), korean).await? {
            Some(reply) if reply.is_empty() => Some(MediaOutcome::Duplicate),
            Some(reply) => Some(MediaOutcome::Capsule { reply }),
            None => None,
        })
    }

    async fn record_media_in(&self, user: &User, msg: MediaMessage, caption: String) -> Result<MediaOutcome, AgentError> {
        let fid = user.family_id;
        if let Some(album) = &msg.album_key {
            for _ in 0..2 {
                if let Some(entry) = self.b.store.entry_by_external_key(fid, album).await? {
                    return match self.b.store.add_pending_media(fid, entry.id, &msg.media, msg.dedupe_key.as_deref()).await {
                        Ok(()) => Ok(MediaOutcome::JoinedAlbum(entry)),
                        Err(StoreError::AlreadyHandled) => Ok(MediaOutcome::Duplicate),
                        Err(e) => Err(e.into()),
                    };
                }
                match self.insert_media_entry(user, &msg, &caption).await {
                    // Another photo of the album made the entry first: join it.
                    Err(AgentError::Conflict(_)) => continue,
                    other => return other,
                }
            }
            return Err(AgentError::Conflict("the album entry could not be created".into()));
        }
        self.insert_media_entry(user, &msg, &caption).await
    }

    async fn insert_media_entry(&self, user: &User, msg: &MediaMessage, caption: &str) -> Result<MediaOutcome, AgentError> {
        let known = self.b.store.list_members(user.family_id).await?;
        let voice = msg.media.kind == "voice";
        let mut jobs = vec![if voice { JobKind::Transcribe } else { JobKind::FetchMedia }];
        if !voice && !caption.is_empty() {
            jobs.extend([JobKind::Embed, JobKind::Enrich]);
        }
        let new = NewEntry {
            author_id: user.id,
            source: if voice { Source::Voice } else { Source::Photo },
            raw_text: if voice { String::new() } else { caption.to_string() },
            member_ids: members::detect_members(caption, &known),
            occurred_at: super::record::occurred_at(caption, msg.sent_at),
            status: if voice { EntryStatus::Transcribing } else { EntryStatus::Ready },
            dedupe_key: msg.dedupe_key.clone(),
            external_key: msg.album_key.clone(),
            reply_to: msg.reply_to.clone(),
            media: vec![msg.media.clone()],
        };
        match self.b.store.insert_entry(user.family_id, new, &jobs).await {
            Ok(entry) => {
                self.b.metrics.inc("dadly_entries_recorded_total", &[("source", entry.source.as_str())]);
                Ok(MediaOutcome::Recorded(entry))
            }
            Err(StoreError::AlreadyHandled) => Ok(MediaOutcome::Duplicate),
            // Another message of the same album won the race to create the entry.
            Err(StoreError::Conflict(m)) => Err(AgentError::Conflict(m)),
            Err(e) => Err(e.into()),
        }
    }

    /// The entry a channel message is about (`source` message or `transcript` reply).
    pub async fn entry_for_message(&self, user: &User, chat_key: &str, message_id: i64) -> Result<Option<(EntryId, String)>, AgentError> {
        Ok(self.b.store.message_entry(user.family_id, chat_key, message_id).await?)
    }

    /// Remembers that a channel message is about an entry, for later edits and replies.
    pub async fn remember_message(&self, user: &User, chat_key: &str, message_id: i64, entry_id: EntryId, kind: &str) {
        if let Err(e) = self.b.store.link_message(user.family_id, chat_key, message_id, entry_id, kind).await {
            tracing::warn!(error = %e, "could not remember a channel message");
        }
    }

    /// Everything the family has, as JSON: members, entries with insights,
    /// history and media (what was erased is not there).
    pub async fn export(&self, family_id: FamilyId) -> Result<serde_json::Value, AgentError> {
        let members = self.b.store.list_members(family_id).await?;
        let mut entries = Vec::new();
        for e in self.all_entries(family_id, None).await? {
            let view = self.entry(family_id, e.id).await?;
            let mut media = Vec::new();
            for m in self.b.store.entry_media(family_id, e.id).await? {
                // Media travel with the export as links that work for a day.
                let url = match &m.blob_key {
                    Some(key) => self.b.blobs.signed_url(family_id, key, std::time::Duration::from_secs(86_400)).await.ok(),
                    None => None,
                };
                media.push(json!({ "media": m, "url": url }));
            }
            entries.push(json!({ "entry": view, "media": media }));
        }
        Ok(json!({ "exported_at": Utc::now(), "family_id": family_id, "members": members, "entries": entries }))
    }

    /// Stores the family's archive (zip) as a private file and returns a link
    /// that expires in an hour. The previous one goes: only the newest is kept,
    /// and erasure or deleting an entry removes it too.
    pub async fn export_link(self: &std::sync::Arc<Self>, family_id: FamilyId) -> Result<String, AgentError> {
        self.forget_export_files(family_id).await?;
        let mut rx = super::archive::stream_zip(self.clone(), family_id);
        let mut data = Vec::new();
        while let Some(chunk) = rx.recv().await {
            data.extend(chunk.map_err(|e| AgentError::Unavailable(Box::new(e)))?);
        }
        let stored = self.b.blobs.put(family_id, data, "application/zip", "zip").await.map_err(|e| AgentError::Unavailable(Box::new(e)))?;
        self.b.store.record_export_file(family_id, &stored.key).await?;
        self.b.blobs.signed_url(family_id, &stored.key, std::time::Duration::from_secs(3600)).await.map_err(|e| AgentError::Unavailable(Box::new(e)))
    }

    /// Deletes the family's kept export files (they hold copies of entries); how many.
    pub(crate) async fn forget_export_files(&self, family_id: FamilyId) -> Result<u64, AgentError> {
        let mut n = 0;
        for key in self.b.store.take_export_files(family_id).await? {
            match self.b.blobs.delete(family_id, &key).await {
                Ok(()) => n += 1,
                Err(e) => tracing::warn!(error = %e, "could not delete an export file"),
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_codes_hash_the_same_however_they_are_typed() {
        assert_eq!(hash_code("AB3D-EF7H"), hash_code(" ab3def7h "));
        assert_ne!(hash_code("AB3DEF7H"), hash_code("AB3DEF7J"));
    }
}
