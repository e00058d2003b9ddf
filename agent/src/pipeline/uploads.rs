//! Photos and voice notes uploaded over HTTP (the web app, the widget). The
//! bytes go to the `BlobStore` first — the entry must point at them, and a
//! failed upload then leaves nothing half-stored while the browser still
//! holds the file — then the entry is stored with its media in one
//! transaction, with the same durable jobs as Telegram's media: a voice note
//! with no text is transcribed into the entry's text.

use serde_json::json;

use super::record::RecordInput;
use crate::agent::{Agent, AgentError};
use crate::domain::*;
use crate::store::JobKind;
use crate::trace::RunType;

/// Where an uploaded file already lives: `upload:<blob key>`.
pub(crate) const UPLOAD_SOURCE: &str = "upload:";

/// A photo or audio file from an upload, its type read from its bytes.
#[derive(Clone)]
pub struct UploadedFile {
    /// `photo` or `voice`.
    pub kind: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for UploadedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadedFile").field("kind", &self.kind).field("content_type", &self.content_type).field("bytes", &self.bytes.len()).finish()
    }
}

impl Agent {
    /// Records an entry with uploaded media: the text may be empty when there
    /// is a file. A voice note without text is transcribed into the entry.
    pub async fn record_upload(&self, user: &User, input: RecordInput, files: Vec<UploadedFile>) -> Result<Entry, AgentError> {
        if files.is_empty() {
            return self.record(user, input).await;
        }
        let text = crate::validate::optional_text("text", &input.text)?;
        crate::validate::local_instant("sent_at", input.sent_at)?;
        if let Some(t) = input.occurred_at {
            crate::validate::instant("occurred_at", t)?;
        }
        let known = self.b.store.list_members(user.family_id).await?;
        let member_ids = super::record::resolve_members(input.member_ids, &text, &known)?;
        let root = self.b.tracer.root("record_upload", RunType::Chain, json!({ "text": text, "files": files.iter().map(|f| json!({ "kind": f.kind, "bytes": f.bytes.len() })).collect::<Vec<_>>() }));
        let mut media = Vec::new();
        let mut stored = Vec::new();
        for f in &files {
            let ext = super::media::extension(&f.content_type, &f.kind);
            match self.b.blobs.put(user.family_id, f.bytes.clone(), &f.content_type, ext).await {
                Ok(blob) => {
                    media.push(PendingMedia { kind: f.kind.clone(), source_ref: format!("{UPLOAD_SOURCE}{}", blob.key), content_type: f.content_type.clone() });
                    stored.push(blob);
                }
                Err(e) => {
                    for blob in &stored {
                        let _ = self.b.blobs.delete(user.family_id, &blob.key).await;
                    }
                    root.fail(&e.to_string());
                    return Err(AgentError::Unavailable(Box::new(e)));
                }
            }
        }
        let voice_only = text.is_empty() && files.iter().any(|f| f.kind == "voice");
        let mut jobs = Vec::new();
        if voice_only {
            jobs.push(JobKind::Transcribe);
        } else {
            jobs.push(JobKind::FetchMedia);
            if !text.is_empty() {
                jobs.extend([JobKind::Embed, JobKind::Enrich]);
            }
        }
        let has_photo = files.iter().any(|f| f.kind == "photo");
        let new = NewEntry {
            author_id: user.id,
            source: if voice_only { Source::Voice } else if has_photo && text.is_empty() { Source::Photo } else { input.source },
            occurred_at: input.occurred_at.unwrap_or_else(|| super::record::occurred_at(&text, input.sent_at)),
            raw_text: text,
            member_ids,
            status: if voice_only { EntryStatus::Transcribing } else { EntryStatus::Ready },
            dedupe_key: input.dedupe_key,
            reply_to: input.reply_to,
            media,
            ..Default::default()
        };
        let entry = match self.b.store.insert_entry(user.family_id, new, &jobs).await {
            Ok(entry) => entry,
            Err(e) => {
                for blob in &stored {
                    let _ = self.b.blobs.delete(user.family_id, &blob.key).await;
                }
                root.fail(&e.to_string());
                return Err(e.into());
            }
        };
        // The fast path: link the stored files now (the media job does it otherwise).
        for m in self.b.store.entry_media(user.family_id, entry.id).await? {
            let Some(key) = m.source_ref.as_deref().and_then(|s| s.strip_prefix(UPLOAD_SOURCE)) else { continue };
            if let Some(blob) = stored.iter().find(|b| b.key == key) {
                self.b.store.media_fetched(user.family_id, m.id, blob).await?;
            }
        }
        self.b.metrics.inc("dadly_entries_recorded_total", &[("source", entry.source.as_str())]);
        tracing::info!(entry.id = %entry.id, family.id = %user.family_id, files = files.len(), "entry recorded with uploaded media");
        root.end(json!({ "entry_id": entry.id }));
        self.wake_workers();
        Ok(entry)
    }
}
