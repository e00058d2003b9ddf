//! Extractors whose rejections use `ApiError`'s JSON format, and which refuse
//! what no backend can store (a NUL character) before a handler runs.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// A JSON body: `Content-Type: application/json` (or `+json`), within the body
/// limit, with no NUL character in any string, deserialised into `T`.
pub struct Json<T>(pub T);

pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The JSON path of the first string (or key) holding a NUL character.
fn nul_path(v: &Value, path: &mut Vec<String>) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
            path.push(i.to_string());
            let found = nul_path(item, path);
            if !found {
                path.pop();
            }
            found
        }),
        Value::Object(map) => map.iter().any(|(k, item)| {
            path.push(k.clone());
            let found = k.contains('\0') || nul_path(item, path);
            if !found {
                path.pop();
            }
            found
        }),
        _ => false,
    }
}

/// Refuses a body whose strings hold a NUL character (`\u0000` is the only way
/// to write one in JSON, so bodies without it are not parsed twice).
pub(crate) fn refuse_nul(bytes: &[u8]) -> Result<(), ApiError> {
    let lower = bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"));
    if !lower {
        return Ok(());
    }
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else { return Ok(()) };
    let mut path = Vec::new();
    if nul_path(&v, &mut path) {
        let field = if path.is_empty() { "the body".to_string() } else { format!("`{}`", path.join(".")) };
        return Err(ApiError::Invalid(format!("{field} contains a NUL character")));
    }
    Ok(())
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::Unsupported("send JSON with `Content-Type: application/json`".into()));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE { ApiError::TooLarge } else { ApiError::BadRequest(r.body_text()) }
        })?;
        refuse_nul(&bytes)?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(Json(value))
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_anywhere_in_a_body_names_its_field() {
        let body = br#"{"message":"ok","meta":{"names":["a","b\u0000c"]}}"#;
        assert!(matches!(refuse_nul(body), Err(ApiError::Invalid(m)) if m == "`meta.names.1` contains a NUL character"));
        assert!(refuse_nul(br#"{"message":"a literal \\u0000 typed by a parent"}"#).is_ok());
        assert!(refuse_nul(br#"{"message":"no nul"}"#).is_ok());
    }
}
