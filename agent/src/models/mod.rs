//! Model ports: `ChatModel`, `Embedder`, `Transcriber`. A request carries both
//! the rendered prompt (for real models) and the typed task it came from (so
//! the offline fallback can answer without a model).

pub mod offline;
mod openai;

pub use offline::{OFFLINE_DIMENSIONS, OfflineModels};
pub use openai::{EMBED_CHARS_PER_CALL, EMBED_INPUTS_PER_CALL, OpenAiModels, OpenAiSettings};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Network error, timeout or a 5xx: worth retrying.
    #[error("model server unavailable: {0}")]
    Unavailable(String),
    #[error("model server rate limited")]
    RateLimited,
    /// The server answered, but not with what we asked for.
    #[error("model response malformed: {0}")]
    BadResponse(String),
    /// A 4xx other than 429: our request or configuration is wrong.
    #[error("model request rejected: {0}")]
    Rejected(String),
    /// No backend for this capability is configured.
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    /// Images shown with a user message (data URLs or links), for a vision
    /// model. Never written to traces: they are photos of children.
    #[serde(skip)]
    pub images: Vec<String>,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self { role: "system".into(), content: content.into(), images: Vec::new() }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self { role: "user".into(), content: content.into(), images: Vec::new() }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self { role: "assistant".into(), content: content.into(), images: Vec::new() }
    }
    /// A user message with an image beside its text.
    pub fn user_with_image(content: impl Into<String>, image: String) -> Self {
        Self { role: "user".into(), content: content.into(), images: vec![image] }
    }
}

/// A source handed to the answer step, numbered from 1 for citations.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceNote {
    pub n: usize,
    pub date: String,
    pub text: String,
}

/// How a count's sources stand to what the journal holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// The sources are every entry about it in the period.
    All,
    /// The period holds more than this many; the sources are that many of them.
    MoreThan(usize),
}

/// What the request is for, with its inputs in typed form.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Decide whether a message records something or asks something.
    Route { message: String },
    /// Summary, topics, emotions and children of an entry.
    Enrich { text: String, member_names: Vec<String> },
    /// Turn a question into a search plan (text, children, period, kind).
    Plan { question: String },
    /// Answer a question from numbered sources. `counted`: the question asks
    /// how many times, and the sources are the entries found for it in its
    /// period, in date order (all of them, or some of more).
    Answer { question: String, sources: Vec<SourceNote>, korean: bool, counted: Option<Counted> },
    /// Describe a photo (a vision model; the offline model cannot see).
    Describe { caption: String },
}

impl Task {
    /// The most tokens the model may write for this task. Without a bound a
    /// weak model can loop inside a JSON string until the request times out
    /// (SmolLM2-135M wrote 1,500 tokens of one enrichment), holding a worker
    /// and the model server the whole time; with it, a runaway answer ends
    /// in seconds as a malformed one, which the callers already handle.
    pub fn max_output_tokens(&self) -> u32 {
        match self {
            Task::Route { .. } => 32,
            Task::Plan { .. } => 256,
            Task::Enrich { .. } => 512,
            Task::Describe { .. } => 512,
            Task::Answer { .. } => 1024,
        }
    }
}

/// A JSON schema the completion must follow (OpenAI structured output).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSchema {
    pub name: &'static str,
    pub schema: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub task: Task,
    pub messages: Vec<ChatMessage>,
    pub schema: Option<OutputSchema>,
    pub temperature: f32,
    /// Where to send the answer's text as the model produces it (a streaming
    /// client); a model that cannot stream sends nothing here.
    pub deltas: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

/// Token counts as the model server reported them.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
}

#[derive(Debug, Clone)]
pub struct ChatCompletion {
    pub content: String,
    /// The model that answered, as the server named it.
    pub model: String,
    pub usage: Option<Usage>,
    /// Whether `content` went out through `deltas` as it was produced.
    pub streamed: bool,
    /// The model stopped at the output bound (`finish_reason: "length"`), so
    /// `content` is cut short.
    pub truncated: bool,
}

#[derive(Debug, Clone)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub model: String,
    pub usage: Option<Usage>,
}

/// Who serves a capability, for status output and trace metadata.
pub trait Described {
    /// `offline` or `openai`.
    fn provider(&self) -> &'static str;
    fn model_name(&self) -> &str;
}

#[async_trait]
pub trait ChatModel: Described + Send + Sync + 'static {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatCompletion, ModelError>;
    /// The model that takes requests with images, if any can.
    fn vision_model(&self) -> Option<&str> {
        None
    }
    /// Whether the server answers at all (for readiness); offline always does.
    async fn probe(&self) -> Result<(), ModelError> {
        Ok(())
    }
}

/// What is being embedded: a question or an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedRole {
    Query,
    Passage,
}

impl EmbedRole {
    /// The `input_type` value servers of asymmetric models take.
    pub fn input_type(self) -> &'static str {
        match self {
            EmbedRole::Query => "query",
            EmbedRole::Passage => "passage",
        }
    }
}

#[async_trait]
pub trait Embedder: Described + Send + Sync + 'static {
    fn dimensions(&self) -> usize;
    /// Embeds `texts`, all questions or all entries (`role`): an asymmetric
    /// model's server may take the role instead of a text prefix.
    async fn embed(&self, texts: &[String], role: EmbedRole) -> Result<Embeddings, ModelError>;
    async fn probe(&self) -> Result<(), ModelError> {
        Ok(())
    }
}

#[async_trait]
pub trait Transcriber: Described + Send + Sync + 'static {
    async fn transcribe(&self, audio: Vec<u8>, filename: &str) -> Result<String, ModelError>;
    async fn probe(&self) -> Result<(), ModelError> {
        Ok(())
    }
}
