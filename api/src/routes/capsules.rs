//! `/v1/capsules`: time capsules — seal a message for a child until a day,
//! list them (existence, author, child and date only), delete one. Nobody
//! reads a sealed capsule back; on its day it becomes an ordinary entry.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Router, response::IntoResponse};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Path;
use crate::upload::JsonOrForm;
use dadly_agent::capsule::Attachment;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/capsules", get(list).post(create).layer(axum::extract::DefaultBodyLimit::max(crate::upload::MAX_FORM_BYTES)))
        .route("/v1/capsules/{id}", delete(remove))
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateCapsule {
    /// The child it is for.
    member_id: uuid::Uuid,
    /// The opening day (`2036-03-14`, at noon in the server's `DADLY_UTC_OFFSET`) or an RFC 3339 instant; in the future.
    open_at: String,
    /// The message, sealed until then (1–10,000 characters).
    #[schema(min_length = 1, max_length = 10000, pattern = "\\S")]
    message: String,
}

/// A capsule with a photo or voice note, as `multipart/form-data`.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct CapsuleUpload {
    /// The child it is for.
    member_id: uuid::Uuid,
    /// As in the JSON form.
    open_at: String,
    /// The message (may be empty when a file is attached).
    #[schema(max_length = 10000)]
    message: Option<String>,
    /// A photo (JPEG, PNG, HEIC, WebP) or a voice recording (Ogg/Opus, WebM, M4A, MP3, WAV), recognised by its bytes; at most 20 MiB.
    #[schema(value_type = Option<String>, format = Binary)]
    file: Option<Vec<u8>>,
}

/// The family's capsules.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CapsuleList {
    pub capsules: Vec<dadly_agent::domain::Capsule>,
}

fn opening(state: &AppState, value: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.to_utc());
    }
    let day = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest("`open_at` must be a date (2036-03-14) or an RFC 3339 instant".into()))?;
    let offset = *state.agent.local_now().offset();
    offset
        .from_local_datetime(&day.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default()))
        .single()
        .map(|t| t.to_utc())
        .ok_or_else(|| ApiError::Invalid("`open_at` is out of range".into()))
}

/// Seals a message for a child until `open_at`.
/// As JSON, or as a form with a photo or voice note sealed beside the message.
#[utoipa::path(
    post,
    path = "/v1/capsules",
    request_body(content((CreateCapsule = "application/json"), (CapsuleUpload = "multipart/form-data"))),
    responses((status = 201, description = "Sealed", body = dadly_agent::domain::Capsule), crate::openapi::Errors),
    tag = "capsules"
)]
pub(crate) async fn create(State(state): State<AppState>, AuthUser(user): AuthUser, body: JsonOrForm<CreateCapsule>) -> Result<impl IntoResponse, ApiError> {
    let (member_id, open_at, message, attachment) = match body {
        JsonOrForm::Json(req) => (req.member_id, req.open_at, req.message, None),
        JsonOrForm::Form(form) => {
            let member_id = form.text("member_id").ok_or_else(|| ApiError::Invalid("`member_id` is required".into()))?;
            let member_id = member_id.parse().map_err(|_| ApiError::Invalid("`member_id` is not a UUID".into()))?;
            let open_at = form.text("open_at").ok_or_else(|| ApiError::Invalid("`open_at` is required".into()))?.to_string();
            if form.photo.is_some() && form.audio.is_some() {
                return Err(ApiError::Invalid("a capsule takes one photo or one voice note, not both".into()));
            }
            let attachment = form.photo.as_ref().or(form.audio.as_ref()).map(|u| Attachment { kind: u.kind.to_string(), content_type: u.content_type.to_string(), bytes: u.bytes.clone() });
            (member_id, open_at, form.text("message").unwrap_or("").to_string(), attachment)
        }
    };
    let open_at = opening(&state, &open_at)?;
    let capsule = state.agent.seal_capsule(&user, member_id, open_at, &message, attachment).await?;
    Ok((StatusCode::CREATED, axum::Json(capsule)))
}

/// The family's capsules, soonest first: sealed ones as their existence only.
#[utoipa::path(get, path = "/v1/capsules", responses((status = 200, description = "The capsules", body = CapsuleList), crate::openapi::Errors), tag = "capsules")]
pub(crate) async fn list(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(CapsuleList { capsules: state.agent.capsules(user.family_id).await? }))
}

/// Deletes a capsule (sealed or opened; an opened one's entry stays).
#[utoipa::path(delete, path = "/v1/capsules/{id}", params(("id" = uuid::Uuid, Path, description = "The capsule")), responses((status = 204, description = "Deleted"), crate::openapi::Errors), tag = "capsules")]
pub(crate) async fn remove(State(state): State<AppState>, AuthUser(user): AuthUser, Path(id): Path<uuid::Uuid>) -> Result<impl IntoResponse, ApiError> {
    state.agent.delete_capsule(user.family_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
