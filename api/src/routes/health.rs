//! Liveness, readiness, metrics and the backend status.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::get;
use axum::{Router, response::IntoResponse};
use serde_json::json;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(json!({ "status": "ok" })) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
        .route("/v1/usage", get(usage))
        .route("/v1/export", get(export))
        .route("/openapi.json", get(|| async { axum::Json(crate::openapi::document()) }))
}

/// 200 while every backend requests need answers — the store, the vector
/// index, the blob store — naming each; 503 naming the ones that do not. A
/// model server that is down is named under `degraded` and keeps the
/// instance in rotation (entries are still kept and wait for it), unless
/// `DADLY_READY_REQUIRES_MODELS` is set.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let r = state.agent.readiness(state.ready_requires_models).await;
    let status = if !r.ready {
        tracing::warn!(down = ?r.down, "not ready");
        "unavailable"
    } else if r.degraded.is_empty() {
        "ready"
    } else {
        "degraded"
    };
    let code = if r.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let b = state.agent.backends();
    let backends = json!({
        "store": { "backend": b.store.backend(), "state": r.store },
        "vector_index": { "backend": b.index.backend(), "state": r.vector_index },
        "blob_store": { "backend": b.blobs.backend(), "state": r.blob_store },
    });
    (code, axum::Json(json!({ "status": status, "store": r.store, "backends": backends, "down": r.down, "models": r.models, "degraded": r.degraded })))
}

/// How long one reading of the queue depth serves scrapes.
const QUEUE_DEPTH_TTL: std::time::Duration = std::time::Duration::from_secs(5);

async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Result<impl IntoResponse, ApiError> {
    if let Some(expected) = &state.metrics_token {
        let given = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return Err(ApiError::Unauthorized("`/metrics` wants `Authorization: Bearer <DADLY_METRICS_TOKEN>`".into()));
        }
    }
    let mut text = state.agent.metrics().render();
    let depth = {
        let mut cached = state.queue_depth.lock().await;
        match &*cached {
            Some((at, depth)) if at.elapsed() < QUEUE_DEPTH_TTL => Some(depth.clone()),
            _ => match state.agent.store().queue_depth().await {
                Ok(depth) => {
                    *cached = Some((std::time::Instant::now(), depth.clone()));
                    Some(depth)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the queue depth");
                    None
                }
            },
        }
    };
    if let Some(d) = depth {
        text.push_str("# TYPE dadly_jobs gauge\n");
        for (s, n) in [("queued", d.queued), ("running", d.running), ("failed", d.failed)] {
            text.push_str(&format!("dadly_jobs{{state=\"{s}\"}} {n}\n"));
        }
        let age = d.oldest_due.map(|t| (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0).unwrap_or(0.0);
        text.push_str(&format!("# TYPE dadly_jobs_oldest_queued_seconds gauge\ndadly_jobs_oldest_queued_seconds {age}\n"));
    }
    if let Some(bytes) = state.agent.backends().index.cache_bytes() {
        text.push_str(&format!("# TYPE dadly_index_cache_bytes gauge\ndadly_index_cache_bytes {bytes}\n"));
    }
    if let Some(loads) = state.agent.backends().index.cache_loads() {
        text.push_str(&format!("# TYPE dadly_index_loads_total counter\ndadly_index_loads_total {loads}\n"));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct UsageParams {
    /// 1–366 (default 30).
    days: Option<u32>,
}

/// Model spend over a period.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct UsageResponse {
    pub days: u32,
    pub models: Vec<dadly_agent::store::UsageRow>,
    pub total_cost_usd: f64,
}

/// The family's export: members and every entry with its insights, history and media links (valid a day).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ExportDoc {
    pub exported_at: chrono::DateTime<chrono::Utc>,
    pub family_id: uuid::Uuid,
    pub members: Vec<dadly_agent::domain::Member>,
    /// `{"entry": <entry view>, "media": [{"media", "url"}]}` per entry.
    pub entries: Vec<serde_json::Value>,
}

/// The family's model calls, tokens and estimated cost over the last `days` (default 30).
#[utoipa::path(get, path = "/v1/usage", params(UsageParams), responses((status = 200, description = "Spend per model", body = UsageResponse), crate::openapi::Errors), tag = "status")]
pub(crate) async fn usage(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    crate::extract::Query(p): crate::extract::Query<UsageParams>,
) -> Result<impl IntoResponse, ApiError> {
    let days = p.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError::Invalid("days must be between 1 and 366".into()));
    }
    let rows = state.agent.usage(user.family_id, days).await?;
    let total: f64 = rows.iter().map(|r| r.cost_usd).sum();
    Ok(axum::Json(UsageResponse { days, models: rows, total_cost_usd: total }))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportParams {
    /// `zip` (default): the archive, streamed; `json`: the document with media links valid a day.
    format: Option<String>,
}

/// The family's data: a zip (`dadly-export.json` per `schema.json`, and every
/// media file's original bytes), streamed as it is written — or, with
/// `format=json`, one JSON document with media links.
#[utoipa::path(
    get,
    path = "/v1/export",
    params(ExportParams),
    responses(
        (status = 200, description = "The archive (zip), or the JSON document", content((Vec<u8> = "application/zip"), (ExportDoc = "application/json"))),
        crate::openapi::Errors
    ),
    tag = "export"
)]
pub(crate) async fn export(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    crate::extract::Query(p): crate::extract::Query<ExportParams>,
) -> Result<axum::response::Response, ApiError> {
    let day = chrono::Utc::now().format("%Y-%m-%d");
    match p.format.as_deref() {
        None | Some("zip") => {
            let rx = dadly_agent::pipeline::archive::stream_zip(state.agent.clone(), user.family_id);
            let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
            let disposition = format!("attachment; filename=\"dadly-export-{day}.zip\"");
            Ok(([(header::CONTENT_TYPE, "application/zip".to_string()), (header::CONTENT_DISPOSITION, disposition)], axum::body::Body::from_stream(stream)).into_response())
        }
        Some("json") => {
            let body = state.agent.export(user.family_id).await?;
            let disposition = format!("attachment; filename=\"dadly-export-{day}.json\"");
            Ok(([(header::CONTENT_DISPOSITION, disposition)], axum::Json(body)).into_response())
        }
        Some(other) => Err(ApiError::Invalid(format!("`format` is `zip` or `json`, not `{other}`"))),
    }
}

/// Which backend serves each port, whether model servers answer, and the family's job queue.
#[utoipa::path(get, path = "/v1/status", responses((status = 200, description = "Backends and queue", body = dadly_agent::agent::Status), crate::openapi::Errors), tag = "status")]
pub(crate) async fn status(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(state.agent.status(Some(user.family_id)).await?))
}
