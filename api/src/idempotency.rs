//! `Idempotency-Key` on the routes that create things (`POST /v1/chat`,
//! `POST /v1/entries`): a client that lost a response retries with the same
//! key and gets the first result, not a second entry. The key is the
//! family's: the same key from another family is another request.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dadly_agent::domain::User;
use dadly_agent::store::Idempotent;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

pub const HEADER: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";

/// How long a key may stay held by a request that never finished (its
/// instance died) before a retry may run it again.
const STALE_AFTER_SECS: i64 = 300;

/// The key a request carries, checked: 1–255 visible ASCII characters.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else { return Ok(None) };
    let key = value.to_str().ok().map(str::trim).unwrap_or("");
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::Invalid("`Idempotency-Key` must be 1 to 255 visible ASCII characters".into()));
    }
    Ok(Some(key.to_string()))
}

/// Runs `work` once per (family, key): the first call runs it and keeps its
/// response; later calls with the same request get that response back.
pub async fn once<F>(state: &AppState, user: &User, headers: &HeaderMap, route: &str, request: &Value, work: F) -> Result<Response, ApiError>
where
    F: Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    let Some(key) = key(headers)? else {
        let (status, body) = work.await?;
        return Ok((status, axum::Json(body)).into_response());
    };
    let store = state.agent.store();
    let fingerprint = dadly_agent::blob::sha256_hex(format!("{route}\n{request}").as_bytes());
    let scoped = format!("{route} {key}");
    let stale = chrono::Duration::seconds(STALE_AFTER_SECS);
    match store.begin_idempotent(user.family_id, &scoped, &fingerprint, stale).await.map_err(dadly_agent::AgentError::from)? {
        Idempotent::New => {}
        Idempotent::InProgress => {
            return Err(ApiError::Conflict("a request with this Idempotency-Key is still being handled; retry in a moment".into()));
        }
        Idempotent::Mismatch => return Err(ApiError::Invalid("this Idempotency-Key was already used for a different request".into())),
        Idempotent::Replay { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let mut response = (status, axum::Json(body)).into_response();
            response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
            return Ok(response);
        }
    }
    match work.await {
        Ok((status, body)) => {
            if let Err(e) = store.finish_idempotent(user.family_id, &scoped, status.as_u16(), &body.to_string()).await {
                // The work is done and durable; only the replay copy is missing.
                tracing::warn!(error = %e, "could not keep an idempotent response");
            }
            Ok((status, axum::Json(body)).into_response())
        }
        Err(e) => {
            if let Err(release) = store.release_idempotent(user.family_id, &scoped).await {
                tracing::warn!(error = %release, "could not release an idempotency key");
            }
            Err(e)
        }
    }
}
