//! The evidence log as a transparency log (reader token): the latest signed checkpoint, and
//! inclusion and consistency proofs against checkpoints.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use evidence_protocol::api::ApiError;
use serde::Deserialize;

use super::auth::Reader;
use super::error::{ApiErr, Query};
use super::HttpState;
use crate::service::checkpoints::{ConsistencyProof, InclusionProof};

/// The latest signed checkpoint of the evidence log: a C2SP `tlog-checkpoint` (origin, tree
/// size, base64 root hash) in a `signed-note` signed with the server's Ed25519 key.
#[utoipa::path(get, path = "/v1/log/checkpoint", tag = "log", security(("bearer" = [])),
    responses((status = 200, body = String, content_type = "text/plain", description = "the signed note"), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn checkpoint(
    State(state): State<Arc<HttpState>>,
    _: Reader,
) -> Result<Response, ApiErr> {
    let note = state.services.checkpoint().await?;
    Ok(([("content-type", "text/plain; charset=utf-8")], note).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProofQuery {
    /// The entry's log index.
    pub index: u64,
    /// The tree size the proof is for (default: the latest checkpoint's).
    pub size: Option<u64>,
}

/// The inclusion proof of one entry against a tree size.
#[utoipa::path(get, path = "/v1/log/proof", tag = "log", security(("bearer" = [])),
    params(ProofQuery),
    responses((status = 200, body = InclusionProof), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn proof(
    State(state): State<Arc<HttpState>>,
    _: Reader,
    Query(q): Query<ProofQuery>,
) -> Result<Json<InclusionProof>, ApiErr> {
    Ok(Json(state.services.inclusion_proof(q.index, q.size).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size (default: the latest checkpoint's).
    pub to: Option<u64>,
}

/// The consistency proof between two tree sizes.
#[utoipa::path(get, path = "/v1/log/consistency", tag = "log", security(("bearer" = [])),
    params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn consistency(
    State(state): State<Arc<HttpState>>,
    _: Reader,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ApiErr> {
    Ok(Json(state.services.consistency_proof(q.from, q.to).await?))
}
