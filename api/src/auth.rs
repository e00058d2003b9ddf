//! Bearer-token auth: HS256 JWTs (our own, or Supabase's with the same secret).
//! `sub` names the user; the family always comes from the database.
//!
//! What a token must be: signed with the secret; for the pinned audience
//! (`authenticated`, as Supabase issues) and, when configured, issuer; inside
//! `nbf`..`exp` with at most five seconds of clock leeway; issued (`iat`) for
//! no longer than the configured maximum lifetime; and issued after the
//! user's revocation cut-off (`dadly token --revoke USER`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use dadly_agent::AgentError;
use dadly_agent::domain::User;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{AppState, error::ApiError};

/// The audience Supabase puts in its access tokens; ours carry it too.
pub const AUDIENCE: &str = "authenticated";
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    // Optional here so a missing one is reported by name (the validation requires them).
    #[serde(default)]
    iat: Option<i64>,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    /// A narrower token: `widget` (chat only) or `signin` (exchanged once at `/v1/sign-in`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    /// A one-time token's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
}

/// What a widget token may do: chat (streamed or not), record an entry (a
/// voice note, a photo) and open an entry a citation points at.
const WIDGET_ROUTES: &[(&str, &str)] = &[("POST", "/v1/chat"), ("POST", "/v1/chat/stream"), ("POST", "/v1/entries"), ("GET", "/v1/entries/{id}")];

/// A widget token's scope.
pub const WIDGET_SCOPE: &str = "widget";
/// A sign-in link's scope.
pub const SIGNIN_SCOPE: &str = "signin";

/// `aud` may be one string or a list (RFC 7519).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// What the server accepts beyond a valid signature.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// `iss` tokens must carry (and ours are minted with), when set.
    pub issuer: Option<String>,
    /// The longest `exp - iat` accepted, and minted.
    pub max_lifetime: chrono::Duration,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self { issuer: None, max_lifetime: chrono::Duration::days(90) }
    }
}

/// A verified token: whom it names and when it was issued.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub user_id: Uuid,
    pub issued_at: DateTime<Utc>,
    pub scope: Option<&'static str>,
    /// A one-time token's id (sign-in links).
    pub jti: Option<Uuid>,
}

pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    policy: TokenPolicy,
}

impl Auth {
    pub fn new(secret: &[u8]) -> Self {
        Self::with_policy(secret, TokenPolicy::default())
    }

    pub fn with_policy(secret: &[u8], policy: TokenPolicy) -> Self {
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), policy }
    }

    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// A token for `user_id`, valid for `ttl` (at most the policy's maximum lifetime).
    pub fn mint(&self, user_id: Uuid, ttl: chrono::Duration) -> String {
        self.mint_scoped(user_id, ttl, None)
    }

    /// A narrower token (`WIDGET_SCOPE`, `SIGNIN_SCOPE`); sign-in tokens carry a one-time id.
    pub fn mint_scoped(&self, user_id: Uuid, ttl: chrono::Duration, scope: Option<&str>) -> String {
        let now = Utc::now().timestamp();
        let ttl = ttl.min(self.policy.max_lifetime);
        let claims = Claims {
            sub: user_id.to_string(),
            iat: Some(now),
            exp: now + ttl.num_seconds(),
            nbf: None,
            aud: Some(Audience::One(AUDIENCE.into())),
            iss: self.policy.issuer.clone(),
            scope: scope.map(str::to_string),
            jti: (scope == Some(SIGNIN_SCOPE)).then(|| Uuid::now_v7().to_string()),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).expect("HS256 encoding of plain claims cannot fail")
    }

    /// The user a valid token names, and when it was issued.
    pub fn verify(&self, token: &str) -> Result<Verified, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iat", "aud"]);
        if let Some(iss) = &self.policy.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        let data = decode::<Claims>(token, &self.decoding, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            ApiError::Unauthorized(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".into(),
                ErrorKind::ImmatureSignature => "the token is not valid yet".into(),
                ErrorKind::InvalidSignature => "the token's signature is not valid".into(),
                ErrorKind::InvalidAudience => format!("the token is not for this service (audience must be `{AUDIENCE}`)"),
                ErrorKind::InvalidIssuer => "the token's issuer is not accepted".into(),
                ErrorKind::MissingRequiredClaim(c) => format!("the token lacks the `{c}` claim"),
                _ => "the token is not valid".into(),
            })
        })?;
        let claims = data.claims;
        let iat = claims.iat.ok_or_else(|| ApiError::Unauthorized("the token lacks the `iat` claim".into()))?;
        if claims.aud.is_none() {
            return Err(ApiError::Unauthorized("the token lacks the `aud` claim".into()));
        }
        let now = Utc::now().timestamp();
        if iat > now + LEEWAY_SECS as i64 {
            return Err(ApiError::Unauthorized("the token is issued in the future".into()));
        }
        if claims.exp.saturating_sub(iat) > self.policy.max_lifetime.num_seconds() {
            return Err(ApiError::Unauthorized("the token's lifetime is longer than this server accepts".into()));
        }
        let user_id = Uuid::parse_str(&claims.sub).map_err(|_| ApiError::Unauthorized("the token's subject is not a user id".into()))?;
        let issued_at = DateTime::from_timestamp(iat, 0).ok_or_else(|| ApiError::Unauthorized("the token is not valid".into()))?;
        let scope = match claims.scope.as_deref() {
            None => None,
            Some(WIDGET_SCOPE) => Some(WIDGET_SCOPE),
            Some(SIGNIN_SCOPE) => Some(SIGNIN_SCOPE),
            // Supabase puts other scopes in its tokens' custom claims rarely; ours are the only narrowing ones.
            Some(_) => return Err(ApiError::Unauthorized("the token's scope is not one this service issues".into())),
        };
        let jti = claims.jti.as_deref().and_then(|j| Uuid::parse_str(j).ok());
        Ok(Verified { user_id, issued_at, scope, jti })
    }
}

/// The authenticated parent, with their family (from the database).
pub struct AuthUser(pub User);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing `Authorization: Bearer <token>` header".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into()))?;
        let verified = state.auth.verify(token)?;
        match verified.scope {
            None => {}
            Some(WIDGET_SCOPE) => {
                let route = parts.extensions.get::<axum::extract::MatchedPath>().map(|p| p.as_str()).unwrap_or("");
                if !WIDGET_ROUTES.iter().any(|(m, r)| parts.method.as_str() == *m && route == *r) {
                    return Err(ApiError::Forbidden("a widget token can only chat, record and open entries; sign in to the app for the rest".into()));
                }
            }
            Some(_) => return Err(ApiError::Unauthorized("a sign-in link is exchanged at /v1/sign-in, not used as a token".into())),
        }
        let user = match state.agent.user(verified.user_id).await {
            Ok(user) => user,
            Err(AgentError::NotFound) => return Err(ApiError::Unauthorized("the token's user does not exist".into())),
            Err(e) => return Err(e.into()),
        };
        if user.role == dadly_agent::domain::Role::Removed {
            return Err(ApiError::Unauthorized("this parent was removed from the family".into()));
        }
        if user.tokens_valid_after.is_some_and(|cutoff| verified.issued_at < cutoff) {
            return Err(ApiError::Unauthorized("the token was revoked; sign in again".into()));
        }
        Ok(AuthUser(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(secret: &[u8], claims: serde_json::Value) -> String {
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    #[test]
    fn minted_tokens_verify_and_others_do_not() {
        let auth = Auth::new(b"secret-one");
        let user = Uuid::now_v7();
        assert_eq!(auth.verify(&auth.mint(user, chrono::Duration::hours(1))).unwrap().user_id, user);
        let other = Auth::new(b"secret-two");
        assert!(matches!(other.verify(&auth.mint(user, chrono::Duration::hours(1))), Err(ApiError::Unauthorized(_))));
        let expired = auth.mint(user, chrono::Duration::hours(-2));
        assert!(matches!(auth.verify(&expired), Err(ApiError::Unauthorized(m)) if m.contains("expired")));
        assert!(auth.verify("not.a.jwt").is_err());
    }

    #[test]
    fn audience_issuer_nbf_leeway_and_lifetime_are_enforced() {
        let secret = b"secret-secret-secret";
        let auth = Auth::with_policy(secret, TokenPolicy { issuer: Some("https://proj.supabase.co/auth/v1".into()), max_lifetime: chrono::Duration::days(7) });
        let user = Uuid::now_v7().to_string();
        let now = Utc::now().timestamp();
        let iss = "https://proj.supabase.co/auth/v1";
        let ok = |c: serde_json::Value| auth.verify(&token(secret, c));
        let refused = |c: serde_json::Value| match auth.verify(&token(secret, c)) {
            Err(ApiError::Unauthorized(m)) => m,
            other => panic!("accepted: {other:?}"),
        };
        // What Supabase issues: accepted, with `aud` as a string or a list.
        assert!(ok(serde_json::json!({"sub": user, "iat": now, "exp": now + 3600, "aud": "authenticated", "iss": iss, "role": "authenticated"})).is_ok());
        assert!(ok(serde_json::json!({"sub": user, "iat": now, "exp": now + 3600, "aud": ["authenticated", "x"], "iss": iss})).is_ok());
        assert!(refused(serde_json::json!({"sub": user, "iat": now, "exp": now + 3600, "aud": "anon", "iss": iss})).contains("audience"));
        assert!(refused(serde_json::json!({"sub": user, "iat": now, "exp": now + 3600, "iss": iss})).contains("aud"));
        assert!(refused(serde_json::json!({"sub": user, "iat": now, "exp": now + 3600, "aud": "authenticated", "iss": "https://evil"})).contains("issuer"));
        assert!(refused(serde_json::json!({"sub": user, "iat": now, "exp": now + 3600, "aud": "authenticated"})).contains("iss"));
        // nbf is honoured, with five seconds of leeway and no more.
        assert!(refused(serde_json::json!({"sub": user, "iat": now, "nbf": now + 60, "exp": now + 3600, "aud": "authenticated", "iss": iss})).contains("not valid yet"));
        assert!(ok(serde_json::json!({"sub": user, "iat": now, "nbf": now + 3, "exp": now + 3600, "aud": "authenticated", "iss": iss})).is_ok());
        assert!(ok(serde_json::json!({"sub": user, "iat": now - 100, "exp": now - 3, "aud": "authenticated", "iss": iss})).is_ok(), "within leeway");
        assert!(refused(serde_json::json!({"sub": user, "iat": now - 100, "exp": now - 30, "aud": "authenticated", "iss": iss})).contains("expired"));
        // Lifetimes beyond the maximum, and tokens issued in the future, are refused.
        assert!(refused(serde_json::json!({"sub": user, "iat": now, "exp": now + 30 * 86_400, "aud": "authenticated", "iss": iss})).contains("lifetime"));
        assert!(refused(serde_json::json!({"sub": user, "iat": now + 600, "exp": now + 3600, "aud": "authenticated", "iss": iss})).contains("future"));
        assert!(refused(serde_json::json!({"sub": user, "exp": now + 3600, "aud": "authenticated", "iss": iss})).contains("iat"));
        // Our own tokens carry the issuer and are capped at the maximum lifetime.
        let minted = auth.mint(Uuid::now_v7(), chrono::Duration::days(365));
        assert!(auth.verify(&minted).is_ok());
    }
}
