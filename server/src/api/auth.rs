//! Bearer-token checks for the read and admin API: 401 without a valid token, 403 when the
//! token's role is too low (a reader on an admin call). Every failure is an audit event.

use axum::http::{HeaderMap, StatusCode};

use super::error::ApiErr;
use crate::auth::Role;
use crate::state::AppState;

/// The authenticated caller: its token id (the actor in the audit trail).
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
}

pub fn require(state: &AppState, headers: &HeaderMap, needed: Role) -> Result<Caller, ApiErr> {
    let refuse = |status, code: &'static str, message: &str| {
        crate::audit::security(state, "authentication", code, "-", message);
        ApiErr::new(status, code, message)
    };
    let Some(value) = headers.get("authorization") else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "an Authorization: Bearer <token> header is required",
        ));
    };
    let Some(token) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "the Authorization header must be Bearer <token>",
        ));
    };
    let token = token.trim();
    let mut checked = state.tokens.check(token);
    if checked.is_none() && state.tokens.unknown_id(token) && state.may_reload_tokens() {
        // A token minted by `evidence-server admin-token` while this server runs.
        let _ = state.reload_tokens();
        checked = state.tokens.check(token);
    }
    let Some((token_id, role)) = checked else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "the token is not valid or was revoked",
        ));
    };
    if role < needed {
        crate::audit::security(
            state,
            "authentication",
            "wrong_role",
            &token_id,
            "a reader token on an admin call",
        );
        return Err(ApiErr::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this call needs an admin token",
        ));
    }
    Ok(Caller { token_id })
}
