//! Agent calls, authenticated by signatures (no bearer token): enrollment, reports, key
//! rotation. The handlers read the body and the signature headers and call the services.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use evidence_protocol::api::{
    ApiError, EnrollRequest, EnrollResponse, RotateKeyRequest, KEY_ID_HEADER,
    NEW_KEY_SIGNATURE_HEADER, SIGNATURE_HEADER, WITNESSED_HEADER,
};
use evidence_protocol::{signing, Receipt, Report};

use super::body::read_json_body;
use super::error::ApiErr;
use super::HttpState;
use crate::service::enrollment::Signature;
use crate::service::ErrorCode;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiErr> {
    headers
        .get(name)
        .ok_or_else(|| {
            ApiErr::new(
                ErrorCode::MissingSignature,
                format!("header {name} is required"),
            )
        })?
        .to_str()
        .map_err(|_| {
            ApiErr::new(
                ErrorCode::BadEncoding,
                format!("header {name} is not ASCII"),
            )
        })
}

fn signature_header(headers: &HeaderMap, name: &str) -> Result<Signature, ApiErr> {
    signing::decode_signature(header(headers, name)?)
        .map_err(|e| ApiErr::new(ErrorCode::BadEncoding, format!("{name}: {e}")))
}

/// Enroll a host: enrollment secret, public key and identity, signed with the new key.
#[utoipa::path(post, path = "/v1/enroll", tag = "agent",
    params(("X-Evidence-Signature" = String, Header, description = "base64 Ed25519 signature over the exact body, by the key in it")),
    request_body(content = EnrollRequest, content_type = "application/json"),
    responses((status = 200, body = EnrollResponse), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn enroll(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EnrollResponse>, ApiErr> {
    let enroll = async {
        let bytes = read_json_body(&state, &headers, body).await?;
        let signature = signature_header(&headers, SIGNATURE_HEADER)?;
        Ok::<_, ApiErr>(state.services.enroll(&bytes, &signature).await?)
    };
    Ok(Json(audited(&state, "enrollment", enroll.await)?))
}

/// Every refused agent call is a security event.
fn audited<T>(
    state: &HttpState,
    event: &'static str,
    result: Result<T, ApiErr>,
) -> Result<T, ApiErr> {
    if let Err(ApiErr(e)) = &result {
        state.services.agent_call_refused(event, e);
    }
    result
}

/// Submit a signed report (the body is the exact signed bytes); answers a signed receipt after
/// the commit.
#[utoipa::path(post, path = "/v1/reports", tag = "agent",
    params(
        ("X-Evidence-Signature" = String, Header, description = "base64 Ed25519 signature over the exact body"),
        ("X-Evidence-Key-Id" = String, Header, description = "the enrolled key's id"),
        ("X-Evidence-Witnessed" = Option<u64>, Header, description = "size of the last checkpoint the agent verified: the receipt's consistency proof starts there")),
    request_body(content = Report, content_type = "application/json", description = "the exact signed bytes"),
    responses((status = 200, body = Receipt), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn submit(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiErr> {
    let started = std::time::Instant::now();
    let submit = async {
        let bytes = read_json_body(&state, &headers, body).await?;
        let key_id = header(&headers, KEY_ID_HEADER)?;
        let signature = signature_header(&headers, SIGNATURE_HEADER)?;
        let witnessed = match headers.get(WITNESSED_HEADER) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| {
                        ApiErr::new(
                            ErrorCode::InvalidField,
                            format!("header {WITNESSED_HEADER} must be a tree size (an integer)"),
                        )
                    })?,
            ),
        };
        Ok::<_, ApiErr>(
            state
                .services
                .submit(bytes.to_vec(), key_id, &signature, witnessed, started)
                .await?,
        )
    };
    match submit.await {
        Ok(receipt) => Ok(Json(receipt)),
        Err(ApiErr(e)) => {
            state.services.report_refused(&e);
            Err(ApiErr(e))
        }
    }
}

/// Rotate a host's key: signed by the current key and by the new key.
#[utoipa::path(post, path = "/v1/keys/rotate", tag = "agent",
    params(
        ("X-Evidence-Signature" = String, Header, description = "signature by the current key"),
        ("X-Evidence-Key-Id" = String, Header, description = "the current key's id"),
        ("X-Evidence-New-Key-Signature" = String, Header, description = "signature by the new key")),
    request_body(content = RotateKeyRequest, content_type = "application/json"),
    responses((status = 200, body = EnrollResponse), (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn rotate(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EnrollResponse>, ApiErr> {
    let rotate = async {
        let bytes = read_json_body(&state, &headers, body).await?;
        let key_id = header(&headers, KEY_ID_HEADER)?;
        let signature = signature_header(&headers, SIGNATURE_HEADER)?;
        let new_signature = signature_header(&headers, NEW_KEY_SIGNATURE_HEADER)?;
        Ok::<_, ApiErr>(
            state
                .services
                .rotate(&bytes, key_id, &signature, &new_signature)
                .await?,
        )
    };
    Ok(Json(audited(&state, "key_rotation", rotate.await)?))
}
