//! The family's archive: one zip, streamed as it is written (never held
//! whole), with `dadly-export.json` (schema `dadly-export/1`, described by
//! `schema.json` beside it) and every media file as its original bytes under
//! `media/`. `import` restores an archive into an instance: parents,
//! children, entries with every version, media — and a re-export of the
//! restored family has the same content.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::agent::{Agent, AgentError};
use crate::domain::*;
use crate::store::{JobKind, NewMember};

pub const SCHEMA: &str = "dadly-export/1";

/// The JSON Schema of `dadly-export.json`, shipped inside every archive.
pub const SCHEMA_JSON: &str = include_str!("archive_schema.json");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub schema: String,
    pub exported_at: DateTime<Utc>,
    pub family_id: uuid::Uuid,
    pub parents: Vec<ArchivedParent>,
    pub members: Vec<ArchivedMember>,
    pub entries: Vec<ArchivedEntry>,
    /// Capsules that have opened (sealed ones cannot be exported: nobody can read them).
    pub opened_capsules: Vec<ArchivedCapsule>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArchivedParent {
    pub id: uuid::Uuid,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArchivedMember {
    pub id: uuid::Uuid,
    pub name: String,
    pub aliases: Vec<String>,
    pub birth_date: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArchivedEntry {
    pub id: uuid::Uuid,
    pub author_id: uuid::Uuid,
    pub source: Source,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub member_ids: Vec<uuid::Uuid>,
    /// Every text the entry had, oldest first; the last is the current one.
    pub versions: Vec<String>,
    pub insight: Option<Insight>,
    pub media: Vec<ArchivedMedia>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArchivedMedia {
    /// Its path in the archive (`media/<id>.<ext>`).
    pub file: String,
    pub kind: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    /// What a vision model saw in the photo, if it was described.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArchivedCapsule {
    pub id: uuid::Uuid,
    pub author_id: uuid::Uuid,
    pub member_id: uuid::Uuid,
    pub open_at: DateTime<Utc>,
    pub opened_at: Option<DateTime<Utc>>,
    pub entry_id: Option<uuid::Uuid>,
}

/// What goes into the zip, in order.
enum Piece {
    File(String, Vec<u8>),
}

impl Agent {
    /// Everything the family has, without the media bytes (fetched while streaming).
    pub async fn manifest(&self, family_id: FamilyId) -> Result<(Manifest, Vec<(String, String)>), AgentError> {
        let parents = self.b.store.list_users(family_id).await?.into_iter().map(|u| ArchivedParent { id: u.id, name: u.name, role: u.role }).collect();
        let members = self
            .b
            .store
            .list_members(family_id)
            .await?
            .into_iter()
            .map(|m| ArchivedMember { id: m.id, name: m.name, aliases: m.aliases, birth_date: m.birth_date })
            .collect();
        let mut entries = Vec::new();
        let mut blobs = Vec::new();
        for e in self.all_entries(family_id, None).await? {
            let mut versions: Vec<String> = self.b.store.entry_history(family_id, e.id).await?.into_iter().map(|v| v.raw_text).collect();
            versions.push(e.raw_text.clone());
            let insight = self.b.store.get_insight(family_id, e.id).await?.filter(|i| i.entry_version == e.version);
            let mut media = Vec::new();
            for m in self.b.store.entry_media(family_id, e.id).await? {
                let Some(key) = m.blob_key else { continue };
                let ext = key.rsplit('.').next().filter(|x| x.len() <= 5 && !x.contains('/')).unwrap_or("bin");
                let file = format!("media/{}.{ext}", m.id);
                blobs.push((file.clone(), key));
                media.push(ArchivedMedia { file, kind: m.kind, content_type: m.content_type, size_bytes: m.size_bytes, sha256: m.sha256, description: m.description });
            }
            entries.push(ArchivedEntry {
                id: e.id,
                author_id: e.author_id,
                source: e.source,
                occurred_at: e.occurred_at,
                created_at: e.created_at,
                member_ids: e.member_ids,
                versions,
                insight,
                media,
            });
        }
        entries.reverse(); // oldest first
        let opened_capsules = self
            .b
            .store
            .list_capsules(family_id)
            .await?
            .into_iter()
            .filter(|c| c.status == CapsuleStatus::Opened)
            .map(|c| ArchivedCapsule { id: c.id, author_id: c.author_id, member_id: c.member_id, open_at: c.open_at, opened_at: c.opened_at, entry_id: c.entry_id })
            .collect();
        let manifest = Manifest { schema: SCHEMA.into(), exported_at: Utc::now(), family_id, parents, members, entries, opened_capsules };
        Ok((manifest, blobs))
    }
}

/// A `Write` that hands each chunk to the response stream (bounded: the
/// writer waits while the client is slow, so nothing piles up in memory).
struct ChunkWriter(mpsc::Sender<std::io::Result<Vec<u8>>>);

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.blocking_send(Ok(buf.to_vec())).map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams the family's archive: the receiver yields the zip's bytes as they
/// are written. Media is read one file at a time.
pub fn stream_zip(agent: Arc<Agent>, family_id: FamilyId) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (bytes_tx, bytes_rx) = mpsc::channel::<std::io::Result<Vec<u8>>>(16);
    let (piece_tx, mut piece_rx) = mpsc::channel::<Piece>(2);
    let errors = bytes_tx.clone();
    // The zip is written on a blocking thread (zip's writer is synchronous).
    tokio::task::spawn_blocking(move || {
        let mut zip = zip::ZipWriter::new_stream(ChunkWriter(bytes_tx));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        while let Some(Piece::File(name, bytes)) = piece_rx.blocking_recv() {
            // Photos and audio are compressed already.
            let opts = if name.starts_with("media/") { stored } else { options };
            if zip.start_file(name, opts).and_then(|_| zip.write_all(&bytes).map_err(Into::into)).is_err() {
                return;
            }
        }
        let _ = zip.finish();
    });
    tokio::spawn(async move {
        let result: Result<(), AgentError> = async {
            let (manifest, blobs) = agent.manifest(family_id).await?;
            let json = serde_json::to_vec_pretty(&manifest).map_err(|e| AgentError::Internal(Box::new(e)))?;
            let send = |p: Piece| piece_tx.send(p);
            if send(Piece::File("dadly-export.json".into(), json)).await.is_err() || send(Piece::File("schema.json".into(), SCHEMA_JSON.as_bytes().to_vec())).await.is_err() {
                return Ok(());
            }
            for (file, key) in blobs {
                let bytes = agent.b.blobs.get(family_id, &key).await.map_err(|e| AgentError::Unavailable(Box::new(e)))?;
                if send(Piece::File(file, bytes)).await.is_err() {
                    return Ok(());
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, family.id = %family_id, "export stopped");
            let _ = errors.send(Err(std::io::Error::other("the export could not be completed"))).await;
        }
    });
    bytes_rx
}

/// What an import restored.
#[derive(Debug, Default, Serialize)]
pub struct Imported {
    pub family_id: uuid::Uuid,
    pub owner_id: uuid::Uuid,
    pub parents: usize,
    pub members: usize,
    pub entries: usize,
    pub media: usize,
}

impl Agent {
    /// Restores an archive as a new family: parents, children, entries with
    /// every version (re-enriched and re-indexed here), media bytes.
    pub async fn import(&self, manifest: &Manifest, media: &HashMap<String, Vec<u8>>, family_name: &str) -> Result<Imported, AgentError> {
        if manifest.schema != SCHEMA {
            return Err(AgentError::Invalid(format!("this archive is `{}`; this build reads `{SCHEMA}`", manifest.schema)));
        }
        let store = &self.b.store;
        let family = store.create_family(family_name).await?;
        let mut out = Imported { family_id: family.id, ..Default::default() };
        let mut users = HashMap::new();
        // The owner first: the first parent of a family is its owner.
        let mut parents = manifest.parents.clone();
        parents.sort_by_key(|p| p.role != Role::Owner);
        for p in &parents {
            let user = store.create_user(family.id, &p.name).await?;
            if p.role == Role::Removed {
                store.set_role(family.id, user.id, Role::Removed).await?;
            }
            if out.parents == 0 {
                out.owner_id = user.id;
            }
            users.insert(p.id, user.id);
            out.parents += 1;
        }
        let mut members = HashMap::new();
        for m in &manifest.members {
            let created = store.create_member(family.id, NewMember { name: m.name.clone(), aliases: m.aliases.clone(), birth_date: m.birth_date }).await?;
            members.insert(m.id, created.id);
            out.members += 1;
        }
        for e in &manifest.entries {
            let author = *users.get(&e.author_id).ok_or_else(|| AgentError::Invalid(format!("entry {} names an author not in the archive", e.id)))?;
            let member_ids: Vec<MemberId> = e.member_ids.iter().filter_map(|m| members.get(m).copied()).collect();
            let first = e.versions.first().ok_or_else(|| AgentError::Invalid(format!("entry {} has no text", e.id)))?;
            let new = NewEntry { author_id: author, source: e.source, raw_text: first.clone(), member_ids: member_ids.clone(), occurred_at: e.occurred_at, ..Default::default() };
            let jobs: &[JobKind] = if e.versions.len() == 1 { &[JobKind::Embed, JobKind::Enrich] } else { &[] };
            let created = store.insert_entry(family.id, new, jobs).await?;
            for (i, later) in e.versions.iter().enumerate().skip(1) {
                let jobs: &[JobKind] = if i + 1 == e.versions.len() { &[JobKind::Embed, JobKind::Enrich] } else { &[] };
                store.update_entry(family.id, created.id, later, &member_ids, jobs).await?;
            }
            for m in &e.media {
                let bytes = media.get(&m.file).ok_or_else(|| AgentError::Invalid(format!("the archive lacks {}", m.file)))?;
                let ext = m.file.rsplit('.').next().unwrap_or("bin");
                let stored = self.b.blobs.put(family.id, bytes.clone(), &m.content_type, ext).await.map_err(|e| AgentError::Unavailable(Box::new(e)))?;
                let pending = PendingMedia { kind: m.kind.clone(), source_ref: format!("import:{}", m.file), content_type: m.content_type.clone() };
                store.add_pending_media(family.id, created.id, &pending, None).await?;
                let row = store.entry_media(family.id, created.id).await?.into_iter().find(|r| r.blob_key.is_none()).ok_or(AgentError::NotFound)?;
                store.media_fetched(family.id, row.id, &stored).await?;
                // A description comes back as it was (the photo is not described again).
                if let Some(d) = m.description.as_deref().map(|d| crate::text::model_snippet(d, 1000)).filter(|d| !d.trim().is_empty()) {
                    store.describe_media(family.id, row.id, &d).await?;
                }
                out.media += 1;
            }
            out.entries += 1;
        }
        // The pending media rows queued fetch jobs; imported bytes are already stored.
        self.wake_workers();
        Ok(out)
    }
}

/// Reads an archive: its manifest and media files.
pub fn read_zip<R: std::io::Read + std::io::Seek>(reader: R) -> Result<(Manifest, HashMap<String, Vec<u8>>), AgentError> {
    use std::io::Read;
    let bad = |e: String| AgentError::Invalid(format!("not a Dadly archive: {e}"));
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| bad(e.to_string()))?;
    let mut manifest = None;
    let mut media = HashMap::new();
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        let name = file.name().map_err(|e| bad(e.to_string()))?.to_string();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| bad(e.to_string()))?;
        if name == "dadly-export.json" {
            manifest = Some(serde_json::from_slice::<Manifest>(&bytes).map_err(|e| bad(e.to_string()))?);
        } else if name.starts_with("media/") {
            media.insert(name, bytes);
        }
    }
    Ok((manifest.ok_or_else(|| bad("no dadly-export.json".into()))?, media))
}
