//! The OpenAPI 3.1 document, derived from the handlers' `#[utoipa::path]` annotations and the
//! request and response types (the router and the document are built from the same list, in
//! `http::router`), served at `GET /v1/openapi.json` without a token.

use evidence_protocol::api::ApiError;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// What the document says beyond the routes.
#[derive(OpenApi)]
#[openapi(
    info(title = "evidence-server", description = "Endpoint compliance evidence: enrollment, signed reports, control status."),
    components(schemas(ApiError)),
    modifiers(&BearerScheme),
    tags(
        (name = "agent", description = "Agent calls, authenticated by Ed25519 signatures"),
        (name = "read", description = "Read API: a reader or admin token"),
        (name = "admin", description = "Admin API: an admin token"),
        (name = "log", description = "The evidence log's signed checkpoints and Merkle proofs: a reader token"),
        (name = "operations", description = "Liveness, metrics, this document"),
    )
)]
pub struct Base;
