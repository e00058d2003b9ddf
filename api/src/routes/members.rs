//! `/v1/members`: the family's children.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Router, response::IntoResponse};
use chrono::NaiveDate;
use dadly_agent::store::NewMember;
use serde::Deserialize;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/members", get(list).post(create))
        .route("/v1/members/{id}", axum::routing::patch(update))
        .route("/v1/members/{id}/merge", axum::routing::post(merge))
        .route("/v1/telegram/link-codes", axum::routing::post(link_code))
}

/// The family's children.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MemberList {
    pub members: Vec<dadly_agent::domain::Member>,
}

/// A one-time code to link a Telegram account.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LinkCodeResponse {
    pub code: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// What to send the bot.
    pub send_to_bot: String,
}

/// The family's children.
#[utoipa::path(get, path = "/v1/members", responses((status = 200, description = "The children", body = MemberList), crate::openapi::Errors), tag = "members")]
pub(crate) async fn list(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(MemberList { members: state.agent.members(user.family_id).await? }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateMember {
    /// 1–100 characters, unique in the family.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
    /// Other names the child goes by (in any language), at most 20.
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    birth_date: Option<NaiveDate>,
}

/// Adds a child.
#[utoipa::path(post, path = "/v1/members", request_body = CreateMember, responses((status = 201, description = "Added", body = dadly_agent::domain::Member), crate::openapi::Errors), tag = "members")]
pub(crate) async fn create(State(state): State<AppState>, AuthUser(user): AuthUser, Json(req): Json<CreateMember>) -> Result<impl IntoResponse, ApiError> {
    state.agent.require_owner(&user, "add children")?;
    let member = state
        .agent
        .add_member(user.family_id, NewMember { name: req.name, aliases: req.aliases, birth_date: req.birth_date })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(member)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateMember {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: Option<String>,
    /// Replaces the aliases.
    #[serde(default)]
    aliases: Option<Vec<String>>,
    /// A date, or `null` to clear it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<NaiveDate>)]
    birth_date: Option<Option<NaiveDate>>,
}

/// Tells `"birth_date": null` (clear it) from a missing field (keep it).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<NaiveDate>>, D::Error> {
    Option::<NaiveDate>::deserialize(d).map(Some)
}

/// Renames a child, replaces their aliases or sets their birth date (owner only).
#[utoipa::path(patch, path = "/v1/members/{id}", request_body = UpdateMember, params(("id" = uuid::Uuid, Path, description = "The child")), responses((status = 200, description = "The child now", body = dadly_agent::domain::Member), crate::openapi::Errors), tag = "members")]
pub(crate) async fn update(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    crate::extract::Path(id): crate::extract::Path<uuid::Uuid>,
    Json(req): Json<UpdateMember>,
) -> Result<impl IntoResponse, ApiError> {
    if req.name.is_none() && req.aliases.is_none() && req.birth_date.is_none() {
        return Err(ApiError::Invalid("send `name`, `aliases` and/or `birth_date` to change".into()));
    }
    let patch = dadly_agent::pipeline::family::MemberPatch { name: req.name, aliases: req.aliases, birth_date: req.birth_date };
    Ok(axum::Json(state.agent.update_member(&user, id, patch).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Merge {
    /// The record to keep; the one in the path goes, its entries and names moved here.
    into: uuid::Uuid,
}

/// Merges two records of the same child (owner only) without losing any attribution.
#[utoipa::path(post, path = "/v1/members/{id}/merge", request_body = Merge, params(("id" = uuid::Uuid, Path, description = "The record that goes")), responses((status = 200, description = "The record kept", body = dadly_agent::domain::Member), crate::openapi::Errors), tag = "members")]
pub(crate) async fn merge(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    crate::extract::Path(id): crate::extract::Path<uuid::Uuid>,
    Json(req): Json<Merge>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(state.agent.merge_members(&user, id, req.into).await?))
}

/// A one-time code the parent sends to the Telegram bot (`/start CODE`).
#[utoipa::path(post, path = "/v1/telegram/link-codes", responses((status = 201, description = "A code valid 15 minutes", body = LinkCodeResponse), crate::openapi::Errors), tag = "telegram")]
pub(crate) async fn link_code(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<impl IntoResponse, ApiError> {
    let code = state.agent.create_link_code(&user).await?;
    let start = format!("/start {}", code.code);
    Ok((StatusCode::CREATED, axum::Json(LinkCodeResponse { code: code.code, expires_at: code.expires_at, send_to_bot: start })))
}
