//! `POST /v1/chat`: one message in; recorded, answered, or help out.

use axum::routing::post;
use axum::{Router, response::IntoResponse};
use chrono::{DateTime, FixedOffset};
use dadly_agent::agent::{Message, Outcome};
use dadly_agent::domain::Source;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;
use crate::AppState;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    pub message: String,
    /// Conversation id chosen by the client; memory is kept per chat.
    #[serde(default)]
    pub chat_id: Option<String>,
    /// When the parent sent it, with their UTC offset ("today" is theirs).
    #[serde(default)]
    pub sent_at: Option<DateTime<FixedOffset>>,
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/chat", post(chat))
}

async fn chat(
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
    let body = match outcome {
        Outcome::Recorded { reply, entry } => json!({ "kind": "recorded", "reply": reply, "entry_id": entry.id, "entry": entry, "chat_id": chat_id }),
        Outcome::Answered { reply, sources } => json!({ "kind": "answered", "reply": reply, "sources": sources, "chat_id": chat_id }),
        Outcome::Help { reply } => json!({ "kind": "help", "reply": reply, "chat_id": chat_id }),
        Outcome::Duplicate => json!({ "kind": "duplicate", "reply": "", "chat_id": chat_id }),
    };
    Ok((axum::http::StatusCode::OK, body))
}
