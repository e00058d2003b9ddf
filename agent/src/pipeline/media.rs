//! Media jobs: fetch what a channel message carried into the `BlobStore`, and
//! transcribe voice notes into their entry's text. Both are idempotent: media
//! already fetched is skipped, a transcribed entry is not transcribed again.

use chrono::Utc;
use serde_json::json;

use super::enrich::JobError;
use crate::agent::Agent;
use crate::domain::*;
use crate::models::{ChatMessage, ChatRequest, ModelError, Task};
use crate::store::{Job, JobKind, StoreError};
use crate::text::members;
use crate::trace::{RunType, Span};

/// How long a voice note waits before trying again when no transcriber is configured.
const WAIT_FOR_CONFIGURATION: chrono::Duration = chrono::Duration::minutes(15);

pub(crate) fn extension(content_type: &str, kind: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/heic" => "heic",
        "audio/webm" | "video/webm" => "webm",
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/mp4" | "audio/x-m4a" => "m4a",
        "audio/wav" | "audio/x-wav" => "wav",
        _ if kind == "voice" => "ogg",
        _ => "bin",
    }
}

impl Agent {
    /// Fetches every pending media item of the entry; returns the entry's media afterwards.
    async fn fetch_pending(&self, family_id: FamilyId, entry_id: EntryId, root: &Span) -> Result<Vec<Media>, JobError> {
        let media = self.b.store.entry_media(family_id, entry_id).await?;
        for m in media.iter().filter(|m| m.blob_key.is_none()) {
            let Some(source) = &m.source_ref else { continue };
            if let Some(key) = source.strip_prefix(super::uploads::UPLOAD_SOURCE) {
                // Uploaded over HTTP: already in the blob store, only the link is missing.
                let bytes = self.b.blobs.get(family_id, key).await?;
                let stored = crate::blob::StoredBlob { key: key.to_string(), content_type: m.content_type.clone(), size_bytes: bytes.len() as u64, sha256: crate::blob::sha256_hex(&bytes) };
                self.b.store.media_fetched(family_id, m.id, &stored).await?;
                continue;
            }
            if let Some(capsule) = source.strip_prefix(crate::capsule::CAPSULE_SOURCE) {
                self.unseal_capsule_media(family_id, m, capsule, root).await?;
                continue;
            }
            let channel = self.channel_for(source).ok_or_else(|| JobError::Waiting(format!("no channel for {source}")))?;
            let span = root.child("fetch_media", RunType::Tool, json!({ "media_id": m.id, "kind": m.kind }));
            let bytes = match channel.fetch(source).await {
                Ok(b) => b,
                Err(e) => {
                    span.fail(&e.to_string());
                    return Err(e.into());
                }
            };
            let stored = self.b.blobs.put(family_id, bytes, &m.content_type, extension(&m.content_type, &m.kind)).await?;
            self.b.store.media_fetched(family_id, m.id, &stored).await?;
            span.end(json!({ "size_bytes": stored.size_bytes, "sha256": stored.sha256 }));
        }
        Ok(self.b.store.entry_media(family_id, entry_id).await?)
    }

    /// An opened capsule's photo or voice note: decrypted into the blob store
    /// as the entry's media, then its sealed copy is dropped.
    async fn unseal_capsule_media(&self, family_id: FamilyId, m: &Media, capsule: &str, root: &Span) -> Result<(), JobError> {
        let capsule_id: uuid::Uuid = capsule.parse().map_err(|_| JobError::Sealed(crate::capsule::SealError::Damaged))?;
        let span = root.child("unseal_capsule_media", RunType::Tool, json!({ "media_id": m.id, "kind": m.kind, "capsule_id": capsule_id }));
        let sealed = match self.b.store.capsule_attachment(family_id, capsule_id).await {
            Ok(Some(sealed)) => sealed,
            // The capsule (or its attachment) was deleted: nothing left to put in.
            Ok(None) | Err(StoreError::NotFound) => {
                span.end(json!({ "gone": true }));
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let key = self.b.capsule_key.as_ref().ok_or_else(|| JobError::Waiting("no capsule key is configured (DADLY_CAPSULE_KEY)".into()))?;
        let attachment = key.open_attachment(capsule_id, &sealed).map_err(JobError::Sealed)?;
        let stored = self.b.blobs.put(family_id, attachment.bytes, &attachment.content_type, extension(&attachment.content_type, &attachment.kind)).await?;
        self.b.store.media_fetched(family_id, m.id, &stored).await?;
        self.b.store.clear_capsule_attachment(family_id, capsule_id).await?;
        span.end(json!({ "size_bytes": stored.size_bytes, "sha256": stored.sha256 }));
        Ok(())
    }

    pub(crate) async fn fetch_media(&self, job: &Job, root: &Span) -> Result<&'static str, JobError> {
        match self.fetch_pending(job.family_id, job.entry_id, root).await {
            Ok(_) => Ok("fetched"),
            // Deleted in the meantime: nothing to fetch.
            Err(JobError::Store(StoreError::NotFound)) => Ok("stale"),
            Err(e) => Err(e),
        }
    }

    /// Describes the entry's fetched photos with the vision model (its
    /// description is embedded and indexed with the entry). Without a vision
    /// model the photo keeps its caption alone, and the job is done.
    pub(crate) async fn describe_photos(&self, job: &Job, root: &Span) -> Result<&'static str, JobError> {
        use base64::Engine as _;
        let entry = match self.b.store.get_entry(job.family_id, job.entry_id).await {
            Ok(e) => e,
            Err(StoreError::NotFound) => return Ok("stale"),
            Err(e) => return Err(e.into()),
        };
        if self.b.chat.vision_model().is_none() {
            return Ok("no vision model: the caption alone is indexed");
        }
        let media = self.b.store.entry_media(job.family_id, entry.id).await?;
        let photos: Vec<&Media> = media.iter().filter(|m| m.kind == "photo" && m.blob_key.is_some() && m.description.is_none()).collect();
        if photos.is_empty() {
            return Ok("nothing to describe");
        }
        let family = self.b.store.list_members(job.family_id).await?;
        let children = family.iter().map(|m| m.names().collect::<Vec<_>>().join(" / ")).collect::<Vec<_>>().join("; ");
        let caption = if entry.raw_text.trim().is_empty() { "(none)".to_string() } else { entry.raw_text.clone() };
        for photo in photos {
            let bytes = self.b.blobs.get(job.family_id, photo.blob_key.as_deref().unwrap_or_default()).await?;
            // The photo goes inline (a data URL): no link to it leaves this process.
            let url = format!("data:{};base64,{}", photo.content_type, base64::engine::general_purpose::STANDARD.encode(&bytes));
            let prompt = &self.prompts.describe;
            let (system, user) = prompt.render(&[("children", &children), ("caption", &caption)]).map_err(|e| ModelError::BadResponse(e.to_string()))?;
            let request = ChatRequest {
                task: Task::Describe { caption: caption.clone() },
                messages: vec![ChatMessage::system(system), ChatMessage::user_with_image(user, url)],
                schema: None,
                temperature: 0.0,
                deltas: None,
            };
            let done = match self.call_chat(job.family_id, root, "describe_photo", &request).await {
                Ok(done) => done,
                Err(ModelError::NotConfigured(_)) => return Ok("no vision model: the caption alone is indexed"),
                Err(e) => return Err(e.into()),
            };
            let description = crate::text::model_snippet(&done.content, 1000);
            if description.trim().is_empty() {
                return Err(ModelError::BadResponse("an empty photo description".into()).into());
            }
            self.b.store.describe_media(job.family_id, photo.id, &description).await?;
        }
        self.wake_workers();
        Ok("described")
    }

    pub(crate) async fn transcribe(&self, job: &Job, root: &Span) -> Result<&'static str, JobError> {
        let entry = match self.b.store.get_entry(job.family_id, job.entry_id).await {
            Ok(e) if e.status == EntryStatus::Transcribing => e,
            Ok(_) | Err(StoreError::NotFound) => return Ok("stale"),
            Err(e) => return Err(e.into()),
        };
        let media = self.fetch_pending(job.family_id, entry.id, root).await?;
        let Some(audio) = media.iter().find(|m| m.kind == "voice" && m.blob_key.is_some()) else {
            return Err(JobError::Waiting("the voice note has not been fetched".into()));
        };
        let key = audio.blob_key.clone().unwrap_or_default();
        let bytes = self.b.blobs.get(job.family_id, &key).await?;
        let t = &self.b.transcriber;
        let mut span = root.child("transcribe", RunType::Llm, json!({ "audio_bytes": bytes.len(), "content_type": audio.content_type }));
        span.metadata("ls_provider", json!(t.provider()));
        span.metadata("ls_model_name", json!(t.model_name()));
        let filename = format!("voice.{}", extension(&audio.content_type, "voice"));
        let started = std::time::Instant::now();
        let result = t.transcribe(bytes, &filename).await;
        self.b.metrics.observe("dadly_model_call_duration_seconds", &[("capability", "transcription"), ("model", t.model_name())], started.elapsed());
        self.health.record("transcription", result.as_ref().map(|_| ()));
        let text = match result {
            Ok(text) => {
                self.b.metrics.model_call("transcription", t.model_name(), "ok", None);
                span.end(json!({ "text": text }));
                text.trim().to_string()
            }
            Err(ModelError::NotConfigured(what)) => {
                span.fail("no transcriber configured");
                return Err(JobError::Waiting(format!("{what} is not configured")));
            }
            Err(e) => {
                self.b.metrics.model_call("transcription", t.model_name(), "error", None);
                span.fail(&e.to_string());
                return Err(e.into());
            }
        };
        let text = if text.is_empty() { "(inaudible voice note)".to_string() } else { text };
        let family = self.b.store.list_members(job.family_id).await?;
        let mut member_ids = entry.member_ids.clone();
        for m in members::detect_members(&text, &family) {
            if !member_ids.contains(&m) {
                member_ids.push(m);
            }
        }
        let filled = self.b.store.fill_entry_text(job.family_id, entry.id, &text, &member_ids, &[JobKind::Embed, JobKind::Enrich]).await?;
        self.wake_workers();
        if let Some(reply_to) = &entry.reply_to {
            self.send_transcript(job.family_id, &filled, reply_to).await;
        }
        Ok("transcribed")
    }

    /// Sends the transcript back so the parent can correct it by replying.
    async fn send_transcript(&self, family_id: FamilyId, entry: &Entry, reply_to: &str) {
        let Some(channel) = self.channel_for(reply_to) else { return };
        let text = format!("📝 {}\n\n(Reply to this message to correct it · 이 메시지에 답장하면 고칠 수 있어요)", entry.raw_text);
        match channel.send(reply_to, &text).await {
            Ok(sent) => {
                if let Err(e) = self.b.store.link_message(family_id, &sent.chat_key, sent.message_id, entry.id, "transcript").await {
                    tracing::warn!(error = %e, "could not remember the transcript message");
                }
            }
            Err(e) => tracing::warn!(error = %e, entry.id = %entry.id, "could not send the transcript"),
        }
    }
}

/// When to try a waiting job again.
pub(crate) fn wait_until() -> chrono::DateTime<Utc> {
    Utc::now() + WAIT_FOR_CONFIGURATION
}
