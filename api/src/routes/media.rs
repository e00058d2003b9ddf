//! `GET /media/{key}?expires=..&sig=..`: serves local-folder media behind
//! HMAC-signed, expiring URLs. A tampered or expired URL gets 403.

use axum::extract::State;
use axum::http::header;
use axum::routing::get;
use axum::{Router, response::IntoResponse};
use dadly_agent::blob::{BlobError, local::UrlRejection};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Path, Query};

pub fn routes() -> Router<AppState> {
    Router::new().route("/media/{*key}", get(serve))
}

#[derive(Deserialize)]
struct Signed {
    expires: i64,
    sig: String,
}

fn content_type(key: &str) -> &'static str {
    match key.rsplit('.').next().unwrap_or("") {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
}

async fn serve(State(state): State<AppState>, Path(key): Path<String>, Query(q): Query<Signed>) -> Result<impl IntoResponse, ApiError> {
    let blobs = state.local_blobs.as_ref().ok_or_else(|| ApiError::NotFound("media is not served from here".into()))?;
    blobs.verify(&key, q.expires, &q.sig).map_err(|r| {
        ApiError::Forbidden(match r {
            UrlRejection::Expired => "this link has expired".into(),
            UrlRejection::BadSignature => "this link is not valid".into(),
        })
    })?;
    let bytes = blobs.read_verified(&key).await.map_err(|e| match e {
        BlobError::NotFound => ApiError::NotFound("no such media".into()),
        other => ApiError::Internal(Box::new(other)),
    })?;
    Ok(([(header::CONTENT_TYPE, content_type(&key)), (header::CACHE_CONTROL, "private, max-age=300")], bytes))
}
