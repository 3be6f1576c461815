//! Role extractors for the read and admin API: a handler that takes [`Reader`] or [`Admin`]
//! runs only for a valid bearer token of that role (401 without one, 403 for a reader on an
//! admin call). The check itself is `Services::authenticate`; every refusal is audited there.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiErr;
use super::HttpState;
use crate::auth::Role;
use crate::service::Caller;

/// The bearer token of `Authorization`: `None` without the header, `Some("")` when it is not
/// `Bearer <token>`.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get("authorization")?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or(""),
    )
}

async fn caller(parts: &Parts, state: &HttpState, role: Role) -> Result<Caller, ApiErr> {
    Ok(state.services.authenticate(bearer(parts), role).await?)
}

/// A caller with a reader (or admin) token.
pub struct Reader(#[allow(dead_code)] pub Caller);

/// A caller with an admin token.
pub struct Admin(pub Caller);

impl FromRequestParts<Arc<HttpState>> for Reader {
    type Rejection = ApiErr;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<HttpState>) -> Result<Self, ApiErr> {
        caller(parts, state, Role::Reader).await.map(Reader)
    }
}

impl FromRequestParts<Arc<HttpState>> for Admin {
    type Rejection = ApiErr;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<HttpState>) -> Result<Self, ApiErr> {
        caller(parts, state, Role::Admin).await.map(Admin)
    }
}
