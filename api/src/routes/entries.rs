//! `/v1/entries`: record directly, list with filters, read, edit, delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Router, response::IntoResponse};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Utc};
use dadly_agent::domain::{EntryId, MemberId, Source};
use dadly_agent::pipeline::{EntryPatch, ListQuery, RecordInput, UploadedFile};
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::upload::JsonOrForm;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/entries", get(list).post(create).layer(axum::extract::DefaultBodyLimit::max(crate::upload::MAX_FORM_BYTES)))
        .route("/v1/entries/{id}", get(read).patch(edit).delete(remove))
}

/// The entry and its id.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EntryCreated {
    pub entry_id: uuid::Uuid,
    pub entry: dadly_agent::domain::Entry,
}

/// A page of entries, newest first; `next_cursor` fetches the next.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EntryList {
    pub entries: Vec<dadly_agent::domain::Entry>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateEntry {
    #[schema(min_length = 1, max_length = 10000, pattern = "\\S")]
    text: String,
    #[serde(default)]
    occurred_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    member_ids: Option<Vec<MemberId>>,
    #[serde(default)]
    sent_at: Option<DateTime<FixedOffset>>,
    /// `web` (default) or `import`.
    #[serde(default)]
    source: Option<String>,
}

/// An entry with a photo and/or a voice recording, as `multipart/form-data`.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct EntryUpload {
    /// Optional with a file; a voice recording without text is transcribed into the entry.
    #[schema(max_length = 10000)]
    text: Option<String>,
    /// A photo: JPEG, PNG, HEIC or WebP (recognised by its bytes), at most 20 MiB.
    #[schema(value_type = Option<String>, format = Binary)]
    photo: Option<Vec<u8>>,
    /// A voice recording: Ogg/Opus, WebM/Opus, M4A, MP3 or WAV, at most 20 MiB.
    #[schema(value_type = Option<String>, format = Binary)]
    audio: Option<Vec<u8>>,
    /// Comma-separated child ids.
    member_ids: Option<String>,
    /// RFC 3339.
    occurred_at: Option<String>,
    /// RFC 3339, with the parent's offset.
    sent_at: Option<String>,
}

/// Records an entry directly: JSON, or a form with a photo and/or a voice recording.
#[utoipa::path(
    post,
    path = "/v1/entries",
    request_body(content((CreateEntry = "application/json"), (EntryUpload = "multipart/form-data"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key from the same family gets the first response")),
    responses((status = 201, description = "Recorded", body = EntryCreated), crate::openapi::Errors),
    tag = "entries"
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    headers: axum::http::HeaderMap,
    body: JsonOrForm<CreateEntry>,
) -> Result<impl IntoResponse, ApiError> {
    match body {
        JsonOrForm::Json(req) => {
            let fingerprint = serde_json::to_value(&req).unwrap_or_default();
            crate::idempotency::once(&state, &user, &headers, "POST /v1/entries", &fingerprint, create_once(&state, &user, req)).await
        }
        JsonOrForm::Form(form) => {
            let files: Vec<&crate::upload::Upload> = form.photo.iter().chain(form.audio.iter()).collect();
            let fingerprint = serde_json::json!({
                "fields": form.fields,
                "files": files.iter().map(|f| dadly_agent::blob::sha256_hex(&f.bytes)).collect::<Vec<_>>(),
            });
            crate::idempotency::once(&state, &user, &headers, "POST /v1/entries", &fingerprint, upload_once(&state, &user, form)).await
        }
    }
}

fn rfc3339(form: &crate::upload::Form, name: &str) -> Result<Option<DateTime<FixedOffset>>, ApiError> {
    form.text(name).map(|v| DateTime::parse_from_rfc3339(v).map_err(|_| ApiError::Invalid(format!("`{name}` must be an RFC 3339 instant")))).transpose()
}

async fn upload_once(state: &AppState, user: &dadly_agent::domain::User, form: crate::upload::Form) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let member_ids = form.list("member_ids");
    let member_ids = if member_ids.is_empty() {
        None
    } else {
        Some(member_ids.iter().map(|id| id.parse::<Uuid>().map_err(|_| ApiError::Invalid(format!("`{id}` in `member_ids` is not a UUID")))).collect::<Result<Vec<_>, _>>()?)
    };
    let input = RecordInput {
        text: form.text("text").unwrap_or("").to_string(),
        source: Source::Web,
        occurred_at: rfc3339(&form, "occurred_at")?.map(|t| t.to_utc()),
        member_ids,
        sent_at: rfc3339(&form, "sent_at")?.unwrap_or_else(|| state.agent.local_now()),
        dedupe_key: None,
        reply_to: None,
    };
    let files: Vec<UploadedFile> =
        form.photo.iter().chain(form.audio.iter()).map(|u| UploadedFile { kind: u.kind.to_string(), content_type: u.content_type.to_string(), bytes: u.bytes.clone() }).collect();
    let entry = state.agent.record_upload(user, input, files).await?;
    let body = EntryCreated { entry_id: entry.id, entry };
    Ok((StatusCode::CREATED, serde_json::to_value(body).map_err(|e| ApiError::Internal(Box::new(e)))?))
}

async fn create_once(state: &AppState, user: &dadly_agent::domain::User, req: CreateEntry) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let source = match req.source.as_deref() {
        None | Some("web") => Source::Web,
        Some("import") => Source::Import,
        Some(other) => return Err(ApiError::Invalid(format!("source must be `web` or `import`, not `{other}`"))),
    };
    let input = RecordInput {
        text: req.text,
        source,
        occurred_at: req.occurred_at.map(|t| t.to_utc()),
        member_ids: req.member_ids,
        sent_at: req.sent_at.unwrap_or_else(|| state.agent.local_now()),
        dedupe_key: None,
        reply_to: None,
    };
    let entry = state.agent.record(user, input).await?;
    let body = EntryCreated { entry_id: entry.id, entry };
    Ok((StatusCode::CREATED, serde_json::to_value(body).map_err(|e| ApiError::Internal(Box::new(e)))?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only entries about this child.
    #[param(value_type = Option<uuid::Uuid>)]
    member: Option<MemberId>,
    /// A date (2026-11-26) or an RFC 3339 instant; inclusive.
    from: Option<String>,
    /// A date or an RFC 3339 instant; exclusive.
    to: Option<String>,
    topic: Option<String>,
    emotion: Option<String>,
    /// 1–100 (default 20).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// An instant, or a date (its UTC midnight).
fn instant(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.to_utc());
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(|d| d.and_time(NaiveTime::MIN).and_utc())
        .map_err(|_| ApiError::BadRequest(format!("`{name}` must be a date (2026-11-26) or an RFC 3339 instant")))
}

fn cursor(entry_ms: i64, id: EntryId) -> String {
    format!("{entry_ms}_{id}")
}

fn parse_cursor(c: &str) -> Result<(DateTime<Utc>, EntryId), ApiError> {
    let bad = || ApiError::BadRequest("`cursor` is not one this API returned".into());
    let (ms, id) = c.split_once('_').ok_or_else(bad)?;
    let t = DateTime::from_timestamp_millis(ms.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok((t, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// The family's entries, newest first, with filters.
#[utoipa::path(get, path = "/v1/entries", params(ListParams), responses((status = 200, description = "A page of entries", body = EntryList), crate::openapi::Errors), tag = "entries")]
pub(crate) async fn list(State(state): State<AppState>, AuthUser(user): AuthUser, Query(p): Query<ListParams>) -> Result<impl IntoResponse, ApiError> {
    let limit = p.limit.unwrap_or(20);
    let q = ListQuery {
        member_id: p.member,
        from: p.from.as_deref().map(|v| instant("from", v)).transpose()?,
        to: p.to.as_deref().map(|v| instant("to", v)).transpose()?,
        topic: p.topic.map(|t| t.to_lowercase()),
        emotion: p.emotion.map(|e| e.to_lowercase()),
        before: p.cursor.as_deref().map(parse_cursor).transpose()?,
        limit: Some(limit),
    };
    let entries = state.agent.entries(user.family_id, q).await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| cursor(e.occurred_at.timestamp_millis(), e.id)))
        .flatten();
    Ok(axum::Json(EntryList { entries, next_cursor: next }))
}

/// One entry with its insights, history and media links.
#[utoipa::path(get, path = "/v1/entries/{id}", params(("id" = uuid::Uuid, Path, description = "The entry")), responses((status = 200, description = "The entry", body = dadly_agent::agent::EntryView), crate::openapi::Errors), tag = "entries")]
pub(crate) async fn read(State(state): State<AppState>, AuthUser(user): AuthUser, Path(id): Path<EntryId>) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(state.agent.entry(user.family_id, id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchEntry {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    member_ids: Option<Vec<MemberId>>,
}

/// Edits an entry; the previous text is kept in its history.
#[utoipa::path(patch, path = "/v1/entries/{id}", request_body = PatchEntry, params(("id" = uuid::Uuid, Path, description = "The entry")), responses((status = 200, description = "The entry as it is now", body = dadly_agent::agent::EntryView), crate::openapi::Errors), tag = "entries")]
pub(crate) async fn edit(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<EntryId>,
    Json(req): Json<PatchEntry>,
) -> Result<impl IntoResponse, ApiError> {
    if req.text.is_none() && req.member_ids.is_none() {
        return Err(ApiError::Invalid("send `text` and/or `member_ids` to change".into()));
    }
    state.agent.edit_entry(&user, id, EntryPatch { text: req.text, member_ids: req.member_ids }).await?;
    Ok(axum::Json(state.agent.entry(user.family_id, id).await?))
}

/// Deletes an entry everywhere (history, insight, vector, media).
#[utoipa::path(delete, path = "/v1/entries/{id}", params(("id" = uuid::Uuid, Path, description = "The entry")), responses((status = 204, description = "Deleted"), crate::openapi::Errors), tag = "entries")]
pub(crate) async fn remove(State(state): State<AppState>, AuthUser(user): AuthUser, Path(id): Path<EntryId>) -> Result<impl IntoResponse, ApiError> {
    state.agent.delete_entry(user.family_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
