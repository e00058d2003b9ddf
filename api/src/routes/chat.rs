//! `POST /v1/chat`: one message in; recorded, answered, or help out.

use axum::routing::post;
use axum::{Router, response::IntoResponse};
use chrono::{DateTime, FixedOffset};
use dadly_agent::agent::{Message, Outcome};
use dadly_agent::domain::Source;
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;
use crate::AppState;

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// What the parent wrote (1–10,000 characters). `/record …` and `/ask …` force the route.
    #[schema(min_length = 1, max_length = 10000, pattern = "\\S")]
    pub message: String,
    /// Conversation id chosen by the client; memory is kept per chat.
    #[serde(default)]
    pub chat_id: Option<String>,
    /// When the parent sent it, with their UTC offset ("today" is theirs).
    #[serde(default)]
    pub sent_at: Option<DateTime<FixedOffset>>,
}

/// What a message did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    Recorded,
    Answered,
    Help,
    /// A time capsule was drafted (confirm with "yes"), sealed or dropped.
    Capsule,
    Duplicate,
}

/// `recorded` carries `entry_id` and `entry`; `answered` carries `sources`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatResponse {
    pub kind: ChatKind,
    pub reply: String,
    pub chat_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<dadly_agent::domain::Entry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<dadly_agent::agent::Citation>>,
    /// The capsule, once sealed (never its message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capsule: Option<dadly_agent::domain::Capsule>,
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/chat", post(chat)).route("/v1/chat/stream", post(chat_stream))
}

/// Records a statement or answers a question from the family's entries.
#[utoipa::path(
    post,
    path = "/v1/chat",
    request_body = ChatRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key from the same family gets the first response")),
    responses((status = 200, description = "Recorded, answered, or help", body = ChatResponse), crate::openapi::Errors),
    tag = "chat"
)]
pub(crate) async fn chat(
    axum::extract::State(state): axum::extract::State<AppState>,
    AuthUser(user): AuthUser,
    headers: axum::http::HeaderMap,
    Json(req): Json<ChatRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let fingerprint = serde_json::to_value(&req).unwrap_or_default();
    crate::idempotency::once(&state, &user, &headers, "POST /v1/chat", &fingerprint, chat_once(&state, &user, req)).await
}

fn message(state: &AppState, req: ChatRequest) -> Result<Message, ApiError> {
    let chat_id = req.chat_id.unwrap_or_else(|| "web".into());
    if chat_id.is_empty() || chat_id.len() > 128 {
        return Err(ApiError::Invalid("chat_id must be 1 to 128 bytes".into()));
    }
    Ok(Message {
        chat_id,
        text: req.message,
        sent_at: req.sent_at.unwrap_or_else(|| state.agent.local_now()),
        source: Source::Web,
        dedupe_key: None,
        reply_to: None,
    })
}

async fn chat_once(state: &AppState, user: &dadly_agent::domain::User, req: ChatRequest) -> Result<(axum::http::StatusCode, serde_json::Value), ApiError> {
    let message = message(state, req)?;
    let chat_id = message.chat_id.clone();
    let outcome = state.agent.handle(user, message).await?;
    Ok((axum::http::StatusCode::OK, response_body(outcome, chat_id)?))
}

fn response_body(outcome: Outcome, chat_id: String) -> Result<serde_json::Value, ApiError> {
    let none = |kind, reply| ChatResponse { kind, reply, chat_id: chat_id.clone(), entry_id: None, entry: None, sources: None, capsule: None };
    let body = match outcome {
        Outcome::Recorded { reply, entry } => ChatResponse { entry_id: Some(entry.id), entry: Some(entry), ..none(ChatKind::Recorded, reply) },
        Outcome::Answered { reply, sources } => ChatResponse { sources: Some(sources), ..none(ChatKind::Answered, reply) },
        Outcome::Help { reply } => none(ChatKind::Help, reply),
        Outcome::Capsule { reply, capsule } => ChatResponse { capsule, ..none(ChatKind::Capsule, reply) },
        Outcome::Duplicate => none(ChatKind::Duplicate, String::new()),
    };
    serde_json::to_value(body).map_err(|e| ApiError::Internal(Box::new(e)))
}

/// The same as `/v1/chat`, answered as Server-Sent Events: `token` events
/// (`{"text": "..."}`) carry the answer as the model writes it (a model that
/// cannot stream sends it in one), then one `done` event carries what
/// `/v1/chat` would return. An error after the stream began is an `error`
/// event with the usual error body; one before it (bad input, rate limit) is
/// the usual 4xx. A client that disconnects stops the model call; an entry
/// is stored before the first event.
#[utoipa::path(
    post,
    path = "/v1/chat/stream",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "`token` events, then `done` (a ChatResponse) or `error`", content_type = "text/event-stream", body = SseEvent),
        crate::openapi::Errors
    ),
    tag = "chat"
)]
pub(crate) async fn chat_stream(
    axum::extract::State(state): axum::extract::State<AppState>,
    AuthUser(user): AuthUser,
    Json(req): Json<ChatRequest>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::StreamExt;
    let message = message(&state, req)?;
    let chat_id = message.chat_id.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let agent = state.agent.clone();
    let mut work: std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome, dadly_agent::AgentError>> + Send>> =
        Box::pin(async move { agent.handle_streaming(&user, message, tx).await });
    // Run until the first piece of text or the end, so that what fails before
    // the model writes anything (bad input, limits, backends) is a plain error.
    let first = tokio::select! {
        biased;
        piece = rx.recv() => Err(piece),
        outcome = &mut work => Ok(outcome),
    };
    let mut st = Streaming { work: Some(work), rx, outcome: None, first: None, sent_any: false, chat_id, done: false };
    match first {
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(outcome)) => {
            st.work = None;
            st.outcome = Some(Ok(outcome));
        }
        Err(piece) => st.first = piece,
    }
    let stream = futures_util::stream::unfold(st, |st| async move { next_events(st).await }).flat_map(|events| futures_util::stream::iter(events.into_iter().map(Ok::<Event, std::convert::Infallible>)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

/// One Server-Sent Event of `/v1/chat/stream`: its name and its JSON data
/// (`token`: `{"text"}`; `done`: a `ChatResponse`; `error`: `{"status", "error"}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SseEvent {
    #[schema(pattern = "^(token|done|error)$")]
    event: String,
    /// JSON text.
    data: String,
}

type Work = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome, dadly_agent::AgentError>> + Send>>;

/// A streamed chat in progress: the agent's work, the text it has written so far, its outcome.
struct Streaming {
    work: Option<Work>,
    rx: tokio::sync::mpsc::UnboundedReceiver<String>,
    outcome: Option<Result<Outcome, dadly_agent::AgentError>>,
    first: Option<String>,
    sent_any: bool,
    chat_id: String,
    done: bool,
}

fn token(text: String) -> axum::response::sse::Event {
    axum::response::sse::Event::default().event("token").json_data(serde_json::json!({ "text": text })).unwrap_or_default()
}

/// The next events of a streamed chat: a piece of text, or the end.
async fn next_events(mut st: Streaming) -> Option<(Vec<axum::response::sse::Event>, Streaming)> {
    use axum::response::sse::Event;
    if st.done {
        return None;
    }
    if let Some(piece) = st.first.take() {
        st.sent_any = true;
        return Some((vec![token(piece)], st));
    }
    if let Some(work) = st.work.as_mut() {
        tokio::select! {
            biased;
            Some(piece) = st.rx.recv() => {
                st.sent_any = true;
                return Some((vec![token(piece)], st));
            }
            outcome = work => {
                st.work = None;
                st.outcome = Some(outcome);
            }
        }
    }
    // The work is done: what it wrote before finishing still goes out first.
    if let Ok(piece) = st.rx.try_recv() {
        st.sent_any = true;
        return Some((vec![token(piece)], st));
    }
    st.done = true;
    let events = match st.outcome.take() {
        Some(Ok(outcome)) => {
            let reply = match &outcome {
                Outcome::Recorded { reply, .. } | Outcome::Answered { reply, .. } | Outcome::Help { reply } | Outcome::Capsule { reply, .. } => reply.clone(),
                Outcome::Duplicate => String::new(),
            };
            let mut events = Vec::new();
            if !st.sent_any && !reply.is_empty() {
                events.push(token(reply));
            }
            match response_body(outcome, std::mem::take(&mut st.chat_id)) {
                Ok(body) => events.push(Event::default().event("done").json_data(body).unwrap_or_default()),
                Err(e) => events.push(error_event(e)),
            }
            events
        }
        Some(Err(e)) => vec![error_event(e.into())],
        None => vec![],
    };
    Some((events, st))
}

/// An error after the stream began, with the body `/v1/chat` would have sent.
fn error_event(e: ApiError) -> axum::response::sse::Event {
    let (status, body) = e.status_and_body();
    axum::response::sse::Event::default().event("error").json_data(serde_json::json!({ "status": status.as_u16(), "error": body["error"] })).unwrap_or_default()
}
