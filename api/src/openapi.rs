//! `GET /openapi.json`: an OpenAPI 3.1 document of every `/v1` route,
//! generated from the handlers' own request and response types (utoipa).

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use crate::routes;

/// Every error: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `payload_too_large`, `unsupported_media_type`, `invalid`,
    /// `rate_limited`, `unavailable` or `internal`.
    pub code: String,
    /// What was wrong, for a person (5xx say nothing about internals).
    pub message: String,
}

/// The errors any `/v1` route may answer with.
#[derive(IntoResponses)]
#[allow(dead_code)] // a description for the document, never built
pub enum Errors {
    #[response(status = 400, description = "Malformed request (path, query or JSON)")]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "Missing, invalid, expired or revoked token")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "Only the family's owner may do this")]
    Forbidden(ErrorBody),
    #[response(status = 404, description = "No such thing in this family")]
    NotFound(ErrorBody),
    #[response(status = 409, description = "Conflict (e.g. the same Idempotency-Key is still being handled)")]
    Conflict(ErrorBody),
    #[response(status = 413, description = "Body too large")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "Not JSON")]
    Unsupported(ErrorBody),
    #[response(status = 422, description = "Well-formed but invalid")]
    Invalid(ErrorBody),
    #[response(status = 429, description = "Too many messages; see Retry-After")]
    RateLimited(ErrorBody),
    #[response(status = 500, description = "Something went wrong on our side")]
    Internal(ErrorBody),
    #[response(status = 503, description = "A backend is unavailable; retry shortly")]
    Unavailable(ErrorBody),
    #[response(status = 504, description = "The request took too long")]
    Timeout(ErrorBody),
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Dadly", description = "A family journal you talk to. Every route takes `Authorization: Bearer <token>`; the family comes from the token."),
    paths(
        routes::chat::chat,
        routes::chat::chat_stream,
        routes::entries::create,
        routes::entries::list,
        routes::entries::read,
        routes::entries::edit,
        routes::entries::remove,
        routes::members::list,
        routes::members::create,
        routes::members::link_code,
        routes::health::status,
        routes::health::usage,
        routes::health::export,
        routes::capsules::create,
        routes::capsules::list,
        routes::capsules::remove,
        routes::parents::invite,
        routes::parents::redeem,
        routes::parents::list,
        routes::parents::remove,
        routes::members::update,
        routes::members::merge,
        routes::erasure::erase_member,
        routes::erasure::erase_family,
        routes::erasure::erasures,
        routes::prompts::show,
        routes::prompts::set,
        routes::web::widget_token,
        routes::web::sign_in,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// The document, as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
