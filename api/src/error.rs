//! `ApiError`: every failure the API returns, as
//! `{"error": {"code": "...", "message": "..."}}`. 4xx say what was wrong;
//! 5xx are logged once and say nothing about internals.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dadly_agent::AgentError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is too large")]
    TooLarge,
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Invalid(String),
    #[error("too many requests; try again in {0} s")]
    TooManyRequests(u64),
    #[error("a backend is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unsupported(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl ApiError {
    /// The status and JSON body this error answers with (5xx logged, as for a response).
    pub fn status_and_body(self) -> (StatusCode, serde_json::Value) {
        self.status_body()
    }

    fn status_body(&self) -> (StatusCode, serde_json::Value) {
        let (status, code) = self.parts();
        let message = match self {
            ApiError::Unavailable(e) => {
                tracing::error!(error = %e, source = ?e.source(), "backend unavailable");
                "a backend is unavailable; please retry shortly".to_string()
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, source = ?e.source(), "internal error");
                "something went wrong on our side".to_string()
            }
            other => other.to_string(),
        };
        (status, json!({ "error": { "code": code, "message": message } }))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.status_body();
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("5"));
        }
        if let ApiError::TooManyRequests(secs) = self {
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from(secs));
        }
        response
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Invalid(m) => ApiError::Invalid(m),
            AgentError::NotFound => ApiError::NotFound("not found".into()),
            AgentError::Forbidden(m) => ApiError::Forbidden(m),
            AgentError::Conflict(m) => ApiError::Conflict(m),
            AgentError::AlreadyHandled => ApiError::Conflict("this request was already handled".into()),
            AgentError::RateLimited(wait) => ApiError::TooManyRequests(wait.as_secs_f64().ceil().max(1.0) as u64),
            AgentError::Unavailable(e) => ApiError::Unavailable(e),
            AgentError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::Unsupported("send JSON with `Content-Type: application/json`".into()),
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
            JsonRejection::JsonDataError(e) => ApiError::Invalid(e.body_text()),
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}
