//! Data rights: erase a child (`DELETE /v1/members/{id}`) or the whole family
//! (`DELETE /v1/family`) from every backend, and the audit that it happened.

use axum::extract::State;
use axum::routing::{delete, get};
use axum::{Router, response::IntoResponse};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{Path, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/members/{id}", delete(erase_member))
        .route("/v1/family", delete(erase_family))
        .route("/v1/erasures", get(erasures))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EraseMember {
    /// The child's name, to confirm.
    confirm: String,
    /// `only` (default): entries about several children lose only this child; `all`: they go too.
    entries: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EraseFamily {
    /// `erase-everything`, to confirm.
    confirm: String,
}

/// What was removed, by kind (never what it said).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Erased {
    pub entries_deleted: u64,
    pub entries_detached: u64,
    pub media: u64,
    pub capsules: u64,
    pub chat_turns_and_replies: u64,
    pub trace_runs: u64,
}

impl From<dadly_agent::pipeline::erasure::ErasureCounts> for Erased {
    fn from(c: dadly_agent::pipeline::erasure::ErasureCounts) -> Self {
        Self {
            entries_deleted: c.entries_deleted,
            entries_detached: c.entries_detached,
            media: c.media,
            capsules: c.capsules,
            chat_turns_and_replies: c.chat_turns_and_replies,
            trace_runs: c.trace_runs,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErasureList {
    pub erasures: Vec<dadly_agent::store::Erasure>,
}

/// Erases a child from every backend (owner only, confirmed with the child's name).
#[utoipa::path(delete, path = "/v1/members/{id}", params(("id" = uuid::Uuid, Path, description = "The child"), EraseMember), responses((status = 200, description = "Erased", body = Erased), crate::openapi::Errors), tag = "data rights")]
pub(crate) async fn erase_member(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<uuid::Uuid>,
    Query(q): Query<EraseMember>,
) -> Result<impl IntoResponse, ApiError> {
    let all = match q.entries.as_deref() {
        None | Some("only") => false,
        Some("all") => true,
        Some(other) => return Err(ApiError::Invalid(format!("`entries` is `only` or `all`, not `{other}`"))),
    };
    let counts = state.agent.erase_member(&user, id, &q.confirm, all).await?;
    Ok(axum::Json(Erased::from(counts)))
}

/// Deletes the family and everything in it, from every backend (owner only, confirmed).
#[utoipa::path(delete, path = "/v1/family", params(EraseFamily), responses((status = 200, description = "Erased", body = Erased), crate::openapi::Errors), tag = "data rights")]
pub(crate) async fn erase_family(State(state): State<AppState>, AuthUser(user): AuthUser, Query(q): Query<EraseFamily>) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(Erased::from(state.agent.erase_family(&user, &q.confirm).await?)))
}

/// That erasures happened: who, when, how many of each — never what.
#[utoipa::path(get, path = "/v1/erasures", responses((status = 200, description = "The audit", body = ErasureList), crate::openapi::Errors), tag = "data rights")]
pub(crate) async fn erasures(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(ErasureList { erasures: state.agent.erasures(user.family_id).await? }))
}
