//! Bearer-token auth: HS256 JWTs (our own, or Supabase's with the same secret).
//! `sub` names the user; the family always comes from the database.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use dadly_agent::AgentError;
use dadly_agent::domain::User;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{AppState, error::ApiError};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
}

pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Auth {
    pub fn new(secret: &[u8]) -> Self {
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) }
    }

    /// A token for `user_id`, valid for `ttl`.
    pub fn mint(&self, user_id: Uuid, ttl: chrono::Duration) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims { sub: user_id.to_string(), iat: now, exp: now + ttl.num_seconds(), aud: Some("authenticated".into()) };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).expect("HS256 encoding of plain claims cannot fail")
    }

    /// The user id a valid token names.
    pub fn verify(&self, token: &str) -> Result<Uuid, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = decode::<Claims>(token, &self.decoding, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            ApiError::Unauthorized(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".into(),
                ErrorKind::InvalidSignature => "the token's signature is not valid".into(),
                _ => "the token is not valid".into(),
            })
        })?;
        Uuid::parse_str(&data.claims.sub).map_err(|_| ApiError::Unauthorized("the token's subject is not a user id".into()))
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
        let user_id = state.auth.verify(token)?;
        match state.agent.user(user_id).await {
            Ok(user) => Ok(AuthUser(user)),
            Err(AgentError::NotFound) => Err(ApiError::Unauthorized("the token's user does not exist".into())),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_and_others_do_not() {
        let auth = Auth::new(b"secret-one");
        let user = Uuid::now_v7();
        assert_eq!(auth.verify(&auth.mint(user, chrono::Duration::hours(1))).unwrap(), user);
        let other = Auth::new(b"secret-two");
        assert!(matches!(other.verify(&auth.mint(user, chrono::Duration::hours(1))), Err(ApiError::Unauthorized(_))));
        let expired = auth.mint(user, chrono::Duration::hours(-2));
        assert!(matches!(auth.verify(&expired), Err(ApiError::Unauthorized(m)) if m.contains("expired")));
        assert!(auth.verify("not.a.jwt").is_err());
    }
}
