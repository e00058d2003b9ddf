//! `/v1/members`: the family's children.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Router, response::IntoResponse};
use chrono::NaiveDate;
use dadly_agent::store::NewMember;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/members", get(list).post(create)).route("/v1/telegram/link-codes", axum::routing::post(link_code))
}

async fn list(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(json!({ "members": state.agent.members(user.family_id).await? })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateMember {
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    birth_date: Option<NaiveDate>,
}

async fn create(State(state): State<AppState>, AuthUser(user): AuthUser, Json(req): Json<CreateMember>) -> Result<impl IntoResponse, ApiError> {
    let member = state
        .agent
        .add_member(user.family_id, NewMember { name: req.name, aliases: req.aliases, birth_date: req.birth_date })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(member)))
}

/// A one-time code the parent sends to the Telegram bot (`/start CODE`).
async fn link_code(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<impl IntoResponse, ApiError> {
    let code = state.agent.create_link_code(&user).await?;
    let start = format!("/start {}", code.code);
    Ok((StatusCode::CREATED, axum::Json(json!({ "code": code.code, "expires_at": code.expires_at, "send_to_bot": start }))))
}
