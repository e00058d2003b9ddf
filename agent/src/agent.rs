//! `Agent`: the one entry point every channel calls. It holds the ports and
//! the prompts; the flows themselves live in `pipeline`.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;
use tokio::sync::Notify;

use crate::blob::BlobStore;
use crate::domain::*;
use crate::metrics::Metrics;
use crate::models::{ChatModel, Described, Embedder, Transcriber};
use crate::prompts::Prompts;
use crate::store::{JobCounts, NewMember, Store, StoreError};
use crate::trace::Tracer;
use crate::vector::VectorIndex;

/// Longest message or entry text we accept, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// The ports, wired by the binary from configuration.
#[derive(Clone)]
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub index: Arc<dyn VectorIndex>,
    pub blobs: Arc<dyn BlobStore>,
    pub chat: Arc<dyn ChatModel>,
    pub embedder: Arc<dyn Embedder>,
    pub transcriber: Arc<dyn Transcriber>,
    pub tracer: Tracer,
    pub metrics: Arc<Metrics>,
    /// Messaging channels jobs can fetch from and reply through (Telegram).
    pub channels: Vec<Arc<dyn crate::channel::Channel>>,
    /// The master key of time capsules (kept outside the store); without it none can be sealed or opened.
    pub capsule_key: Option<crate::capsule::CapsuleKey>,
}

/// Retrieval knobs.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// How many entries retrieval considers.
    pub retrieve_k: usize,
    /// Cosine similarity below which a hit is not relevant (depends on the embedder).
    pub min_score: f32,
    /// Measure the floor on the embedder instead (when no floor was configured
    /// and the embedder is a real model): `min_score` is then the fallback.
    pub calibrate_min_score: bool,
    /// Prices for estimating model spend.
    pub prices: crate::pricing::PriceTable,
    /// The UTC offset "today" means when a message carries none (Telegram's don't).
    pub default_offset: FixedOffset,
    /// Chat messages per user per minute (bursts up to the same); 0 is no limit.
    pub messages_per_minute: u32,
    /// The most tokens the embedding model takes in one input; longer entries are embedded in pieces.
    pub embed_max_tokens: usize,
    /// Put before a question's text when it is embedded (asymmetric models: e5's `query: `).
    pub embed_query_prefix: String,
    /// Put before an entry's text when it is embedded (e5's `passage: `).
    pub embed_passage_prefix: String,
    /// Weights of the dense and the lexical ranking in reciprocal rank
    /// fusion; a lexical weight of 0 searches by vectors alone.
    pub dense_weight: f32,
    pub lexical_weight: f32,
    /// Search a second time for entries in the other language (Korean ↔
    /// English), with the question moved along the embedder's measured
    /// language direction, and fuse the two: a multilingual embedder scores
    /// any entry in the question's own language above a matching one in the
    /// other. For real embedders only (the offline one does not cross languages).
    pub cross_language: bool,
}

impl AgentSettings {
    /// Defaults that suit the embedder: hashed n-grams score lower than real embeddings.
    pub fn for_embedder(provider: &str) -> Self {
        Self {
            retrieve_k: 8,
            min_score: if provider == "offline" { 0.12 } else { 0.25 },
            calibrate_min_score: false,
            prices: Default::default(),
            default_offset: FixedOffset::east_opt(0).expect("zero offset"),
            messages_per_minute: 30,
            embed_max_tokens: 512,
            embed_query_prefix: String::new(),
            embed_passage_prefix: String::new(),
            dense_weight: 1.0,
            cross_language: false,
            lexical_weight: 1.0,
        }
    }
}

/// Errors a channel turns into a reply or an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Invalid(String),
    #[error("not found")]
    NotFound,
    /// The user may not do this (a parent doing what only the owner may).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// A channel redelivered a message that was handled before.
    #[error("already handled")]
    AlreadyHandled,
    /// Too many messages from this user; try again after the given time.
    #[error("too many messages; try again in {} s", .0.as_secs().max(1))]
    RateLimited(std::time::Duration),
    #[error("a backend is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for AgentError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AgentError::NotFound,
            StoreError::Conflict(m) => AgentError::Conflict(m),
            StoreError::AlreadyHandled => AgentError::AlreadyHandled,
            StoreError::Unavailable(e) => AgentError::Unavailable(e),
            e @ StoreError::Backend(_) => AgentError::Internal(Box::new(e)),
        }
    }
}

/// One message from a parent, on any channel.
#[derive(Debug, Clone)]
pub struct Message {
    pub chat_id: String,
    pub text: String,
    /// When it was sent, in the parent's local offset (dates resolve against it).
    pub sent_at: DateTime<FixedOffset>,
    pub source: Source,
    /// The channel's update id: the message is acted on at most once.
    pub dedupe_key: Option<String>,
    /// Where replies about a recorded entry go later (e.g. `telegram:<chat>:<message>`).
    pub reply_to: Option<String>,
}

tokio::task_local! {
    /// Where a streaming client wants an answer's text as it is produced.
    pub(crate) static ANSWER_DELTAS: tokio::sync::mpsc::UnboundedSender<String>;
}

/// A cited entry in an answer.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Citation {
    pub entry_id: uuid::Uuid,
    pub occurred_at: DateTime<Utc>,
    pub snippet: String,
    pub score: f32,
    /// Whether the answer text cites it (`[n]`).
    pub cited: bool,
}

/// What handling a message did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Recorded { reply: String, entry: Entry },
    Answered { reply: String, sources: Vec<Citation> },
    Help { reply: String },
    /// A time capsule was drafted, sealed or dropped (or more is needed); `capsule` once sealed.
    Capsule { reply: String, capsule: Option<Capsule> },
    /// The channel delivered this message before; it was handled then.
    Duplicate,
}

impl Outcome {
    pub fn reply(&self) -> &str {
        match self {
            Outcome::Recorded { reply, .. } | Outcome::Answered { reply, .. } | Outcome::Help { reply } | Outcome::Capsule { reply, .. } => reply,
            Outcome::Duplicate => "",
        }
    }
}

/// An entry with what has been derived from it so far.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntryView {
    #[serde(flatten)]
    pub entry: Entry,
    /// The insight for the current version, once enrichment has run.
    pub insights: Option<Insight>,
    /// Whether the current version is in the vector index.
    pub indexed: bool,
    pub history: Vec<EntryVersion>,
    /// Photos and voice notes, each with a short-lived signed link once fetched.
    pub media: Vec<MediaView>,
}

/// A media item as clients see it: never a public URL, only an expiring one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MediaView {
    pub kind: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    /// Valid for `MEDIA_LINK_TTL`; `None` while the media is still being fetched.
    pub url: Option<String>,
}

/// How long media links handed to clients work.
pub const MEDIA_LINK_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Which backend serves each port.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Status {
    pub offline: bool,
    pub store: &'static str,
    pub vector_index: &'static str,
    pub blobs: &'static str,
    pub traces: &'static str,
    pub models: ModelStatus,
    pub retrieval: RetrievalStatus,
    pub jobs: JobCounts,
}

/// How questions search the family's entries.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RetrievalStatus {
    /// Whether the lexical ranking is fused with the vectors'.
    pub lexical: bool,
    /// Where the lexical terms are searched: `store` (FTS5 on SQLite, a
    /// tsvector on Postgres) or `qdrant` (sparse vectors beside the dense ones).
    pub lexical_index: &'static str,
    /// Whether the other language (Korean ↔ English) is searched on its own too.
    pub cross_language: bool,
    /// The similarity floor: `configured`, or `measured` on the embedder.
    pub floor: &'static str,
    /// Its value, once known (a measured floor is known after the first question).
    pub min_score: Option<f32>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModelStatus {
    pub chat: Capability,
    pub embeddings: Capability,
    pub transcription: Capability,
    /// Photo descriptions: the chat server's vision model, or `none` (captions only).
    pub vision: Capability,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Capability {
    pub provider: &'static str,
    pub model: String,
    /// Whether its server answered the last call (or probe).
    #[serde(flatten)]
    pub health: crate::health::Health,
}

fn capability(d: &dyn Described, health: crate::health::Health) -> Capability {
    Capability { provider: d.provider(), model: d.model_name().to_string(), health }
}

pub struct Agent {
    pub(crate) b: Backends,
    pub(crate) prompts: Prompts,
    pub(crate) settings: AgentSettings,
    /// Wakes job workers when work is enqueued.
    pub(crate) wake: Arc<Notify>,
    pub(crate) limiter: crate::ratelimit::RateLimiter,
    pub(crate) health: crate::health::ModelHealth,
    /// What was measured on this embedder: its floor (see
    /// `calibrate_min_score`) and language direction (see `cross_language`).
    pub(crate) calibration: tokio::sync::OnceCell<crate::pipeline::answer::Calibration>,
}

impl Agent {
    pub fn new(backends: Backends, settings: AgentSettings) -> Self {
        let limiter = crate::ratelimit::RateLimiter::new(settings.messages_per_minute);
        Self {
            b: backends,
            prompts: Prompts::builtin(),
            settings,
            wake: Arc::new(Notify::new()),
            limiter,
            health: Default::default(),
            calibration: tokio::sync::OnceCell::new(),
        }
    }

    pub fn backends(&self) -> &Backends {
        &self.b
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.b.store
    }

    /// Now, in the configured default offset (for messages that carry none).
    pub fn local_now(&self) -> DateTime<FixedOffset> {
        Utc::now().with_timezone(&self.settings.default_offset)
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.b.metrics
    }

    /// The channel that understands a reference like `telegram:…`.
    pub(crate) fn channel_for(&self, reference: &str) -> Option<&Arc<dyn crate::channel::Channel>> {
        let prefix = reference.split(':').next().unwrap_or("");
        self.b.channels.iter().find(|c| c.name() == prefix)
    }

    pub(crate) fn wake_workers(&self) {
        self.wake.notify_waiters();
    }

    /// The user a token names, with the family they belong to.
    pub async fn user(&self, user_id: UserId) -> Result<User, AgentError> {
        Ok(self.b.store.get_user(user_id).await?)
    }

    pub async fn members(&self, family_id: FamilyId) -> Result<Vec<Member>, AgentError> {
        Ok(self.b.store.list_members(family_id).await?)
    }

    pub async fn add_member(&self, family_id: FamilyId, member: NewMember) -> Result<Member, AgentError> {
        let name = crate::validate::label("name", &member.name, 100)
            .map_err(|e| match e {
                AgentError::Invalid(m) if !m.contains("NUL") => AgentError::Invalid("a child's name must be 1 to 100 characters".into()),
                other => other,
            })?;
        for alias in &member.aliases {
            crate::validate::no_nul("aliases", alias)?;
        }
        let aliases: Vec<String> =
            member.aliases.iter().map(|a| a.trim_matches(crate::validate::is_invisible).to_string()).filter(|a| !a.is_empty()).collect();
        if aliases.len() > 20 || aliases.iter().any(|a| a.chars().count() > 100) {
            return Err(AgentError::Invalid("at most 20 aliases of at most 100 characters each".into()));
        }
        if let Some(born) = member.birth_date {
            crate::validate::date("birth_date", born)?;
        }
        let existing = self.b.store.list_members(family_id).await?;
        if existing.iter().any(|m| m.name.eq_ignore_ascii_case(&name)) {
            return Err(AgentError::Conflict(format!("a child named {name} already exists")));
        }
        Ok(self.b.store.create_member(family_id, NewMember { name, aliases, birth_date: member.birth_date }).await?)
    }

    /// The family's model spend over the last `days` days.
    pub async fn usage(&self, family_id: FamilyId, days: u32) -> Result<Vec<crate::store::UsageRow>, AgentError> {
        let from = Utc::now().date_naive() - chrono::Days::new(u64::from(days.saturating_sub(1)));
        Ok(self.b.store.usage_since(family_id, from).await?)
    }

    /// Which backends serve each port, and the family's (or service's) queue depth.
    pub async fn status(&self, family_id: Option<FamilyId>) -> Result<Status, AgentError> {
        Ok(Status {
            offline: self.b.chat.provider() == "offline" || self.b.embedder.provider() == "offline",
            store: self.b.store.backend(),
            vector_index: self.b.index.backend(),
            blobs: self.b.blobs.backend(),
            traces: self.b.tracer.sink().backend(),
            models: ModelStatus {
                chat: capability(self.b.chat.as_ref(), self.health.get("chat")),
                embeddings: capability(self.b.embedder.as_ref(), self.health.get("embeddings")),
                transcription: capability(self.b.transcriber.as_ref(), self.health.get("transcription")),
                vision: match self.b.chat.vision_model() {
                    Some(model) => Capability { provider: self.b.chat.provider(), model: model.to_string(), health: self.health.get("chat") },
                    None => Capability { provider: "none", model: "captions only".into(), health: self.health.get("vision") },
                },
            },
            retrieval: RetrievalStatus {
                lexical: self.settings.lexical_weight > 0.0,
                lexical_index: self.b.index.lexical_backend(),
                cross_language: self.settings.cross_language,
                floor: if self.settings.calibrate_min_score { "measured" } else { "configured" },
                min_score: match self.settings.calibrate_min_score {
                    true => self.calibration.get().map(|c| c.floor),
                    false => Some(self.settings.min_score),
                },
            },
            jobs: self.b.store.job_counts(family_id).await?,
        })
    }
}
