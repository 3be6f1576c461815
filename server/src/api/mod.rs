//! The HTTP API: routes, liveness, metrics. JSON over HTTPS, versioned under `/v1`.

mod admin;
mod agent;
mod auth;
pub mod error;
pub mod openapi;
mod read;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use crate::state::AppState;

pub use admin::reevaluate;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/enroll", post(agent::enroll))
        .route("/v1/reports", post(agent::submit))
        .route("/v1/hosts", get(read::hosts))
        .route("/v1/hosts/{host_id}", get(read::host))
        .route("/v1/reports/{log_index}", get(read::report))
        .route("/v1/controls", get(read::controls))
        .route("/v1/controls/{control_id}", get(read::control))
        .route("/v1/snapshot", get(read::snapshot))
        .route(
            "/v1/admin/policy",
            get(admin::get_policy).put(admin::put_policy),
        )
        .route(
            "/v1/admin/enrollment-secrets",
            post(admin::create_secret).get(admin::list_secrets),
        )
        .route(
            "/v1/admin/enrollment-secrets/{id}",
            delete(admin::revoke_secret),
        )
        .route(
            "/v1/admin/tokens",
            post(admin::create_token).get(admin::list_tokens),
        )
        .route("/v1/admin/tokens/{id}", delete(admin::revoke_token))
        .route("/v1/admin/hosts/{host_id}/revoke", post(admin::revoke_host))
        .route(
            "/v1/admin/hosts/{host_id}/approve-key",
            post(admin::approve_key),
        )
        .route("/v1/admin/log/verify", get(admin::verify_log))
        .route(
            "/v1/openapi.json",
            get(|| async { Json(openapi::document()) }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .fallback(|| async { error::ApiErr::not_found("no such endpoint") })
        // Bodies are read with our own limit so the 413 carries a JSON error.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

async fn metrics(
    State(state): State<Arc<AppState>>,
) -> Result<([(&'static str, &'static str); 1], String), error::ApiErr> {
    let s = state.clone();
    let counts = tokio::task::spawn_blocking(move || s.store.counts())
        .await
        .map_err(error::ApiErr::internal)??;
    let now = crate::time::now_us();
    let stale_after = state.config.stale_after_us();
    let stale = state
        .fleet
        .hosts
        .read()
        .expect("fleet lock")
        .values()
        .filter(|h| !h.revoked && h.last_seen.is_none_or(|s| now - s > stale_after))
        .count() as u64;
    Ok((
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(&counts, stale),
    ))
}
