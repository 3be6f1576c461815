//! Agent calls, authenticated by signatures (no bearer token): `POST /v1/enroll` and
//! `POST /v1/reports`. The report path verifies the raw body with the enrolled key BEFORE
//! parsing it, then applies the schema, identity, clock-skew, replay and chain rules, and hands
//! the report to the group-commit writer; the signed receipt is sent after the commit.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use evidence_protocol::api::{
    EnrollRequest, EnrollResponse, CONTENT_TYPE_JSON, KEY_ID_HEADER, SIGNATURE_HEADER,
};
use evidence_protocol::signing;
use evidence_protocol::{Digest, Receipt, Report, ReportKind, SignedReceipt};

use super::error::{json_error, ApiErr};
use crate::state::AppState;
use crate::store::{
    AppendContent, AppendItem, AppendRefusal, EnrollAttempt, EnrollRefusal, KeyRecord,
};

/// Longest accepted identity / version string.
const MAX_TEXT: usize = 256;

/// Reads the body up to the configured limit (413 beyond) after checking the content type (415).
pub async fn read_json_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, ApiErr> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case(CONTENT_TYPE_JSON) {
        return Err(ApiErr::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "content type must be {CONTENT_TYPE_JSON}, got {:?}",
                ct.chars().take(100).collect::<String>()
            ),
        ));
    }
    let limit = state.config.max_body_bytes;
    let too_large = || {
        ApiErr::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    };
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit.saturating_mul(DRAIN_FACTOR)) {
        // Far too large: refuse without reading; the client may see the connection close.
        return Err(too_large());
    }
    read_bounded(body, limit, declared.unwrap_or(0))
        .await
        .ok_or_else(too_large)
}

/// A body up to this many times the limit is read and discarded before the 413 is sent, so a
/// client that is still sending reads the answer instead of a reset connection.
const DRAIN_FACTOR: usize = 4;

/// The body's bytes when it holds at most `limit` bytes; otherwise `None`, after discarding up
/// to `limit * DRAIN_FACTOR` bytes of it (never keeping more than `limit` in memory).
async fn read_bounded(body: Body, limit: usize, size_hint: usize) -> Option<Bytes> {
    use axum::body::HttpBody;
    let mut body = std::pin::pin!(body);
    let mut kept = Vec::with_capacity(size_hint.min(limit));
    let mut seen = 0usize;
    loop {
        let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await;
        match frame {
            None => break,
            Some(Err(_)) => return None,
            Some(Ok(frame)) => {
                let Some(data) = frame.data_ref() else {
                    continue;
                };
                seen = seen.saturating_add(data.len());
                if seen <= limit {
                    kept.extend_from_slice(data);
                } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
                    return None;
                }
            }
        }
    }
    (seen <= limit).then(|| Bytes::from(kept))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiErr> {
    headers
        .get(name)
        .ok_or_else(|| {
            ApiErr::new(
                StatusCode::UNAUTHORIZED,
                "missing_signature",
                format!("header {name} is required"),
            )
        })?
        .to_str()
        .map_err(|_| ApiErr::bad_request("bad_encoding", format!("header {name} is not ASCII")))
}

fn check_text(field: &str, value: &str) -> Result<(), ApiErr> {
    if value.is_empty() || value.len() > MAX_TEXT || value.chars().any(char::is_control) {
        return Err(ApiErr::unprocessable(
            "invalid_field",
            format!("{field} must be 1 to {MAX_TEXT} bytes without control characters"),
        ));
    }
    Ok(())
}

pub async fn enroll(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EnrollResponse>, ApiErr> {
    let bytes = read_json_body(&state, &headers, body).await?;
    let signature = signing::decode_signature(header(&headers, SIGNATURE_HEADER)?)
        .map_err(|e| ApiErr::bad_request("bad_encoding", format!("{SIGNATURE_HEADER}: {e}")))?;
    let req: EnrollRequest =
        serde_json::from_slice(&bytes).map_err(|e| json_error("enrollment request", &e))?;
    let public_key = signing::decode_public_key(&req.public_key)
        .map_err(|e| ApiErr::unprocessable("invalid_field", format!("public_key: {e}")))?;
    signing::verify(&public_key, &bytes, &signature).map_err(|_| {
        ApiErr::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "the signature does not match the request body and public_key",
        )
    })?;
    check_text("identity.machine_id", &req.identity.machine_id)?;
    check_text("identity.hostname", &req.identity.hostname)?;
    if let Some(serial) = &req.identity.hardware_serial {
        check_text("identity.hardware_serial", serial)?;
    }
    check_text("agent_version", &req.agent_version)?;
    let bad_secret = || {
        ApiErr::new(
            StatusCode::FORBIDDEN,
            "bad_secret",
            "the enrollment secret is not valid",
        )
    };
    let (secret_id, secret_hash) = crate::auth::parse("ens", &req.secret).ok_or_else(bad_secret)?;
    let attempt = EnrollAttempt {
        secret_id,
        secret_hash,
        key_id: signing::key_id(&public_key),
        public_key,
        identity: req.identity.clone(),
        agent_version: req.agent_version.clone(),
        new_host_id: format!("h_{}", hex::encode(crate::auth::random_bytes::<12>())),
        now: crate::time::now_us(),
    };
    let store = state.store.clone();
    let a = attempt.clone();
    let outcome = tokio::task::spawn_blocking(move || store.enroll(&a))
        .await
        .map_err(ApiErr::internal)??;
    let forbidden = |code, m: &str| ApiErr::new(StatusCode::FORBIDDEN, code, m);
    let outcome = outcome.map_err(|r| match r {
        EnrollRefusal::BadSecret => bad_secret(),
        EnrollRefusal::SecretExpired => forbidden("secret_expired", "the enrollment secret has expired"),
        EnrollRefusal::SecretRevoked => forbidden("secret_revoked", "the enrollment secret was revoked"),
        EnrollRefusal::SecretUsed => forbidden("secret_used", "the single-use enrollment secret was already used"),
        EnrollRefusal::HostRevoked => forbidden("host_revoked", "this host was revoked and cannot enroll"),
        EnrollRefusal::KeyInUse => ApiErr::new(StatusCode::CONFLICT, "key_in_use", "this key is enrolled for another host or was retired"),
        EnrollRefusal::KeyChangeNeedsApproval { host_id } => forbidden(
            "key_change_needs_approval",
            &format!("host {host_id} is enrolled with another key: use a secret created after its enrollment, or ask an admin to approve key {}", attempt.key_id),
        ),
    })?;
    let mut keys = state.keys.write().expect("keys lock");
    // The store retired the host's previous active key (rotation): so does the cache.
    for k in keys.values_mut() {
        if k.host_id == outcome.host_id && k.key_id != outcome.key_id && k.state == "active" {
            k.state = "retired".into();
        }
    }
    keys.insert(
        outcome.key_id.clone(),
        KeyRecord {
            key_id: outcome.key_id.clone(),
            host_id: outcome.host_id.clone(),
            public_key,
            state: "active".into(),
            host_revoked: false,
        },
    );
    drop(keys);
    state
        .fleet
        .hosts
        .write()
        .expect("fleet lock")
        .entry(outcome.host_id.clone())
        .or_insert_with(|| crate::status::HostState {
            hostname: req.identity.hostname.as_str().into(),
            last_seen: None,
            revoked: false,
            findings: Box::new([]),
        });
    state.metrics.enrolled();
    Ok(Json(EnrollResponse {
        host_id: outcome.host_id,
        key_id: outcome.key_id,
        server_public_key: state.server_key.public_key_b64(),
        report_interval_secs: state.config.report_interval_secs,
        stale_after_intervals: state.config.stale_after_intervals,
        last_seq: outcome.last_seq,
        last_digest: outcome.last_digest,
    }))
}

pub async fn submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SignedReceipt>, ApiErr> {
    let started = Instant::now();
    let result = submit_inner(&state, &headers, body).await;
    match &result {
        Ok((_, duplicate)) => state
            .metrics
            .accepted(*duplicate, started.elapsed().as_secs_f64()),
        Err(e) => state.metrics.refused(e.code),
    }
    result.map(|r| Json(r.0))
}

async fn submit_inner(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(SignedReceipt, bool), ApiErr> {
    let bytes = read_json_body(state, headers, body).await?;
    let key_id = header(headers, KEY_ID_HEADER)?;
    let signature = signing::decode_signature(header(headers, SIGNATURE_HEADER)?)
        .map_err(|e| ApiErr::bad_request("bad_encoding", format!("{SIGNATURE_HEADER}: {e}")))?;
    let key = state.keys.read().expect("keys lock").get(key_id).cloned();
    let key = key.ok_or_else(|| {
        ApiErr::new(
            StatusCode::UNAUTHORIZED,
            "unknown_key",
            "no enrolled key has this id: enroll first",
        )
    })?;
    // Verify the exact bytes before looking inside them.
    signing::verify(&key.public_key, &bytes, &signature).map_err(|_| {
        ApiErr::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "the signature does not match the body and the enrolled key",
        )
    })?;
    if key.host_revoked {
        return Err(ApiErr::new(
            StatusCode::FORBIDDEN,
            "host_revoked",
            "this host was revoked",
        ));
    }
    if key.state != "active" {
        return Err(ApiErr::new(
            StatusCode::FORBIDDEN,
            "key_not_active",
            format!("key {key_id} is {}", key.state),
        ));
    }
    std::str::from_utf8(&bytes)
        .map_err(|_| ApiErr::bad_request("bad_encoding", "the body is not UTF-8"))?;
    let report: Report = serde_json::from_slice(&bytes).map_err(|e| json_error("report", &e))?;
    if report.host_id != key.host_id || report.key_id != key.key_id {
        return Err(ApiErr::new(
            StatusCode::FORBIDDEN,
            "identity_mismatch",
            "the report names another host or key than the key that signed it",
        ));
    }
    check_text("agent_version", &report.agent_version)?;
    for (k, v) in &report.collector_versions {
        check_text("collector_versions key", k)?;
        check_text("collector_versions value", v)?;
    }
    if report.seq == 0 {
        return Err(ApiErr::unprocessable("invalid_field", "seq starts at 1"));
    }
    let now = crate::time::now_us();
    let collected_at = crate::time::to_us(&report.collected_at);
    if collected_at > now + state.config.max_clock_skew_secs * 1_000_000 {
        return Err(ApiErr::unprocessable(
            "clock_skew",
            format!(
                "collected_at is more than {} s in the future: check the host clock",
                state.config.max_clock_skew_secs
            ),
        ));
    }
    let (policy_version, policy) = state.policy();
    let (content, facts) = match report.kind {
        ReportKind::Full { facts } => {
            let findings = crate::writer::evaluate(&facts, &policy.checks);
            (AppendContent::Full { findings }, Some(facts))
        }
        ReportKind::Attestation { still_holds } => {
            (AppendContent::Attestation { still_holds }, None)
        }
    };
    let digest = Digest::of(&bytes);
    let item = AppendItem {
        host_id: report.host_id,
        key_id: report.key_id,
        seq: report.seq,
        prev_digest: report.prev_digest,
        digest,
        bytes: bytes.to_vec(),
        collected_at,
        received_at: now,
        dropped_reports: report.dropped_reports,
        agent_version: report.agent_version,
        content,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    state
        .writer
        .send(crate::writer::Job {
            item,
            facts,
            policy_version,
            reply: tx,
        })
        .await
        .map_err(|_| ApiErr::shutting_down())?;
    let appended = rx
        .await
        .map_err(|_| ApiErr::shutting_down())?
        .map_err(ApiErr::internal)?;
    let appended = appended.map_err(|r| match r {
        AppendRefusal::Replay { last_seq } => ApiErr::new(
            StatusCode::CONFLICT,
            "replayed_sequence",
            format!("seq must be above {last_seq}, the last accepted for this host"),
        ),
        AppendRefusal::UnknownHost => {
            ApiErr::new(StatusCode::UNAUTHORIZED, "unknown_host", "unknown host")
        }
        AppendRefusal::HostRevoked => ApiErr::new(
            StatusCode::FORBIDDEN,
            "host_revoked",
            "this host was revoked",
        ),
        AppendRefusal::KeyNotActive => ApiErr::new(
            StatusCode::FORBIDDEN,
            "key_not_active",
            "this key is not the host's active key",
        ),
        AppendRefusal::AttestationMismatch => ApiErr::new(
            StatusCode::CONFLICT,
            "attestation_mismatch",
            "still_holds does not name this host's last full report: send a full report",
        ),
    })?;
    let receipt = Receipt {
        report_digest: appended.digest,
        host_id: appended.host_id,
        seq: appended.seq,
        received_at: crate::time::from_us(appended.received_at),
        log_index: appended.log_index,
        log_chain_hash: appended.chain_hash,
    };
    Ok((receipt.sign(&state.server_key), appended.duplicate))
}
