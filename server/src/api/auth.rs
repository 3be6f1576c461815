//! Bearer-token checks for the read and admin API: 401 without a valid token, 403 when the
//! token's role is too low (a reader on an admin call).

use axum::http::{HeaderMap, StatusCode};

use super::error::ApiErr;
use crate::auth::Role;
use crate::state::AppState;

pub fn require(state: &AppState, headers: &HeaderMap, needed: Role) -> Result<Role, ApiErr> {
    let value = headers.get("authorization").ok_or_else(|| {
        ApiErr::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "an Authorization: Bearer <token> header is required",
        )
    })?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiErr::new(
                StatusCode::UNAUTHORIZED,
                "bad_token",
                "the Authorization header must be Bearer <token>",
            )
        })?;
    let role = state.tokens.role(token.trim()).ok_or_else(|| {
        ApiErr::new(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "the token is not valid or was revoked",
        )
    })?;
    if role < needed {
        return Err(ApiErr::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this call needs an admin token",
        ));
    }
    Ok(role)
}
