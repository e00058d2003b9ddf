//! The `Store` port: relational data (families, members, entries, insights,
//! chat memory, the embedded vector table and the durable job queue).
//! Every family-owned call takes the family explicitly; adapters must scope
//! every query by it.

mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
#[doc(hidden)]
pub use postgres::RECENT_CHAT_TURNS_SQL;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::*;

/// Errors a caller can act on; everything else is `Backend`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// The channel update this write was keyed by was handled before.
    #[error("this update was already handled")]
    AlreadyHandled,
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("store error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What a background job does.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// One structured model call: summary, topics, emotions, members.
    Enrich,
    /// Embed the entry text and upsert its vector.
    Embed,
    /// Remove a deleted entry's vector from the index.
    Unindex,
    /// Fetch an entry's pending media from its channel into the `BlobStore`.
    FetchMedia,
    /// Fetch a voice note, transcribe it and fill the entry's text.
    Transcribe,
    /// Opens a time capsule (its `entry_id` is the capsule's id).
    OpenCapsule,
    /// Describes an entry's fetched photos with a vision model.
    Describe,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Enrich => "enrich",
            JobKind::Embed => "embed",
            JobKind::Unindex => "unindex",
            JobKind::FetchMedia => "fetch_media",
            JobKind::Transcribe => "transcribe",
            JobKind::OpenCapsule => "open_capsule",
            JobKind::Describe => "describe_photo",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "enrich" => JobKind::Enrich,
            "embed" => JobKind::Embed,
            "unindex" => JobKind::Unindex,
            "fetch_media" => JobKind::FetchMedia,
            "transcribe" => JobKind::Transcribe,
            "describe_photo" => JobKind::Describe,
            "open_capsule" => JobKind::OpenCapsule,
            _ => return None,
        })
    }
}

/// A job to enqueue. Jobs with the same `dedupe_key` are enqueued once.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: JobKind,
    pub entry_id: EntryId,
    pub entry_version: i64,
}

impl NewJob {
    pub fn dedupe_key(&self) -> String {
        format!("{}:{}:{}", self.kind.as_str(), self.entry_id, self.entry_version)
    }
}

/// A claimed job. `attempts` counts this attempt.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: Uuid,
    pub family_id: FamilyId,
    pub kind: JobKind,
    pub entry_id: EntryId,
    pub entry_version: i64,
    pub attempts: i64,
    pub max_attempts: i64,
    /// Failures that did not count as attempts (the model server was down…); retries back off on them.
    pub transient_failures: i64,
}

/// An entry the lexical index matched: its score (higher is better) and the
/// terms it is indexed under (its text and its photos' descriptions).
#[derive(Debug, Clone, PartialEq)]
pub struct LexicalHit {
    pub entry_id: EntryId,
    pub score: f32,
    pub terms: Vec<String>,
}

/// Which jobs a worker takes: embedding has its own lane, so an entry becomes
/// searchable without waiting behind slow model work (enrichment, transcripts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobLane {
    Any,
    /// `Embed` jobs only (claimed in batches: one embeddings call, one write).
    Embed,
    /// Everything but `Embed`.
    Other,
    /// `Enrich` jobs only: a general worker that claimed one takes more of them
    /// to run as a batch.
    Enrich,
}

impl JobLane {
    pub fn as_str(self) -> &'static str {
        match self {
            JobLane::Any => "any",
            JobLane::Embed => "embed",
            JobLane::Other => "other",
            JobLane::Enrich => "enrich",
        }
    }
}

/// Queue depth by state, for status and metrics.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct JobCounts {
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
}

/// The unfinished part of the whole queue, read through the status index
/// (finished jobs are not counted, so the cost does not grow with history).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct QueueDepth {
    pub queued: i64,
    pub running: i64,
    pub failed: i64,
    /// When the longest-waiting queued job became due.
    pub oldest_due: Option<DateTime<Utc>>,
}

/// New filterable attributes of an entry's vector (after enrichment).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PayloadUpdate {
    pub entry_id: EntryId,
    pub member_ids: Vec<MemberId>,
    pub topics: Vec<String>,
    pub emotions: Vec<String>,
}

/// A stored vector with the payload the index filters on.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorRecord {
    pub entry_id: EntryId,
    pub entry_version: i64,
    pub model: String,
    /// The embedding of the entry's text, or of its first piece when long.
    pub vector: Vec<f32>,
    /// The embeddings of a long entry's further pieces (same dimension); a
    /// search scores the entry by its best piece.
    pub extra_chunks: Vec<Vec<f32>>,
    pub member_ids: Vec<MemberId>,
    pub topics: Vec<String>,
    pub emotions: Vec<String>,
    pub occurred_at: DateTime<Utc>,
    /// The entry's lexical terms (`text::lexical::terms` of its text and its
    /// photos' descriptions), for an index that keeps them beside the vectors
    /// (Qdrant's sparse vectors). Empty when read back from a store: the
    /// store's own lexical index holds them there.
    pub terms: Vec<String>,
}

impl VectorRecord {
    /// Every piece's vector, the first one first.
    pub fn chunk_vectors(&self) -> impl Iterator<Item = &Vec<f32>> {
        std::iter::once(&self.vector).chain(self.extra_chunks.iter())
    }

    /// All pieces' vectors one after another, as the stores keep them.
    pub fn flattened(&self) -> Vec<f32> {
        self.chunk_vectors().flatten().copied().collect()
    }

    /// Splits what `flattened` stored back into pieces of `dims` each.
    pub fn unflatten(all: Vec<f32>, dims: usize) -> (Vec<f32>, Vec<Vec<f32>>) {
        if dims == 0 || all.len() <= dims || !all.len().is_multiple_of(dims) {
            return (all, Vec::new());
        }
        let mut pieces = all.chunks_exact(dims).map(<[f32]>::to_vec);
        let first = pieces.next().unwrap_or_default();
        (first, pieces.collect())
    }
}

/// Model spend of one family for one model and capability.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct UsageRow {
    pub model: String,
    pub capability: String,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
}

/// A new child of the family.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub name: String,
    pub aliases: Vec<String>,
    pub birth_date: Option<NaiveDate>,
}

/// Families, parents, children, and the links that resolve a parent before the family is known (tokens, Telegram accounts, link codes).
#[async_trait]
pub trait FamilyStore: Send + Sync + 'static {
    /// Backend name for status output (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
    /// Cheap liveness check for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
    async fn create_family(&self, name: &str) -> StoreResult<Family>;
    async fn create_user(&self, family_id: FamilyId, name: &str) -> StoreResult<User>;
    /// Looks a user up by id alone: this is how a token becomes a family.
    async fn get_user(&self, user_id: UserId) -> StoreResult<User>;
    /// Refuses every token of the user issued before `after` (and keeps the later cut-off).
    async fn revoke_tokens(&self, user_id: UserId, after: DateTime<Utc>) -> StoreResult<()>;
    async fn create_member(&self, family_id: FamilyId, member: NewMember) -> StoreResult<Member>;
    async fn list_members(&self, family_id: FamilyId) -> StoreResult<Vec<Member>>;
    /// Replaces a child's name, aliases and birth date.
    async fn update_member(&self, family_id: FamilyId, id: MemberId, name: &str, aliases: &[String], birth_date: Option<NaiveDate>) -> StoreResult<Member>;
    /// Stores a one-time link code (its hash) for a parent.
    async fn create_link_code(&self, family_id: FamilyId, user_id: UserId, code_hash: &str, expires_at: DateTime<Utc>) -> StoreResult<()>;
    /// Redeems an unused, unexpired code: marks it used and links the Telegram
    /// user to the code's parent, in one transaction. `NotFound` otherwise.
    async fn redeem_link_code(&self, code_hash: &str, telegram_user_id: i64, language: Option<&str>, now: DateTime<Utc>) -> StoreResult<User>;
    /// The parent a Telegram user is linked to, with their language override.
    async fn telegram_link(&self, telegram_user_id: i64) -> StoreResult<Option<(User, Option<String>)>>;
    async fn set_telegram_language(&self, telegram_user_id: i64, family_id: FamilyId, language: Option<&str>) -> StoreResult<()>;
    /// Removes the link; returns whether there was one.
    async fn unlink_telegram(&self, telegram_user_id: i64, family_id: FamilyId) -> StoreResult<bool>;
}

/// Entries with their history and insights, chat memory and model spend.
#[async_trait]
pub trait EntryStore: Send + Sync + 'static {
    /// Stores the entry and enqueues its jobs in one transaction.
    async fn insert_entry(&self, family_id: FamilyId, entry: NewEntry, jobs: &[JobKind]) -> StoreResult<Entry>;
    async fn get_entry(&self, family_id: FamilyId, id: EntryId) -> StoreResult<Entry>;
    /// The entries among `ids` that belong to the family, in no set order.
    async fn get_entries(&self, family_id: FamilyId, ids: &[EntryId]) -> StoreResult<Vec<Entry>>;
    /// Newest `occurred_at` first.
    async fn list_entries(&self, family_id: FamilyId, filter: &EntryFilter) -> StoreResult<Vec<Entry>>;
    /// Replaces the text (the old one goes to history), bumps the version and
    /// enqueues `jobs` for the new version, in one transaction.
    async fn update_entry(
        &self,
        family_id: FamilyId,
        id: EntryId,
        raw_text: &str,
        member_ids: &[MemberId],
        jobs: &[JobKind],
    ) -> StoreResult<Entry>;
    /// Deletes the entry with its history, insight and stored vector, and
    /// enqueues `Unindex` for external indexes, in one transaction.
    async fn delete_entry(&self, family_id: FamilyId, id: EntryId) -> StoreResult<()>;
    async fn entry_history(&self, family_id: FamilyId, id: EntryId) -> StoreResult<Vec<EntryVersion>>;
    /// Writes the insight if it is for the entry's current version; returns
    /// whether it was written.
    async fn put_insight(&self, family_id: FamilyId, insight: &Insight) -> StoreResult<bool> {
        Ok(!self.put_insights(family_id, std::slice::from_ref(insight)).await?.is_empty())
    }
    /// Writes many of the family's insights in one statement, each only if it
    /// is for its entry's current version; returns the entries written.
    async fn put_insights(&self, family_id: FamilyId, insights: &[Insight]) -> StoreResult<Vec<EntryId>>;
    async fn get_insight(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<Option<Insight>>;
    /// The insights of many of the family's entries in one read (those that have one).
    async fn get_insights(&self, family_id: FamilyId, entry_ids: &[EntryId]) -> StoreResult<Vec<Insight>>;
    /// The photo descriptions of many of the family's entries in one read, in the photos' order.
    async fn media_descriptions(&self, family_id: FamilyId, entry_ids: &[EntryId]) -> StoreResult<Vec<(EntryId, String)>>;
    async fn add_chat_turn(&self, family_id: FamilyId, user_id: UserId, turn: &ChatTurn) -> StoreResult<()> {
        self.add_chat_turns(family_id, user_id, std::slice::from_ref(turn)).await
    }
    /// Adds turns in one transaction, in order (a message and its reply).
    async fn add_chat_turns(&self, family_id: FamilyId, user_id: UserId, turns: &[ChatTurn]) -> StoreResult<()>;
    /// The last `limit` turns of a chat, oldest first.
    async fn recent_chat_turns(&self, family_id: FamilyId, chat_id: &str, limit: u32) -> StoreResult<Vec<ChatTurn>>;
    /// Adds one model call's tokens and estimated cost to the family's daily spend.
    #[allow(clippy::too_many_arguments)]
    async fn add_usage(
        &self,
        family_id: FamilyId,
        day: NaiveDate,
        model: &str,
        capability: &str,
        input_tokens: u64,
        output_tokens: u64,
        cost_usd: f64,
    ) -> StoreResult<()>;
    /// The family's spend since `from` (inclusive), per model and capability.
    async fn usage_since(&self, family_id: FamilyId, from: NaiveDate) -> StoreResult<Vec<UsageRow>>;
    /// Fills a transcribing entry's text (no history: there was no text), marks
    /// it ready, bumps the version and enqueues `jobs`, in one transaction.
    async fn fill_entry_text(&self, family_id: FamilyId, id: EntryId, text: &str, member_ids: &[MemberId], jobs: &[JobKind]) -> StoreResult<Entry>;
}

/// What messaging channels need: update claims, albums, pending media and the message ↔ entry map.
#[async_trait]
pub trait ChannelStore: Send + Sync + 'static {
    /// Records a channel update as handled; false if it already was.
    async fn claim_update(&self, family_id: FamilyId, key: &str) -> StoreResult<bool>;
    async fn entry_by_external_key(&self, family_id: FamilyId, key: &str) -> StoreResult<Option<Entry>>;
    /// Adds pending media to an existing entry (and a job to fetch it), claiming
    /// `dedupe_key` in the same transaction; `Conflict` if it was claimed before.
    async fn add_pending_media(&self, family_id: FamilyId, entry_id: EntryId, media: &PendingMedia, dedupe_key: Option<&str>) -> StoreResult<()>;
    async fn entry_media(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<Vec<Media>>;
    /// Records where a pending media item now lives.
    /// (A photo's description is then queued: a `Describe` job, once per photo.)
    async fn media_fetched(&self, family_id: FamilyId, media_id: Uuid, blob: &crate::blob::StoredBlob) -> StoreResult<()>;
    /// Keeps what a vision model saw in a photo and queues its entry's
    /// re-embedding at the current version, in one transaction.
    async fn describe_media(&self, family_id: FamilyId, media_id: Uuid, description: &str) -> StoreResult<()>;
    /// Remembers that a channel message is about an entry (`source` or `transcript`).
    async fn link_message(&self, family_id: FamilyId, chat_key: &str, message_id: i64, entry_id: EntryId, kind: &str) -> StoreResult<()>;
    async fn message_entry(&self, family_id: FamilyId, chat_key: &str, message_id: i64) -> StoreResult<Option<(EntryId, String)>>;
    /// Holds an idempotency key for a request whose `fingerprint` (a hash of
    /// what was asked) is given, or says what became of the first request.
    /// A key held longer than `stale_after` without a result is taken over
    /// (its request died mid-way).
    async fn begin_idempotent(&self, family_id: FamilyId, key: &str, fingerprint: &str, stale_after: chrono::Duration) -> StoreResult<Idempotent>;
    /// Keeps the first request's response for its key.
    async fn finish_idempotent(&self, family_id: FamilyId, key: &str, status: u16, body: &str) -> StoreResult<()>;
    /// Lets go of a held key (the request failed; a retry may run it again).
    async fn release_idempotent(&self, family_id: FamilyId, key: &str) -> StoreResult<()>;
}

/// The state of a key that was already held, for `begin_idempotent`.
pub(crate) fn idempotent_state(stored: String, fingerprint: &str, status: Option<i64>, body: Option<String>) -> StoreResult<Idempotent> {
    Ok(match (stored == fingerprint, status) {
        (false, _) => Idempotent::Mismatch,
        (true, None) => Idempotent::InProgress,
        (true, Some(s)) => Idempotent::Replay { status: u16::try_from(s).unwrap_or(200), body: body.unwrap_or_default() },
    })
}

/// What an idempotency key says about a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Idempotent {
    /// First time: the key is now held for this request.
    New,
    /// The first request with this key is still running.
    InProgress,
    /// The first request finished with this response.
    Replay { status: u16, body: String },
    /// The key was used for a different request.
    Mismatch,
}

/// The embedded vector index's rows, and which entry version is indexed (for any index).
#[async_trait]
pub trait VectorStore: Send + Sync + 'static {
    async fn put_vector(&self, family_id: FamilyId, record: &VectorRecord) -> StoreResult<()>;
    /// Writes many of the family's vectors in one transaction; returns the
    /// entries written (an entry deleted meanwhile is skipped, as in `put_vector`).
    async fn put_vectors(&self, family_id: FamilyId, records: &[VectorRecord]) -> StoreResult<Vec<EntryId>>;
    async fn delete_vector(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<()>;
    async fn set_vector_payload(
        &self,
        family_id: FamilyId,
        entry_id: EntryId,
        member_ids: &[MemberId],
        topics: &[String],
        emotions: &[String],
    ) -> StoreResult<()> {
        let update = PayloadUpdate { entry_id, member_ids: member_ids.to_vec(), topics: topics.to_vec(), emotions: emotions.to_vec() };
        self.set_vector_payloads(family_id, std::slice::from_ref(&update)).await.map(|_| ())
    }
    /// Sets the payload of many of the family's stored vectors in one
    /// statement; an entry without a vector is skipped. Returns the rows changed.
    async fn set_vector_payloads(&self, family_id: FamilyId, updates: &[PayloadUpdate]) -> StoreResult<u64>;
    /// Every vector of the family whose `occurred_at` is in `[from, to)`.
    async fn load_vectors(
        &self,
        family_id: FamilyId,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<VectorRecord>>;
    /// Records that `version` of the entry is in the vector index (ignored if
    /// the entry has moved on or is gone).
    async fn mark_indexed(&self, family_id: FamilyId, entry_id: EntryId, version: i64) -> StoreResult<()>;
    /// `mark_indexed` for many of the family's entries in one transaction,
    /// each with its lexical terms (`text::lexical::terms`, space-separated), which replace
    /// the entry's earlier ones in the lexical index. Returns the entries whose
    /// version is indexed for the first time (not a re-embedding of it).
    async fn mark_indexed_many(&self, family_id: FamilyId, versions: &[(EntryId, i64, String)]) -> StoreResult<Vec<EntryId>>;
    /// The family's entries whose terms match any of `terms`, best first, with
    /// the backend's lexical score (higher is better), `occurred_at` in `[from, to)`.
    async fn lexical_search(
        &self,
        family_id: FamilyId,
        terms: &[String],
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        limit: usize,
    ) -> StoreResult<Vec<LexicalHit>>;
    /// A number that changes whenever any of the family's stored vectors does
    /// (0 before the first); lets the embedded index reuse what it loaded.
    async fn vector_generation(&self, family_id: FamilyId) -> StoreResult<i64>;
    /// The entry version that is in the vector index, if any.
    async fn indexed_version(&self, family_id: FamilyId, entry_id: EntryId) -> StoreResult<Option<i64>>;
}

/// Several parents per family: invites, the family's parents, roles.
#[async_trait]
pub trait ParentStore: Send + Sync + 'static {
    /// Stores a one-time invite (its code's hash) to join the family as a parent.
    async fn create_invite(&self, family_id: FamilyId, created_by: UserId, code_hash: &str, expires_at: DateTime<Utc>) -> StoreResult<()>;
    /// Redeems an unused, unexpired invite: a new parent named `name` joins its
    /// family (and, from Telegram, that account is linked). `NotFound` otherwise.
    async fn redeem_invite(&self, code_hash: &str, name: &str, telegram: Option<(i64, Option<&str>)>, now: DateTime<Utc>) -> StoreResult<User>;
    /// The family's parents (removed ones included, marked so), oldest first.
    async fn list_users(&self, family_id: FamilyId) -> StoreResult<Vec<User>>;
    /// Changes a parent's role; removing also unlinks their Telegram accounts.
    async fn set_role(&self, family_id: FamilyId, user_id: UserId, role: Role) -> StoreResult<()>;
}

/// An audit record: an erasure happened, by whom, when, how many of each.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Erasure {
    pub id: Uuid,
    pub actor_id: Uuid,
    /// `child` or `family`.
    pub kind: String,
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Erasure: removing every copy of what a parent or child asked to erase.
#[async_trait]
pub trait ErasureStore: Send + Sync + 'static {
    /// Deletes chat turns and kept idempotent responses that contain any of
    /// `needles` (texts of erased entries, a child's names); how many.
    async fn forget_text(&self, family_id: FamilyId, needles: &[String]) -> StoreResult<u64>;
    /// Takes a child off an entry about several children (its members, insight and stored vector payload).
    async fn detach_member(&self, family_id: FamilyId, entry_id: EntryId, member_id: MemberId) -> StoreResult<()>;
    /// Moves everything about child `from` to child `into` (entries, insights,
    /// stored vector payloads, capsules), then deletes `from`'s record.
    async fn merge_members(&self, family_id: FamilyId, from: MemberId, into: MemberId) -> StoreResult<()>;
    /// Deletes the child's record (their capsules go with it).
    async fn delete_member(&self, family_id: FamilyId, member_id: MemberId) -> StoreResult<()>;
    /// Deletes the family and everything it owns in the store.
    async fn delete_family(&self, family_id: FamilyId) -> StoreResult<()>;
    async fn record_erasure(&self, family_id: FamilyId, actor_id: UserId, kind: &str, counts: &serde_json::Value) -> StoreResult<()>;
    async fn erasures(&self, family_id: FamilyId) -> StoreResult<Vec<Erasure>>;
    /// Remembers an export file kept for a download link.
    async fn record_export_file(&self, family_id: FamilyId, blob_key: &str) -> StoreResult<()>;
    /// Forgets the family's export files; returns their keys (for the blob store to delete).
    async fn take_export_files(&self, family_id: FamilyId) -> StoreResult<Vec<String>>;
    /// Makes deletions final on disk where the backend keeps old copies
    /// (SQLite's write-ahead log); a no-op elsewhere.
    async fn compact(&self) -> StoreResult<()> {
        Ok(())
    }
}

/// Retention across families, for the daily job.
#[async_trait]
pub trait RetentionStore: Send + Sync + 'static {
    /// Voice notes transcribed, recorded before `before`, whose audio is still kept: (family, media id, blob key).
    async fn expired_audio(&self, before: DateTime<Utc>) -> StoreResult<Vec<(FamilyId, Uuid, String)>>;
    /// Forgets a media item's object (the row stays: there was a voice note).
    async fn forget_media_blob(&self, family_id: FamilyId, media_id: Uuid) -> StoreResult<()>;
    /// Children born on or before `born_by` whose owner has not been told yet: (family, child).
    async fn children_of_age(&self, born_by: NaiveDate) -> StoreResult<Vec<(FamilyId, MemberId)>>;
    /// Records that the owner was told; false when they had been already.
    async fn mark_age_notice(&self, family_id: FamilyId, member_id: MemberId) -> StoreResult<bool>;
}

/// A parent who asked for daily prompts.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptCandidate {
    pub family_id: FamilyId,
    pub user_id: UserId,
    /// `HH:MM`, local to the family.
    pub time: String,
    pub last_on: Option<NaiveDate>,
    /// The family's UTC offset (`+09:00`), if set.
    pub utc_offset: Option<String>,
}

/// A prompt that was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct SentPrompt {
    pub id: Uuid,
    pub question: String,
    pub member_id: Option<MemberId>,
    pub entry_id: Option<EntryId>,
}

/// Daily prompts: who wants them, one a day, what was asked, and the answers.
#[async_trait]
pub trait PromptStore: Send + Sync + 'static {
    /// Sets (or with `None` clears) a parent's prompt time, and the family's offset if given.
    async fn set_prompt_time(&self, family_id: FamilyId, user_id: UserId, time: Option<&str>, utc_offset: Option<&str>) -> StoreResult<()>;
    /// The parent's prompt time and the family's offset.
    async fn prompt_settings(&self, family_id: FamilyId, user_id: UserId) -> StoreResult<(Option<String>, Option<String>)>;
    /// Parents with a prompt time and a linked Telegram account, in every family.
    async fn prompt_candidates(&self) -> StoreResult<Vec<PromptCandidate>>;
    /// Takes `day` for the parent: false when an instance took it already.
    async fn claim_prompt_day(&self, family_id: FamilyId, user_id: UserId, day: NaiveDate) -> StoreResult<bool>;
    /// The question keys sent to the parent since `since`.
    async fn recent_prompts(&self, family_id: FamilyId, user_id: UserId, since: NaiveDate) -> StoreResult<Vec<String>>;
    #[allow(clippy::too_many_arguments)]
    async fn log_prompt(&self, family_id: FamilyId, user_id: UserId, question: &str, member_id: Option<MemberId>, day: NaiveDate, chat_key: &str, message_id: i64) -> StoreResult<()>;
    /// The prompt a channel message was, if any.
    async fn prompt_for_message(&self, family_id: FamilyId, chat_key: &str, message_id: i64) -> StoreResult<Option<SentPrompt>>;
    async fn link_prompt_entry(&self, family_id: FamilyId, prompt_id: Uuid, entry_id: EntryId) -> StoreResult<()>;
    /// The parent's linked Telegram user and language override, if linked.
    async fn telegram_link_of(&self, family_id: FamilyId, user_id: UserId) -> StoreResult<Option<(i64, Option<String>)>>;
}

/// A capsule to store: who, for whom, when, and the sealed message.
#[derive(Debug, Clone)]
pub struct NewCapsule {
    pub id: Uuid,
    pub author_id: UserId,
    pub member_id: MemberId,
    pub open_at: DateTime<Utc>,
    pub sealed: crate::capsule::Sealed,
    /// A photo or voice note, sealed beside the message.
    pub attachment: Option<crate::capsule::Sealed>,
    /// A chat draft waiting for the parent's "yes" (no opening is scheduled until then).
    pub draft_chat: Option<String>,
}

/// Time capsules: sealed storage, listing without content, and opening once.
#[async_trait]
pub trait CapsuleStore: Send + Sync + 'static {
    /// Stores a capsule; unless it is a draft, schedules its opening job at `open_at` in the same transaction.
    async fn create_capsule(&self, family_id: FamilyId, capsule: &NewCapsule) -> StoreResult<Capsule>;
    /// The newest draft of this parent in this chat written after `since`.
    async fn draft_capsule(&self, family_id: FamilyId, author_id: UserId, chat_id: &str, since: DateTime<Utc>) -> StoreResult<Option<Capsule>>;
    /// Confirms a draft: it is sealed from now on and its opening is scheduled.
    async fn confirm_capsule(&self, family_id: FamilyId, id: Uuid) -> StoreResult<Capsule>;
    /// The family's confirmed capsules, soonest opening first (no message).
    async fn list_capsules(&self, family_id: FamilyId) -> StoreResult<Vec<Capsule>>;
    /// Deletes a capsule (draft, sealed or opened) and its scheduled opening; the entry an opened one became stays.
    async fn delete_capsule(&self, family_id: FamilyId, id: Uuid) -> StoreResult<()>;
    /// The sealed message of a capsule, for the opening job only.
    async fn sealed_capsule(&self, family_id: FamilyId, id: Uuid) -> StoreResult<(Capsule, crate::capsule::Sealed)>;
    /// Puts a sealed photo or voice note into a chat draft (replacing one it had).
    async fn attach_to_draft(&self, family_id: FamilyId, id: Uuid, attachment: &crate::capsule::Sealed) -> StoreResult<()>;
    /// The sealed photo or voice note of a confirmed capsule, while it has one.
    async fn capsule_attachment(&self, family_id: FamilyId, id: Uuid) -> StoreResult<Option<crate::capsule::Sealed>>;
    /// Drops the sealed attachment once the opened entry holds it as media.
    async fn clear_capsule_attachment(&self, family_id: FamilyId, id: Uuid) -> StoreResult<()>;
    /// Opens the capsule exactly once: marks it opened and stores `entry` (with
    /// its jobs) in one transaction. `None` when it was opened (or deleted) already.
    async fn open_capsule(&self, family_id: FamilyId, id: Uuid, entry: NewEntry, jobs: &[JobKind]) -> StoreResult<Option<Entry>>;
    /// Records that the family was told; false when it had been already.
    async fn capsule_delivered(&self, family_id: FamilyId, id: Uuid) -> StoreResult<bool>;
    /// The Telegram users linked to the family's parents (only its owner's, with
    /// `owners_only`): where news goes.
    async fn telegram_users(&self, family_id: FamilyId, owners_only: bool) -> StoreResult<Vec<i64>>;
}

/// The durable job queue: claim, finish, retry, defer.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Queues an `Embed` job for every entry ever embedded (at its latest
    /// version), across families, e.g. after switching embedding models.
    /// Works from the job history, so it needs no cross-family entry reads.
    async fn enqueue_reindex(&self, tag: &str) -> StoreResult<u64>;
    /// Puts a job back without spending an attempt (it waits for configuration).
    async fn defer_job(&self, id: Uuid, run_at: DateTime<Utc>) -> StoreResult<()>;
    /// Takes the next due job (or one whose lease ran out) for `lease`.
    ///
    /// A job whose lease ran out with no attempts left (its worker died on it
    /// every time) is not handed out again: it is marked failed (dead letter).
    async fn claim_job(&self, now: DateTime<Utc>, lease: chrono::Duration) -> StoreResult<Option<Job>> {
        Ok(self.claim_jobs(now, lease, JobLane::Any, 1).await?.into_iter().next())
    }
    /// Takes up to `limit` due jobs of `lane` in one statement (due ones
    /// first, oldest first; only when none is due, ones whose lease ran out).
    async fn claim_jobs(&self, now: DateTime<Utc>, lease: chrono::Duration, lane: JobLane, limit: usize) -> StoreResult<Vec<Job>>;
    /// Marks failed every job whose lease ran out after its last attempt; how many.
    async fn bury_abandoned_jobs(&self, now: DateTime<Utc>) -> StoreResult<u64>;
    /// Renews a running job's lease (the worker's heartbeat); false when the job is no longer running.
    async fn extend_lease(&self, id: Uuid, locked_until: DateTime<Utc>) -> StoreResult<bool>;
    /// Puts a job back after a transient failure without spending the attempt.
    async fn retry_job_later(&self, id: Uuid, error: &str, run_at: DateTime<Utc>) -> StoreResult<()>;
    async fn complete_job(&self, id: Uuid) -> StoreResult<()>;
    /// Completes many jobs in one write.
    async fn complete_jobs(&self, ids: &[Uuid]) -> StoreResult<()>;
    /// Records a failure; `retry_at` reschedules it, `None` gives up.
    async fn fail_job(&self, id: Uuid, error: &str, retry_at: Option<DateTime<Utc>>) -> StoreResult<()>;
    /// Queue depth, for one family or (with `None`) the whole service.
    async fn job_counts(&self, family_id: Option<FamilyId>) -> StoreResult<JobCounts>;
    /// Queued, running and failed jobs of every family, and the oldest due time.
    async fn queue_depth(&self) -> StoreResult<QueueDepth>;
    /// Housekeeping in every family: deletes processed channel update ids,
    /// finished jobs, chat turns and idempotency keys older than `before`, and
    /// capsule drafts nobody confirmed within a day; how many of each.
    async fn prune(&self, before: DateTime<Utc>) -> StoreResult<Vec<(String, u64)>>;
}

/// Everything the agent keeps: one object per backend implementing every part.
pub trait Store: FamilyStore + EntryStore + ChannelStore + VectorStore + JobQueue + CapsuleStore + ParentStore + ErasureStore + RetentionStore + PromptStore {}

impl<T: FamilyStore + EntryStore + ChannelStore + VectorStore + JobQueue + CapsuleStore + ParentStore + ErasureStore + RetentionStore + PromptStore> Store for T {}
