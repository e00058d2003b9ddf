//! A local OpenAI-compatible server for tests. It speaks the real wire format
//! (`/v1/chat/completions` with `response_format: json_schema`,
//! `/v1/embeddings`, `/v1/audio/transcriptions`), records what it was sent, and
//! can be told to fail the next enrichment calls with a 500, a hang or
//! malformed JSON.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const API_KEY: &str = "sk-test-fake";
pub const CHAT_MODEL: &str = "fake-gpt-1";
pub const EMBED_MODEL: &str = "fake-embed-1";
pub const DIMS: usize = 64;
/// The longest embedding input the fake takes, in characters.
pub const MAX_EMBED_CHARS: usize = 2000;

#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer 500 with a plain-text body.
    ServerError,
    /// Sleep this long before answering (past the client's timeout).
    Hang(Duration),
    /// Answer 200 with content that is not the JSON the schema asks for.
    Malformed,
    /// Answer 400 the way llama.cpp does on context overflow (an integer `code`).
    Rejected,
    /// Answer 200 with prose that cites no source (what small models do).
    Uncited,
    /// Answer 200 saying the sources do not answer the question, marked
    /// `[0]` as the answer prompt asks.
    NothingThere,
    /// Answer 200 citing the first source and saying, marked `[0]`, what
    /// the sources do not hold.
    PartlyThere,
    /// Answer 200 citing the first source, with NUL characters in the text
    /// (which a Postgres `text` column cannot hold).
    Nul,
    /// Answer 200 citing the first source, stopped mid-sentence at the
    /// output bound (`finish_reason: "length"`).
    Truncated,
}

#[derive(Default)]
struct FakeState {
    requests: Mutex<Vec<(String, Value)>>,
    enrich_faults: Mutex<VecDeque<Fault>>,
    embed_faults: Mutex<VecDeque<Fault>>,
    answer_faults: Mutex<VecDeque<Fault>>,
    /// The `usage` object of every successful chat completion, in order.
    usages: Mutex<Vec<Value>>,
    /// What transcription returns.
    transcript: Mutex<String>,
    /// Streamed answers (finished, cut off by the client).
    streams: Mutex<(u32, u32)>,
    /// The pause between streamed words.
    stream_delay: Mutex<Duration>,
    /// Takes requests without a key, as llama.cpp's server does by default.
    keyless: std::sync::atomic::AtomicBool,
    /// Embeds like a multilingual model (see `multilingual`).
    multilingual: std::sync::atomic::AtomicBool,
    /// Refuses `max_completion_tokens` (see `refuse_max_completion_tokens`).
    legacy_max_tokens: std::sync::atomic::AtomicBool,
}

pub struct FakeOpenAi {
    /// Base URL including `/v1`, as OPENAI_BASE_URL takes it.
    pub base: String,
    state: Arc<FakeState>,
}

impl FakeOpenAi {
    pub async fn start() -> Self {
        let state = Arc::new(FakeState::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/audio/transcriptions", post(transcriptions))
            .route("/v1/models", axum::routing::get(models))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base: format!("http://{addr}/v1"), state }
    }

    /// Env vars that point Dadly at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OPENAI_API_KEY", API_KEY.to_string()),
            ("OPENAI_BASE_URL", self.base.clone()),
            ("DADLY_CHAT_MODEL", CHAT_MODEL.to_string()),
            ("DADLY_EMBEDDING_MODEL", EMBED_MODEL.to_string()),
            ("DADLY_EMBEDDING_DIMENSIONS", DIMS.to_string()),
            ("DADLY_MODEL_TIMEOUT_SECS", "1".to_string()),
            ("DADLY_MIN_SCORE", "0.2".to_string()),
        ]
    }

    /// `env()` with some variables set otherwise (or added).
    pub fn env_with(&self, overrides: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        env.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        env.extend(overrides.iter().map(|(k, v)| (*k, v.to_string())));
        env
    }

    pub fn fail_next_enrich(&self, faults: &[Fault]) {
        self.state.enrich_faults.lock().unwrap().extend(faults.iter().cloned());
    }

    pub fn fail_next_answer(&self, faults: &[Fault]) {
        self.state.answer_faults.lock().unwrap().extend(faults.iter().cloned());
    }

    /// Answers a chat request carrying `max_completion_tokens` with 400, as
    /// Azure OpenAI did before its 2024-09 API ("Unrecognized request
    /// argument"); `max_tokens` is taken.
    pub fn refuse_max_completion_tokens(&self) {
        self.state.legacy_max_tokens.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn fail_next_embed(&self, faults: &[Fault]) {
        self.state.embed_faults.lock().unwrap().extend(faults.iter().cloned());
    }

    /// Bodies received on `path` (e.g. "/v1/chat/completions").
    pub fn requests(&self, path: &str) -> Vec<Value> {
        self.state.requests.lock().unwrap().iter().filter(|(p, _)| p == path).map(|(_, b)| b.clone()).collect()
    }

    /// Streamed answers so far: (sent to the end, cut off because the client went away).
    pub fn streams(&self) -> (u32, u32) {
        *self.state.streams.lock().unwrap()
    }

    /// Serve without an API key (a local llama.cpp server).
    pub fn keyless(&self) {
        self.state.keyless.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Embed like a multilingual model: a Korean word and its English
    /// translation (from a small dictionary) land on the same dimension, and
    /// every text also carries a strong component for its language — so, as
    /// with e5, any text in the question's language scores above a matching
    /// one in the other.
    pub fn multilingual(&self) {
        self.state.multilingual.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn set_stream_delay(&self, delay: Duration) {
        *self.state.stream_delay.lock().unwrap() = delay;
    }

    pub fn set_transcript(&self, text: &str) {
        *self.state.transcript.lock().unwrap() = text.to_string();
    }

    /// The `usage` objects of the successful chat completions, in order.
    pub fn usages(&self) -> Vec<Value> {
        self.state.usages.lock().unwrap().clone()
    }

    /// Chat requests whose structured-output schema has this name.
    pub fn chat_requests(&self, schema: Option<&str>) -> Vec<Value> {
        self.requests("/v1/chat/completions")
            .into_iter()
            .filter(|b| b["response_format"]["json_schema"]["name"].as_str() == schema)
            .collect()
    }
}

fn openai_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": { "message": message, "type": "invalid_request_error", "param": null, "code": null } }))).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|h| h.to_str().ok()) == Some(&format!("Bearer {API_KEY}"))
}

fn allowed(state: &FakeState, headers: &HeaderMap) -> bool {
    // A server started without a key ignores whatever a client sends.
    authorized(headers) || state.keyless.load(std::sync::atomic::Ordering::Relaxed)
}

async fn apply(fault: Option<Fault>) -> Option<Response> {
    match fault? {
        Fault::ServerError => Some((StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response()),
        Fault::Hang(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Fault::Malformed => Some(completion("{\"summary\": \"unterminated", 5)),
        Fault::Uncited => Some(completion("Sounds like a lovely day out!", 5)),
        Fault::NothingThere => Some(completion("Your journal doesn't mention a violin recital [0].", 5)),
        Fault::PartlyThere => Some(completion("She played the piano [1]; nothing about a violin [0].", 5)),
        Fault::Nul => Some(completion("According to\u{0} your journal: the zoo\u{0} [1]", 5)),
        Fault::Truncated => {
            let mut body = completion_body("According to your journal [1], Minji went to the zoo and then she", 5, 1024);
            body["choices"][0]["finish_reason"] = json!("length");
            Some(axum::Json(body).into_response())
        }
        Fault::Rejected => Some(
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": { "code": 400, "message": "the request exceeds the available context size", "type": "exceed_context_size_error" } })),
            )
                .into_response(),
        ),
    }
}

fn completion(content: &str, prompt_tokens: u64) -> Response {
    let completion_tokens = content.split_whitespace().count() as u64 + 1;
    axum::Json(completion_body(content, prompt_tokens, completion_tokens)).into_response()
}

fn completion_body(content: &str, prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_764_000_000u32,
        "model": CHAT_MODEL,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": content, "refusal": null }, "logprobs": null, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens },
    })
}

fn last_user(body: &Value) -> String {
    body["messages"].as_array().and_then(|m| m.iter().rev().find(|m| m["role"] == "user")).and_then(|m| m["content"].as_str()).unwrap_or("").to_string()
}

async fn chat(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: axum::Json<Value>) -> Response {
    if state.legacy_max_tokens.load(std::sync::atomic::Ordering::Relaxed) && body.0.get("max_completion_tokens").is_some() {
        state.requests.lock().unwrap().push(("/v1/chat/completions".into(), body.0.clone()));
        return openai_error(StatusCode::BAD_REQUEST, "Unrecognized request argument supplied: max_completion_tokens");
    }
    if body.0["stream"] == true && body.0["response_format"].is_null() && authorized(&headers) {
        state.requests.lock().unwrap().push(("/v1/chat/completions".into(), body.0.clone()));
        return stream_answer(state, &body.0);
    }
    let response = chat_inner(state.clone(), headers, body).await;
    let (parts, bytes) = response.into_parts();
    let bytes = axum::body::to_bytes(bytes, usize::MAX).await.unwrap();
    if parts.status.is_success()
        && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
    {
        state.usages.lock().unwrap().push(v["usage"].clone());
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

async fn chat_inner(state: Arc<FakeState>, headers: HeaderMap, axum::Json(body): axum::Json<Value>) -> Response {
    state.requests.lock().unwrap().push(("/v1/chat/completions".into(), body.clone()));
    if !authorized(&headers) {
        return openai_error(StatusCode::UNAUTHORIZED, "Incorrect API key provided");
    }
    // A message with an image: a vision request, described like a careful model would.
    let image = body["messages"].as_array().into_iter().flatten().filter_map(|m| m["content"].as_array()).flatten().find(|p| p["type"] == "image_url").cloned();
    if let Some(part) = image {
        let url = part["image_url"]["url"].as_str().unwrap_or("");
        if !url.starts_with("data:image/") || !url.contains(";base64,") {
            return openai_error(StatusCode::BAD_REQUEST, "image_url must be an image data URL");
        }
        return completion("A child builds a sandcastle on the seashore with a red bucket; a sign reads LIFEGUARD.", 30);
    }
    let user = last_user(&body);
    let prompt_tokens = body["messages"].as_array().map(|m| m.iter().map(|x| x["content"].as_str().unwrap_or("").split_whitespace().count() as u64).sum()).unwrap_or(0);
    match body["response_format"]["json_schema"]["name"].as_str() {
        Some("entry_insights") => {
            let fault = state.enrich_faults.lock().unwrap().pop_front();
            if let Some(r) = apply(fault).await {
                return r;
            }
            let entry = user.split("Entry:\n").nth(1).unwrap_or("").trim().to_string();
            let children = user.split("Children in this family: ").nth(1).and_then(|s| s.lines().next()).unwrap_or("");
            let members: Vec<String> = children
                .split(';')
                .map(|c| c.split(" (also").next().unwrap_or("").trim().to_string())
                .filter(|n| !n.is_empty() && entry.to_lowercase().contains(&n.to_lowercase()))
                .collect();
            let topics: Vec<&str> = if entry.contains("tooth") { vec!["milestone", "health"] } else { vec!["daily"] };
            let content = json!({ "summary": format!("Model summary: {}", entry.chars().take(40).collect::<String>()), "topics": topics, "emotions": ["joy"], "members": members });
            completion(&content.to_string(), prompt_tokens)
        }
        Some("query_plan") => {
            // Plans like a careful model: the children named, the rest as search text, the kind from its words.
            let question = user.split("Question:\n").nth(1).unwrap_or("").trim().to_string();
            let earlier = user.split("\"what about\"): ").nth(1).and_then(|s| s.lines().next()).unwrap_or("(none)").trim().to_string();
            // A follow-up is planned as the earlier question about whom it names.
            let follows = question.to_lowercase().starts_with("and what about") && earlier != "(none)";
            let system = body["messages"][0]["content"].as_str().unwrap_or("");
            let listed = system.split("The children: ").nth(1).and_then(|s| s.lines().next()).unwrap_or("").trim_end_matches('.');
            let mut children = Vec::new();
            let mut text = question.clone();
            for child in listed.split(';').map(str::trim).filter(|c| !c.is_empty()) {
                let names: Vec<&str> = child.split(" / ").collect();
                if names.iter().any(|n| question.contains(n)) {
                    children.push(names[0].to_string());
                    for n in &names {
                        text = text.replace(&format!("{n}'s"), "").replace(n, "");
                    }
                }
            }
            let lower = question.to_lowercase();
            let kind = if lower.contains("how many") { "count" } else if lower.contains("last time") { "last" } else if lower.contains("first") { "first" } else { "lookup" };
            if follows {
                text = earlier.clone();
                for child in listed.split(';').flat_map(|c| c.split(" / ")).map(str::trim).filter(|c| !c.is_empty()) {
                    text = text.replace(&format!("{child}'s"), "").replace(child, "");
                }
            }
            let search_text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            // A period the rules do not read, which only a model would resolve.
            let (from, to) = if lower.contains("school holidays of 2025") { (json!("2025-07-15"), json!("2025-09-01")) } else { (Value::Null, Value::Null) };
            completion(&json!({ "search_text": search_text, "children": children, "from": from, "to": to, "kind": kind }).to_string(), prompt_tokens)
        }
        Some("route") => {
            let asks = user.contains('?') || user.to_lowercase().contains("remember");
            completion(&json!({ "kind": if asks { "ask" } else { "record" } }).to_string(), prompt_tokens)
        }
        _ => {
            let fault = state.answer_faults.lock().unwrap().pop_front();
            if let Some(r) = apply(fault).await {
                return r;
            }
            // An answer: cite the first numbered source.
            let first = user.lines().find(|l| l.starts_with("[1]")).unwrap_or("");
            let content = if first.is_empty() { "Your journal has nothing about that.".to_string() } else { format!("According to your journal: {} [1]", first.trim_start_matches("[1]").trim()) };
            completion(&content, prompt_tokens)
        }
    }
}

/// Marks a streamed answer cut off when its body is dropped before the end.
struct StreamGuard {
    state: Arc<FakeState>,
    finished: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut s = self.state.streams.lock().unwrap();
        if self.finished { s.0 += 1 } else { s.1 += 1 }
    }
}

/// A streamed answer, as OpenAI sends it: `chat.completion.chunk` events a
/// word at a time (`stream_delay` apart), then a usage chunk, then `[DONE]`.
fn stream_answer(state: Arc<FakeState>, body: &Value) -> Response {
    let user = last_user(body);
    let first = user.lines().find(|l| l.starts_with("[1]")).unwrap_or("");
    let content = if first.is_empty() { "Your journal has nothing about that.".to_string() } else { format!("According to your journal: {} [1]", first.trim_start_matches("[1]").trim()) };
    let words: Vec<String> = content.split_inclusive(' ').map(str::to_string).collect();
    let prompt_tokens: u64 = body["messages"].as_array().map(|m| m.iter().map(|x| x["content"].as_str().unwrap_or("").split_whitespace().count() as u64).sum()).unwrap_or(0);
    let completion_tokens = words.len() as u64;
    let delay = *state.stream_delay.lock().unwrap();
    let chunk = |delta: Value, usage: Value, finish: Value| {
        let choices = if delta.is_null() { json!([]) } else { json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }]) };
        format!("data: {}\n\n", json!({ "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_764_000_000u32, "model": CHAT_MODEL, "choices": choices, "usage": usage }))
    };
    let mut events = vec![chunk(json!({ "role": "assistant", "content": "" }), Value::Null, Value::Null)];
    events.extend(words.iter().map(|w| chunk(json!({ "content": w }), Value::Null, Value::Null)));
    events.push(chunk(json!({}), Value::Null, json!("stop")));
    events.push(chunk(Value::Null, json!({ "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens }), Value::Null));
    events.push("data: [DONE]\n\n".to_string());
    state.usages.lock().unwrap().push(json!({ "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens }));
    let guard = StreamGuard { state, finished: false };
    let stream = futures_util::stream::unfold((events.into_iter(), guard, true), move |(mut events, mut guard, first)| async move {
        if !first {
            tokio::time::sleep(delay).await;
        }
        let e = events.next()?;
        // `[DONE]` went out: the answer was sent to the end (the client may hang up now).
        guard.finished = events.len() == 0;
        Some((Ok::<_, std::convert::Infallible>(e), (events, guard, false)))
    });
    Response::builder().header("content-type", "text/event-stream").body(axum::body::Body::from_stream(stream)).unwrap()
}

/// `GET /v1/models`, as OpenAI lists them.
async fn models(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    if !allowed(&state, &headers) {
        return openai_error(StatusCode::UNAUTHORIZED, "Incorrect API key provided");
    }
    let model = |id: &str| json!({ "id": id, "object": "model", "created": 1_764_000_000u32, "owned_by": "fake" });
    axum::Json(json!({ "object": "list", "data": [model(CHAT_MODEL), model(EMBED_MODEL), model("whisper-1")] })).into_response()
}

/// Deterministic bag-of-words embedding.
pub fn fake_embedding(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; DIMS];
    for w in text.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 2) {
        let h = w.bytes().fold(1469598103934665603u64, |h, b| (h ^ b as u64).wrapping_mul(1099511628211));
        v[(h % DIMS as u64) as usize] += 1.0;
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// Korean words (by their start, so particles may follow) and the English word they mean.
const DICTIONARY: &[(&str, &str)] = &[("자전거", "bike"), ("보조바퀴", "wheels"), ("바퀴", "wheels"), ("공원", "park"), ("수영", "swim"), ("수영장", "pool")];

/// A multilingual model's embedding, in miniature: the words, Korean ones
/// translated, hashed into all but the first two dimensions; then a
/// language component (dimension 0 for Korean, 1 for English) as strong as
/// the words together.
pub fn multilingual_embedding(text: &str) -> Vec<f32> {
    let korean = text.chars().any(|c| ('\u{ac00}'..='\u{d7a3}').contains(&c));
    let words: Vec<String> = text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| DICTIONARY.iter().rev().find(|(ko, _)| w.starts_with(ko)).map(|(_, en)| en.to_string()).unwrap_or_else(|| w.to_string()))
        .collect();
    let mut v = vec![0f32; DIMS];
    for w in words.iter().filter(|w| w.chars().count() > 1) {
        let h = w.bytes().fold(1469598103934665603u64, |h, b| (h ^ b as u64).wrapping_mul(1099511628211));
        v[2 + (h % (DIMS as u64 - 2)) as usize] += 1.0;
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v[if korean { 0 } else { 1 }] = 1.2;
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

async fn embeddings(State(state): State<Arc<FakeState>>, headers: HeaderMap, axum::Json(body): axum::Json<Value>) -> Response {
    state.requests.lock().unwrap().push(("/v1/embeddings".into(), body.clone()));
    if !allowed(&state, &headers) {
        return openai_error(StatusCode::UNAUTHORIZED, "Incorrect API key provided");
    }
    let fault = state.embed_faults.lock().unwrap().pop_front();
    if let Some(r) = apply(fault).await {
        return r;
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
        _ => return openai_error(StatusCode::BAD_REQUEST, "input must be a string or array of strings"),
    };
    // Like a real embedding model, refuse an input past its context (here: 2,000 characters).
    if let Some(long) = inputs.iter().find(|i| i.chars().count() > MAX_EMBED_CHARS) {
        return openai_error(
            StatusCode::BAD_REQUEST,
            &format!("This model's maximum context length is {MAX_EMBED_CHARS} tokens, however you requested {} tokens.", long.chars().count()),
        );
    }
    let tokens: u64 = inputs.iter().map(|i| i.split_whitespace().count() as u64).sum();
    let multilingual = state.multilingual.load(std::sync::atomic::Ordering::Relaxed);
    let embed = |t: &str| if multilingual { multilingual_embedding(t) } else { fake_embedding(t) };
    let data: Vec<Value> = inputs.iter().enumerate().map(|(i, t)| json!({ "object": "embedding", "index": i, "embedding": embed(t) })).collect();
    axum::Json(json!({ "object": "list", "data": data, "model": EMBED_MODEL, "usage": { "prompt_tokens": tokens, "total_tokens": tokens } })).into_response()
}

/// `POST /v1/audio/transcriptions` (multipart, as Whisper takes it): records
/// the model, the file name and whether the upload is an Ogg container.
async fn transcriptions(State(state): State<Arc<FakeState>>, headers: HeaderMap, mut form: axum::extract::Multipart) -> Response {
    if !authorized(&headers) {
        return openai_error(StatusCode::UNAUTHORIZED, "Incorrect API key provided");
    }
    let mut seen = json!({});
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or("").to_string();
        let filename = field.file_name().map(String::from);
        let bytes = field.bytes().await.unwrap_or_default();
        if name == "file" {
            seen["filename"] = json!(filename);
            seen["bytes"] = json!(bytes.len());
            seen["ogg"] = json!(bytes.starts_with(b"OggS"));
        } else {
            seen[name] = json!(String::from_utf8_lossy(&bytes));
        }
    }
    state.requests.lock().unwrap().push(("/v1/audio/transcriptions".into(), seen.clone()));
    if seen["bytes"].as_u64().unwrap_or(0) == 0 {
        return openai_error(StatusCode::BAD_REQUEST, "no file");
    }
    axum::Json(json!({ "text": state.transcript.lock().unwrap().clone(), "usage": { "type": "duration", "seconds": 2 } })).into_response()
}
