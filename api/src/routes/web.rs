//! The browser side, served from the binary: the app at `/` and the chat
//! widget at `/widget.js` (files under `api/web/`, embedded at build time —
//! no separate server, no build step), plus what they need from the API:
//! short-lived widget tokens and one-time sign-in links.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use include_dir::{Dir, include_dir};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{AuthUser, SIGNIN_SCOPE, WIDGET_SCOPE};
use crate::error::ApiError;
use crate::extract::Json;

static WEB: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/web");

/// How long a widget token works.
pub const WIDGET_TOKEN_MINUTES: i64 = 60;
/// How long a session started from a sign-in link lasts (capped by the token policy).
const SESSION_DAYS: i64 = 30;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(|| asset("app.js")))
        .route("/app.css", get(|| asset("app.css")))
        .route("/widget.js", get(|| asset("widget.js")))
        .route("/widget.css", get(|| asset("widget.css")))
        .route("/icon.svg", get(|| asset("icon.svg")))
        .route("/v1/widget-tokens", post(widget_token))
        .route("/v1/sign-in", post(sign_in))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

async fn asset(name: &'static str) -> Response {
    let Some(file) = WEB.get_file(name) else { return ApiError::NotFound("no such file".into()).into_response() };
    let mut response = (StatusCode::OK, file.contents()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    // Short: a new binary's files reach browsers within minutes.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    if name.starts_with("widget.") {
        // The widget is loaded by other sites' pages.
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    response
}

async fn index() -> Response {
    let mut response = asset("index.html").await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' https: http: data: blob:; media-src 'self' https: http: blob:; connect-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'"),
    );
    response
}

/// A short-lived token for the chat widget.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WidgetToken {
    pub token: String,
    pub expires_at: chrono::DateTime<Utc>,
    /// What it may do: chat, record an entry, open an entry.
    pub scope: &'static str,
}

/// Mints a widget token for the signed-in parent: chat only, for an hour.
#[utoipa::path(post, path = "/v1/widget-tokens", responses((status = 201, description = "A widget token", body = WidgetToken), crate::openapi::Errors), tag = "web")]
pub(crate) async fn widget_token(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<impl IntoResponse, ApiError> {
    let ttl = chrono::Duration::minutes(WIDGET_TOKEN_MINUTES);
    let token = state.auth.mint_scoped(user.id, ttl, Some(WIDGET_SCOPE));
    Ok((StatusCode::CREATED, axum::Json(WidgetToken { token, expires_at: Utc::now() + ttl, scope: WIDGET_SCOPE })))
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    /// The code from a sign-in link (`…/#signin=CODE`), printed by `dadly token` and `dadly family create`.
    #[schema(min_length = 1, max_length = 4096)]
    code: String,
}

/// A session token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub token: String,
    pub user_id: uuid::Uuid,
    pub family_id: uuid::Uuid,
    pub name: String,
}

/// Exchanges a one-time sign-in link for a session token (once; the link works for 15 minutes).
#[utoipa::path(post, path = "/v1/sign-in", request_body = SignIn, security(()), responses((status = 200, description = "Signed in", body = Session), crate::openapi::Errors), tag = "web")]
pub(crate) async fn sign_in(State(state): State<AppState>, Json(req): Json<SignIn>) -> Result<impl IntoResponse, ApiError> {
    let refused = || ApiError::Unauthorized("this sign-in link is not valid: it may have expired or been used already".into());
    let verified = state.auth.verify(req.code.trim()).map_err(|_| refused())?;
    let (Some(SIGNIN_SCOPE), Some(jti)) = (verified.scope, verified.jti) else { return Err(refused()) };
    let user = state.agent.user(verified.user_id).await.map_err(|_| refused())?;
    if user.role == dadly_agent::domain::Role::Removed || user.tokens_valid_after.is_some_and(|cutoff| verified.issued_at < cutoff) {
        return Err(refused());
    }
    // Once: the link's id is claimed like a channel update.
    if !state.agent.store().claim_update(user.family_id, &format!("signin:{jti}")).await.map_err(|e| ApiError::from(dadly_agent::AgentError::from(e)))? {
        return Err(refused());
    }
    let token = state.auth.mint(user.id, chrono::Duration::days(SESSION_DAYS));
    Ok(axum::Json(Session { token, user_id: user.id, family_id: user.family_id, name: user.name }))
}

/// A one-time sign-in link for a parent (what the CLI prints).
pub fn sign_in_link(auth: &crate::Auth, public_url: &str, user_id: uuid::Uuid) -> String {
    let code = auth.mint_scoped(user_id, chrono::Duration::minutes(15), Some(SIGNIN_SCOPE));
    format!("{}/#signin={code}", public_url.trim_end_matches('/'))
}
