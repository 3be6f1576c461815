//! The HTTP layer: JSON over HTTPS, versioned under `/v1`. Thin handlers: read the request
//! (body limits in [`body`], roles in [`auth`]), call the services, write the answer; every
//! refusal is a JSON [`error::ApiErr`]. The list of routes is written once, in [`router`],
//! and the OpenAPI document ([`openapi`]) is derived from the same list.

mod admin;
mod agent;
mod auth;
pub mod body;
mod bundle;
pub mod error;
mod log;
pub mod openapi;
mod read;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Json;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Config;
use crate::service::Services;

/// Limits of the transport: open connections and the memory held by request bodies.
pub struct TransportLimits {
    /// One permit per byte of request body being read (`max_inflight_body_bytes`).
    pub body_bytes: Arc<tokio::sync::Semaphore>,
    /// One permit per open connection (`max_connections`).
    pub connections: Arc<tokio::sync::Semaphore>,
    max_connections: usize,
}

impl TransportLimits {
    pub fn new(config: &Config) -> Self {
        Self {
            body_bytes: Arc::new(tokio::sync::Semaphore::new(config.max_inflight_body_bytes)),
            connections: Arc::new(tokio::sync::Semaphore::new(config.max_connections)),
            max_connections: config.max_connections,
        }
    }

    pub fn open_connections(&self) -> u64 {
        (self.max_connections - self.connections.available_permits()) as u64
    }
}

/// What every handler gets.
pub struct HttpState {
    pub services: Arc<Services>,
    pub limits: Arc<TransportLimits>,
}

/// Every route, and the OpenAPI document derived from them.
fn routes() -> OpenApiRouter<Arc<HttpState>> {
    OpenApiRouter::with_openapi(openapi::Base::openapi())
        .routes(routes!(agent::enroll))
        .routes(routes!(agent::submit))
        .routes(routes!(agent::rotate))
        .routes(routes!(read::hosts))
        .routes(routes!(read::host))
        .routes(routes!(read::report))
        .routes(routes!(read::controls))
        .routes(routes!(read::control))
        .routes(routes!(read::snapshot))
        .routes(routes!(admin::get_policy, admin::put_policy))
        .routes(routes!(admin::create_secret, admin::list_secrets))
        .routes(routes!(admin::revoke_secret))
        .routes(routes!(admin::create_token, admin::list_tokens))
        .routes(routes!(admin::revoke_token))
        .routes(routes!(admin::revoke_host))
        .routes(routes!(admin::approve_key))
        .routes(routes!(admin::audit))
        .routes(routes!(admin::verify_log))
        .routes(routes!(bundle::bundle))
        .routes(routes!(log::checkpoint))
        .routes(routes!(log::proof))
        .routes(routes!(log::consistency))
        .routes(routes!(read::metrics))
        .routes(routes!(read::healthz))
}

/// The OpenAPI document of the API.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = routes().into_openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let openapi_path = utoipa::openapi::path::PathItem::new(
        utoipa::openapi::HttpMethod::Get,
        utoipa::openapi::path::OperationBuilder::new()
            .summary(Some("This document"))
            .tag("operations")
            .response(
                "200",
                utoipa::openapi::ResponseBuilder::new()
                    .description("the OpenAPI document")
                    .content(
                        "application/json",
                        utoipa::openapi::content::ContentBuilder::new()
                            .schema(Some(utoipa::openapi::ObjectBuilder::new()))
                            .build(),
                    ),
            ),
    );
    doc.paths
        .paths
        .insert("/v1/openapi.json".into(), openapi_path);
    doc
}

pub fn router(state: Arc<HttpState>) -> axum::Router {
    let (router, _) = routes().split_for_parts();
    let document = Arc::new(document());
    router
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || {
                let d = document.clone();
                async move { Json((*d).clone()) }
            }),
        )
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::no_method)
        // Bodies are read with our own limit so the 413 carries a JSON error.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    /// The router over a fresh store, and an admin token for it.
    async fn app(dir: &std::path::Path) -> (axum::Router, String) {
        let store = crate::store::sqlite::SqliteStore::open(&dir.join("db")).unwrap();
        let token = crate::serve::mint_admin_token(&store, "test", "test")
            .await
            .unwrap();
        let config = Config::default();
        let services = Services::start(
            config.clone(),
            Arc::new(store),
            evidence_protocol::SigningKey::generate().unwrap(),
            Default::default(),
        )
        .await
        .unwrap();
        let app = router(Arc::new(HttpState {
            services,
            limits: Arc::new(TransportLimits::new(&config)),
        }));
        (app, token)
    }

    async fn call(
        app: &axum::Router,
        token: &str,
        method: &str,
        uri: &str,
    ) -> (u16, String, String) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, content_type, String::from_utf8_lossy(&body).into())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_operation_in_the_openapi_document_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let (app, token) = app(dir.path()).await;
        let document = serde_json::to_value(document()).unwrap();
        let mut operations = 0;
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                let uri = path
                    .replace("{host_id}", "h")
                    .replace("{control_id}", "8.1")
                    .replace("{id}", "x")
                    .replace("{log_index}", "0")
                    + match path.as_str() {
                        "/v1/log/proof" => "?index=0",
                        "/v1/log/consistency" => "?from=0",
                        _ => "",
                    };
                let (status, _, body) = call(&app, &token, &method.to_uppercase(), &uri).await;
                assert!(
                    status != 405 && !body.contains("no such endpoint"),
                    "{method} {uri}: {status} {body}"
                );
                operations += 1;
            }
        }
        // The 24 operations of the hand-written list issue 8 replaced, the log's 3 and the
        // evidence bundle.
        assert_eq!(operations, 28);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_method_path_or_query_is_refused_with_the_json_error_body() {
        let dir = tempfile::tempdir().unwrap();
        let (app, token) = app(dir.path()).await;
        for (method, uri, status, code) in [
            ("DELETE", "/v1/snapshot", 405, "method_not_allowed"),
            ("GET", "/v1/nothing", 404, "not_found"),
            ("GET", "/v1/reports/not-a-number", 400, "bad_path"),
            ("GET", "/v1/snapshot?unknown=1", 400, "bad_query"),
        ] {
            let (got, content_type, body) = call(&app, &token, method, uri).await;
            let body: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{method} {uri}: not JSON ({e}): {body}"));
            assert_eq!(content_type, "application/json", "{method} {uri}");
            assert_eq!(
                (got, body["error"].as_str()),
                (status, Some(code)),
                "{method} {uri}"
            );
        }
    }
}
