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
    Router::new().route("/v1/chat", post(chat))
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

async fn chat_once(state: &AppState, user: &dadly_agent::domain::User, req: ChatRequest) -> Result<(axum::http::StatusCode, serde_json::Value), ApiError> {
    let chat_id = req.chat_id.unwrap_or_else(|| "web".into());
    if chat_id.is_empty() || chat_id.len() > 128 {
        return Err(ApiError::Invalid("chat_id must be 1 to 128 bytes".into()));
    }
    let message = Message {
        chat_id: chat_id.clone(),
        text: req.message,
        sent_at: req.sent_at.unwrap_or_else(|| state.agent.local_now()),
        source: Source::Web,
        dedupe_key: None,
        reply_to: None,
    };
    let outcome = state.agent.handle(user, message).await?;
    let none = |kind, reply| ChatResponse { kind, reply, chat_id: chat_id.clone(), entry_id: None, entry: None, sources: None, capsule: None };
    let body = match outcome {
        Outcome::Recorded { reply, entry } => ChatResponse { entry_id: Some(entry.id), entry: Some(entry), ..none(ChatKind::Recorded, reply) },
        Outcome::Answered { reply, sources } => ChatResponse { sources: Some(sources), ..none(ChatKind::Answered, reply) },
        Outcome::Help { reply } => none(ChatKind::Help, reply),
        Outcome::Capsule { reply, capsule } => ChatResponse { capsule, ..none(ChatKind::Capsule, reply) },
        Outcome::Duplicate => none(ChatKind::Duplicate, String::new()),
    };
    Ok((axum::http::StatusCode::OK, serde_json::to_value(body).map_err(|e| ApiError::Internal(Box::new(e)))?))
}
