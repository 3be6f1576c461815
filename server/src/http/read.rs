//! Read API (reader or admin token): hosts, one host, controls, one control, the fleet
//! snapshot (now or `?at=`), one stored report's verbatim bytes, and the metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use evidence_protocol::api::ApiError;
use serde::Deserialize;
use serde_json::Value;

use super::auth::Reader;
use super::error::{ApiErr, Path, Query};
use super::HttpState;
use crate::domain::status::Snapshot;
use crate::service::queries::{ControlPage, HostPage, Hosts};

type Answer<T> = Result<Json<T>, ApiErr>;

/// List hosts with their last report and whether they are stale.
#[utoipa::path(get, path = "/v1/hosts", tag = "read", security(("bearer" = [])),
    responses((status = 200, body = Hosts), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn hosts(State(state): State<Arc<HttpState>>, _: Reader) -> Answer<Hosts> {
    Ok(Json(state.services.hosts().await?))
}

/// One host: latest facts, findings with evidence, control status, keys, history.
#[utoipa::path(get, path = "/v1/hosts/{host_id}", tag = "read", security(("bearer" = [])),
    params(("host_id" = String, Path, description = "the host's id")),
    responses((status = 200, body = HostPage), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn host(
    State(state): State<Arc<HttpState>>,
    _: Reader,
    Path(host_id): Path<String>,
) -> Answer<HostPage> {
    Ok(Json(state.services.host(&host_id).await?))
}

/// ISO/IEC 27002:2022 controls with crosswalks and the checks that evidence them.
#[utoipa::path(get, path = "/v1/controls", tag = "read", security(("bearer" = [])),
    responses((status = 200, body = Object, description = "{frameworks, controls}"), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn controls(State(state): State<Arc<HttpState>>, _: Reader) -> Answer<Value> {
    Ok(Json(state.services.controls()))
}

/// One control: status across the fleet, failing hosts with evidence.
#[utoipa::path(get, path = "/v1/controls/{control_id}", tag = "read", security(("bearer" = [])),
    params(("control_id" = String, Path, description = "an ISO/IEC 27002:2022 control id, as 8.20")),
    responses((status = 200, body = ControlPage), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn control(
    State(state): State<Arc<HttpState>>,
    _: Reader,
    Path(control_id): Path<String>,
) -> Answer<ControlPage> {
    Ok(Json(state.services.control(&control_id).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SnapshotQuery {
    /// RFC 3339 time or `YYYY-MM-DD` (the end of that day, UTC). Default: now.
    pub at: Option<String>,
    /// Most failing hosts listed per control. Default 100.
    pub limit: Option<usize>,
}

/// Fleet snapshot per control (share passing, failing hosts with reason), now or on any past
/// date.
#[utoipa::path(get, path = "/v1/snapshot", tag = "read", security(("bearer" = [])),
    params(SnapshotQuery),
    responses((status = 200, body = Snapshot), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn snapshot(
    State(state): State<Arc<HttpState>>,
    _: Reader,
    Query(q): Query<SnapshotQuery>,
) -> Answer<Snapshot> {
    Ok(Json(
        state.services.snapshot(q.at.as_deref(), q.limit).await?,
    ))
}

/// One stored evidence-log entry's verbatim signed bytes.
#[utoipa::path(get, path = "/v1/reports/{log_index}", tag = "read", security(("bearer" = [])),
    params(("log_index" = u64, Path, description = "the entry's index in the evidence log")),
    responses((status = 200, body = Object, description = "the verbatim entry"), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn report(
    State(state): State<Arc<HttpState>>,
    _: Reader,
    Path(log_index): Path<u64>,
) -> Result<Response, ApiErr> {
    let bytes = state.services.report(log_index).await?;
    Ok(([("content-type", "application/json")], bytes).into_response())
}

/// Prometheus metrics (Prometheus sends the token as `authorization`).
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = String, content_type = "text/plain", description = "Prometheus text format"), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn metrics(State(state): State<Arc<HttpState>>, _: Reader) -> Result<Response, ApiErr> {
    let open = state.limits.open_connections();
    let text = state.services.metrics_text(open).await?;
    Ok(([("content-type", "text/plain; version=0.0.4")], text).into_response())
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = String, content_type = "text/plain", description = "ok")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}
