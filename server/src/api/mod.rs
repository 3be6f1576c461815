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
        .route("/v1/keys/rotate", post(agent::rotate))
        .route("/v1/admin/audit", get(admin::audit))
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

/// Prometheus metrics; like every read, needs a reader token (Prometheus: `authorization`).
async fn metrics(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> Result<([(&'static str, &'static str); 1], String), error::ApiErr> {
    auth::require(&state, &headers, crate::auth::Role::Reader)?;
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
        state.metrics.render(
            &counts,
            stale,
            (state.config.max_connections - state.limits.connections.available_permits()) as u64,
        ),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::RwLock;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::status::{CheckIndex, Fleet};

    fn state(dir: &std::path::Path) -> Arc<AppState> {
        let store = crate::store::sqlite::SqliteStore::open(&dir.join("db")).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        Arc::new(AppState {
            limits: crate::state::Limits::new(&Default::default()),
            config: Default::default(),
            store: Arc::new(store),
            server_key: evidence_protocol::SigningKey::generate().unwrap(),
            keys: RwLock::new(Default::default()),
            tokens: Default::default(),
            policy: RwLock::new((0, Default::default())),
            fleet: Fleet::default(),
            index: CheckIndex::new(),
            writer: tx,
            metrics: Default::default(),
        })
    }

    #[tokio::test]
    async fn every_route_in_the_openapi_document_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let app = router(state(dir.path()));
        for (method, path, _, _) in openapi::ROUTES {
            let uri = path
                .replace("{host_id}", "h")
                .replace("{control_id}", "8.1")
                .replace("{id}", "x")
                .replace("{log_index}", "0");
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let resp = app.clone().oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            let no_route =
                status == 405 || String::from_utf8_lossy(&body).contains("no such endpoint");
            assert!(
                !no_route,
                "{method} {uri}: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        let document = openapi::document();
        assert_eq!(
            document["paths"].as_object().unwrap().len(),
            openapi::ROUTES
                .iter()
                .map(|r| r.1)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        );
    }
}
