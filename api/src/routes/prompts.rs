//! `/v1/prompts`: the parent's daily question (Telegram), at a local time.

use axum::extract::State;
use axum::routing::get;
use axum::{Router, response::IntoResponse};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/prompts", get(show).put(set))
}

/// One question a day on Telegram at `time` (local to the family's `utc_offset`); `null` turns them off.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Prompts {
    /// `HH:MM`, or `null` for off.
    pub time: Option<String>,
    /// The family's UTC offset, e.g. `+09:00` (defaults to the server's `DADLY_UTC_OFFSET`).
    #[serde(default)]
    pub utc_offset: Option<String>,
}

/// The parent's daily prompt setting.
#[utoipa::path(get, path = "/v1/prompts", responses((status = 200, description = "The setting", body = Prompts), crate::openapi::Errors), tag = "prompts")]
pub(crate) async fn show(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<impl IntoResponse, ApiError> {
    let (time, utc_offset) = state.agent.prompts(&user).await?;
    Ok(axum::Json(Prompts { time, utc_offset }))
}

/// Turns daily prompts on at a local time, or off.
#[utoipa::path(put, path = "/v1/prompts", request_body = Prompts, responses((status = 200, description = "The setting now", body = Prompts), crate::openapi::Errors), tag = "prompts")]
pub(crate) async fn set(State(state): State<AppState>, AuthUser(user): AuthUser, Json(req): Json<Prompts>) -> Result<impl IntoResponse, ApiError> {
    state.agent.set_prompts(&user, req.time.as_deref(), req.utc_offset.as_deref()).await?;
    let (time, utc_offset) = state.agent.prompts(&user).await?;
    Ok(axum::Json(Prompts { time, utc_offset }))
}
