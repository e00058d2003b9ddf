//! Dadly's HTTP surface: the REST API and web chat over the agent, bearer-token
//! auth, signed media URLs, health, readiness and metrics.

pub mod auth;
pub mod error;
mod extract;
pub mod idempotency;
pub mod openapi;
mod routes;
pub mod upload;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use dadly_agent::Agent;
use dadly_agent::blob::LocalBlobs;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use auth::Auth;
pub use error::ApiError;
pub use routes::web::sign_in_link;

/// Largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub agent: Arc<Agent>,
    pub auth: Arc<Auth>,
    /// Set when media lives in a local folder: the API serves its signed URLs.
    pub local_blobs: Option<Arc<LocalBlobs>>,
    /// When set, `/metrics` wants `Authorization: Bearer <this>`.
    pub metrics_token: Option<Arc<str>>,
    /// The queue depth as last read, so scrapes do not each query the store.
    pub queue_depth: Arc<tokio::sync::Mutex<Option<(std::time::Instant, dadly_agent::store::QueueDepth)>>>,
    /// Other sites whose pages may call the API (CORS); `*` for any.
    pub allowed_origins: Arc<Vec<String>>,
    /// `/readyz` is 503 when a model server is down, not only a storage backend.
    pub ready_requires_models: bool,
}

impl AppState {
    pub fn new(agent: Arc<Agent>, auth: Arc<Auth>, local_blobs: Option<Arc<LocalBlobs>>, metrics_token: Option<String>) -> Self {
        Self { agent, auth, local_blobs, metrics_token: metrics_token.map(Into::into), queue_depth: Default::default(), allowed_origins: Default::default(), ready_requires_models: false }
    }

    /// Lets pages on these origins call the API (the chat widget on a family's site).
    pub fn with_allowed_origins(mut self, origins: Vec<String>) -> Self {
        self.allowed_origins = Arc::new(origins);
        self
    }
}

/// The whole API as one router.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The API plus a channel's own routes (the Telegram webhook), all behind the
/// same body limit, timeout, panic guard, request ids, tracing and metrics.
pub fn router_with(state: AppState, channel_routes: Router) -> Router {
    let api = Router::new()
        .merge(routes::chat::routes())
        .merge(routes::capsules::routes())
        .merge(routes::parents::routes())
        .merge(routes::erasure::routes())
        .merge(routes::prompts::routes())
        .merge(routes::entries::routes())
        .merge(routes::members::routes())
        .merge(routes::health::routes())
        .merge(routes::media::routes())
        .merge(routes::web::routes());
    let x_request_id = axum::http::HeaderName::from_static("x-request-id");
    let cors = cors(&state.allowed_origins);
    api.fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .with_state(state.clone())
        .merge(channel_routes)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(refuse_nul_in_uri))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::GATEWAY_TIMEOUT, Duration::from_secs(120)))
        // A 5xx is logged once, as an error, by whoever caused it; the access log notes it as a warning.
        .layer(TraceLayer::new_for_http().make_span_with(request_span).on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::WARN)))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .layer(cors)
        // Errors and panics reach Sentry with their request (a no-op unless SENTRY_DSN is set).
        .layer(sentry::integrations::tower::SentryHttpLayer::new())
        .layer(sentry::integrations::tower::NewSentryLayer::<Request>::new_from_top())
}

/// CORS for the configured origins: bearer tokens in headers, no cookies, so
/// credentials are never allowed; preflights are answered here.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return CorsLayer::new();
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, HeaderName::from_static("idempotency-key")])
        .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
        .max_age(Duration::from_secs(3600))
}

/// The request's span; `trace_id` (from `X-Cloud-Trace-Context` or
/// `traceparent`) lets JSON logs join the platform's request trace.
fn request_span(request: &Request) -> tracing::Span {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let trace_id = trace_id(header("x-cloud-trace-context"), header("traceparent")).unwrap_or_default();
    tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), trace_id = %trace_id)
}

/// The trace id of a request: `X-Cloud-Trace-Context: TRACE/SPAN;o=1` or W3C `traceparent: 00-TRACE-SPAN-01`.
pub fn trace_id(cloud: Option<&str>, traceparent: Option<&str>) -> Option<String> {
    let valid = |t: &str| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(id) = cloud.and_then(|c| c.split('/').next()).filter(|t| valid(t)) {
        return Some(id.to_ascii_lowercase());
    }
    traceparent.and_then(|p| p.split('-').nth(1)).filter(|t| valid(t)).map(str::to_ascii_lowercase)
}

/// A handler that panicked answers 500 with the usual opaque JSON body; the
/// server goes on serving everyone else.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
    tracing::error!(panic = %what, "a request handler panicked");
    let body = serde_json::json!({ "error": { "code": "internal", "message": "something went wrong on our side" } });
    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

/// No backend stores a NUL character: a `%00` in the path or query is refused
/// for every route, before any handler parses it.
async fn refuse_nul_in_uri(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let has_nul = |s: &str| s.as_bytes().windows(3).any(|w| w.eq_ignore_ascii_case(b"%00"));
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return ApiError::Invalid("the request's path or query contains a NUL character".into()).into_response();
    }
    next.run(request).await
}

async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    // (A streamed response is timed to its first byte.)
    state.agent.metrics().observe("dadly_http_request_duration_seconds", &[("method", &method), ("route", &route)], started.elapsed());
    let status = response.status().as_u16().to_string();
    state.agent.metrics().inc("dadly_http_requests_total", &[("method", &method), ("route", &route), ("status", &status)]);
    response
}
