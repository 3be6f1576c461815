//! Admin API (admin token): enrollment secrets, API tokens, policy, host revocation and key
//! approval, the audit trail, and an end-to-end check of the evidence log (and, deep, of the
//! findings derived from it).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use evidence_protocol::api::ApiError;
use serde::{Deserialize, Serialize};

use super::auth::{Admin, Reader};
use super::body::{json_body, read_json_body};
use super::error::{ApiErr, Path, Query};
use super::HttpState;
use crate::service::admin::{
    CreatedSecret, CreatedToken, LogVerification, NewSecret, NewToken, PolicyChanged,
};
use crate::store::{AuditRecord, SecretRecord, TokenRecord};
use evidence_controls::OrgPolicy;

type Answer<T> = Result<Json<T>, ApiErr>;

/// The enrollment secrets (never their values).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Secrets {
    pub secrets: Vec<SecretRecord>,
}

/// The API tokens (never their values).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Tokens {
    pub tokens: Vec<TokenRecord>,
}

/// The audit trail, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditTrail {
    pub events: Vec<AuditRecord>,
}

/// Which pending key to approve.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveKey {
    pub key_id: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Most records, newest first (default 500, 1 to 10,000).
    pub limit: Option<usize>,
}

/// Create an enrollment secret (expiring, optionally single-use; with `host_id`, it re-keys
/// that one host).
#[utoipa::path(post, path = "/v1/admin/enrollment-secrets", tag = "admin", security(("bearer" = [])),
    request_body = NewSecret,
    responses((status = 201, body = CreatedSecret), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn create_secret(
    State(state): State<Arc<HttpState>>,
    Admin(caller): Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<CreatedSecret>), ApiErr> {
    let req: NewSecret = json_body(&state, &headers, body, "secret request").await?;
    let created = state.services.create_secret(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// List enrollment secrets (never their values).
#[utoipa::path(get, path = "/v1/admin/enrollment-secrets", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Secrets), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn list_secrets(State(state): State<Arc<HttpState>>, _: Admin) -> Answer<Secrets> {
    Ok(Json(Secrets {
        secrets: state.services.secrets().await?,
    }))
}

/// Revoke an enrollment secret.
#[utoipa::path(delete, path = "/v1/admin/enrollment-secrets/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "the secret's id")),
    responses((status = 204, description = "revoked"), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn revoke_secret(
    State(state): State<Arc<HttpState>>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiErr> {
    state.services.revoke_secret(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create an API token (role `admin` or `reader`).
#[utoipa::path(post, path = "/v1/admin/tokens", tag = "admin", security(("bearer" = [])),
    request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn create_token(
    State(state): State<Arc<HttpState>>,
    Admin(caller): Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<CreatedToken>), ApiErr> {
    let req: NewToken = json_body(&state, &headers, body, "token request").await?;
    let created = state.services.create_token(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// List API tokens (never their values).
#[utoipa::path(get, path = "/v1/admin/tokens", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Tokens), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn list_tokens(State(state): State<Arc<HttpState>>, _: Admin) -> Answer<Tokens> {
    Ok(Json(Tokens {
        tokens: state.services.tokens().await?,
    }))
}

/// Revoke an API token (never the last active admin token).
#[utoipa::path(delete, path = "/v1/admin/tokens/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "the token's id")),
    responses((status = 204, description = "revoked"), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn revoke_token(
    State(state): State<Arc<HttpState>>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiErr> {
    state.services.revoke_token(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The policy and Statement of Applicability in force.
#[utoipa::path(get, path = "/v1/admin/policy", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Object, description = "the policy"), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn get_policy(State(state): State<Arc<HttpState>>, _: Reader) -> Answer<OrgPolicy> {
    Ok(Json((*state.services.policy()).clone()))
}

/// Replace the policy; every host's latest stored facts are evaluated again under it.
#[utoipa::path(put, path = "/v1/admin/policy", tag = "admin", security(("bearer" = [])),
    request_body(content = Object, content_type = "application/json", description = "the policy"),
    responses((status = 200, body = PolicyChanged), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn put_policy(
    State(state): State<Arc<HttpState>>,
    Admin(caller): Admin,
    headers: HeaderMap,
    body: Body,
) -> Answer<PolicyChanged> {
    let bytes = read_json_body(&state, &headers, body).await?;
    Ok(Json(state.services.put_policy(&caller, &bytes).await?))
}

/// Revoke a host: its reports and enrollments are refused from now on.
#[utoipa::path(post, path = "/v1/admin/hosts/{host_id}/revoke", tag = "admin", security(("bearer" = [])),
    params(("host_id" = String, Path, description = "the host's id")),
    responses((status = 204, description = "revoked"), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn revoke_host(
    State(state): State<Arc<HttpState>>,
    Admin(caller): Admin,
    Path(host_id): Path<String>,
) -> Result<StatusCode, ApiErr> {
    state.services.revoke_host(&caller, &host_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Approve a pending key of a known host (its active key is retired).
#[utoipa::path(post, path = "/v1/admin/hosts/{host_id}/approve-key", tag = "admin", security(("bearer" = [])),
    params(("host_id" = String, Path, description = "the host's id")),
    request_body = ApproveKey,
    responses((status = 204, description = "approved"), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn approve_key(
    State(state): State<Arc<HttpState>>,
    Admin(caller): Admin,
    Path(host_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiErr> {
    let req: ApproveKey = json_body(&state, &headers, body, "approval").await?;
    state
        .services
        .approve_key(&caller, &host_id, &req.key_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// Also recompute every host's findings, control status and last transitions from its
    /// latest signed full report under the policy in force, and name every difference from the
    /// stored ones (default false).
    pub deep: Option<bool>,
}

/// Verify the evidence log's hash chain end to end (with `deep=true`, also the findings and
/// control status derived from it). `ok` is false when anything breaks or differs.
#[utoipa::path(get, path = "/v1/admin/log/verify", tag = "admin", security(("bearer" = [])),
    params(VerifyQuery),
    responses((status = 200, body = LogVerification), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn verify_log(
    State(state): State<Arc<HttpState>>,
    _: Admin,
    Query(q): Query<VerifyQuery>,
) -> Answer<LogVerification> {
    Ok(Json(
        state.services.verify_log(q.deep.unwrap_or(false)).await?,
    ))
}

/// The audit trail of admin and policy changes, newest first.
#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin", security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, body = AuditTrail), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn audit(
    State(state): State<Arc<HttpState>>,
    _: Admin,
    Query(q): Query<AuditQuery>,
) -> Answer<AuditTrail> {
    Ok(Json(AuditTrail {
        events: state.services.audit(q.limit).await?,
    }))
}
