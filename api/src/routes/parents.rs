//! Families with several parents: invites (`POST /v1/invites`, redeemed with
//! `POST /v1/invites/redeem` or `/start CODE` in Telegram), the family's
//! parents, and removing one. Managing parents is the owner's.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Router, response::IntoResponse};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{Json, Path};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/invites", post(invite))
        .route("/v1/invites/redeem", post(redeem))
        .route("/v1/parents", get(list))
        .route("/v1/parents/{id}", delete(remove))
}

/// A one-time invite: give the code to the other parent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InviteResponse {
    pub code: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// What the other parent sends the Telegram bot instead.
    pub send_to_bot: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Redeem {
    code: String,
    /// The new parent's name, as the family will see it.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
}

/// The new parent and a token for them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Joined {
    pub parent: Parent,
    pub token: String,
}

/// A parent of the family.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Parent {
    pub id: uuid::Uuid,
    pub name: String,
    pub role: dadly_agent::domain::Role,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ParentList {
    pub parents: Vec<Parent>,
}

fn parent(u: dadly_agent::domain::User) -> Parent {
    Parent { id: u.id, name: u.name, role: u.role, created_at: u.created_at }
}

/// Invites another parent (owner only); the code works once, for a week.
#[utoipa::path(post, path = "/v1/invites", responses((status = 201, description = "An invite", body = InviteResponse), crate::openapi::Errors), tag = "parents")]
pub(crate) async fn invite(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<impl IntoResponse, ApiError> {
    let invite = state.agent.create_invite(&user).await?;
    let send_to_bot = format!("/start {}", invite.code);
    Ok((StatusCode::CREATED, axum::Json(InviteResponse { code: invite.code, expires_at: invite.expires_at, send_to_bot })))
}

/// Joins a family with an invite: no token needed; answers with one.
#[utoipa::path(post, path = "/v1/invites/redeem", request_body = Redeem, security(()), responses((status = 201, description = "Joined", body = Joined), crate::openapi::Errors), tag = "parents")]
pub(crate) async fn redeem(State(state): State<AppState>, Json(req): Json<Redeem>) -> Result<impl IntoResponse, ApiError> {
    let user = state.agent.redeem_invite(&req.code, &req.name, None).await?;
    let token = state.auth.mint(user.id, chrono::Duration::days(30));
    Ok((StatusCode::CREATED, axum::Json(Joined { parent: parent(user), token })))
}

/// The family's parents.
#[utoipa::path(get, path = "/v1/parents", responses((status = 200, description = "The parents", body = ParentList), crate::openapi::Errors), tag = "parents")]
pub(crate) async fn list(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(ParentList { parents: state.agent.parents(user.family_id).await?.into_iter().map(parent).collect() }))
}

/// Removes a parent (owner only): their tokens stop working, their Telegram is unlinked, what they wrote stays.
#[utoipa::path(delete, path = "/v1/parents/{id}", params(("id" = uuid::Uuid, Path, description = "The parent")), responses((status = 204, description = "Removed"), crate::openapi::Errors), tag = "parents")]
pub(crate) async fn remove(State(state): State<AppState>, AuthUser(user): AuthUser, Path(id): Path<uuid::Uuid>) -> Result<impl IntoResponse, ApiError> {
    state.agent.remove_parent(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
