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
    EnrollRequest, EnrollResponse, RotateKeyRequest, CONTENT_TYPE_JSON, KEY_ID_HEADER,
    NEW_KEY_SIGNATURE_HEADER, SIGNATURE_HEADER,
};
use evidence_protocol::signing;
use evidence_protocol::{Digest, Receipt, Report, ReportKind, SignedReceipt};

use super::error::{json_error, ApiErr};
use crate::state::AppState;
use crate::store::{
    AppendContent, AppendItem, AppendRefusal, EnrollAttempt, EnrollRefusal, KeyRecord, KeyRotation,
    RotateRefusal,
};

/// Longest accepted identity / version string.
const MAX_TEXT: usize = 256;

/// A request body read into memory, holding its share of `max_inflight_body_bytes` until it
/// is dropped.
pub struct BodyBytes {
    pub bytes: Bytes,
    _memory: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl std::ops::Deref for BodyBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The first bytes of every body are not counted against `max_inflight_body_bytes`, so that
/// slow or stalled large uploads can never starve ordinary reports (a few KiB): those bytes are
/// bounded by `max_connections` instead.
pub const UNCOUNTED_BODY_BYTES: usize = 64 << 10;

/// Reads the body after checking the content type (415): 413 beyond the size limit, 503 at
/// once when the bodies being read already hold the memory allowed, 408 when it does not
/// arrive within the body-read timeout.
pub async fn read_json_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<BodyBytes, ApiErr> {
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
    let timeout = std::time::Duration::from_secs(state.config.body_read_timeout_secs);
    let read = read_bounded(state, body, limit, declared.unwrap_or(0));
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(ApiErr::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs()
            ),
        )),
        Ok(Read::Body(bytes, memory)) => Ok(BodyBytes {
            bytes,
            _memory: memory,
        }),
        Ok(Read::TooLarge) => Err(too_large()),
        Ok(Read::Busy) => {
            state.metrics.body_refused();
            Err(ApiErr::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_busy",
                "the server is holding as many request body bytes as it allows: retry shortly",
            )
            .retry_after(1))
        }
    }
}

/// A body up to this many times the limit is read and discarded before the 413 is sent, so a
/// client that is still sending reads the answer instead of a reset connection.
const DRAIN_FACTOR: usize = 4;

enum Read {
    Body(Bytes, Option<tokio::sync::OwnedSemaphorePermit>),
    TooLarge,
    Busy,
}

/// Reads the body, keeping at most `limit` bytes (discarding up to `limit * DRAIN_FACTOR`
/// before answering TooLarge). Bytes kept past [`UNCOUNTED_BODY_BYTES`] take permits from the
/// in-flight memory bound as they arrive; none left: Busy.
async fn read_bounded(state: &AppState, body: Body, limit: usize, size_hint: usize) -> Read {
    use axum::body::HttpBody;
    let mut body = std::pin::pin!(body);
    let mut kept = Vec::with_capacity(size_hint.min(limit).min(UNCOUNTED_BODY_BYTES));
    let mut memory: Option<tokio::sync::OwnedSemaphorePermit> = None;
    let mut seen = 0usize;
    loop {
        let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await;
        match frame {
            None => break,
            Some(Err(_)) => return Read::TooLarge,
            Some(Ok(frame)) => {
                let Some(data) = frame.data_ref() else {
                    continue;
                };
                seen = seen.saturating_add(data.len());
                if seen <= limit {
                    let counted = seen.saturating_sub(UNCOUNTED_BODY_BYTES);
                    let held = memory.as_ref().map_or(0, |m| m.num_permits());
                    if counted > held {
                        let more = (counted - held) as u32;
                        match state.limits.body_bytes.clone().try_acquire_many_owned(more) {
                            Ok(permit) => match memory.as_mut() {
                                Some(m) => m.merge(permit),
                                None => memory = Some(permit),
                            },
                            Err(_) => return Read::Busy,
                        }
                    }
                    kept.extend_from_slice(data);
                } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
                    return Read::TooLarge;
                }
            }
        }
    }
    if seen <= limit {
        Read::Body(Bytes::from(kept), memory)
    } else {
        Read::TooLarge
    }
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

/// Decodes a public key from the wire and refuses weak ones, before anything is verified
/// with it (a small-order key would make one constant signature valid for every report).
fn trusted_public_key(field: &str, b64: &str) -> Result<[u8; 32], ApiErr> {
    let key = signing::decode_public_key(b64)
        .map_err(|e| ApiErr::unprocessable("invalid_field", format!("{field}: {e}")))?;
    signing::check_public_key(&key)
        .map_err(|e| ApiErr::unprocessable("weak_public_key", format!("{field}: {e}")))?;
    Ok(key)
}

/// The enrolled key with this id (any state), or 401.
fn known_key(state: &AppState, key_id: &str) -> Result<KeyRecord, ApiErr> {
    let key = state.keys.read().expect("keys lock").get(key_id).cloned();
    key.ok_or_else(|| {
        ApiErr::new(
            StatusCode::UNAUTHORIZED,
            "unknown_key",
            "no enrolled key has this id: enroll first",
        )
    })
}

/// A key may sign only while its host is not revoked and it is the host's active key.
fn usable(key: &KeyRecord) -> Result<(), ApiErr> {
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
            format!("key {} is {}", key.key_id, key.state),
        ));
    }
    Ok(())
}

fn unauthorized_signature(message: &str) -> ApiErr {
    ApiErr::new(StatusCode::UNAUTHORIZED, "bad_signature", message)
}

pub async fn enroll(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EnrollResponse>, ApiErr> {
    audited(
        &state,
        "enrollment",
        enroll_inner(&state, &headers, body).await,
    )
}

/// Logs and counts a refused agent call as a security event, by its error code.
fn audited<T>(
    state: &AppState,
    event: &'static str,
    result: Result<T, ApiErr>,
) -> Result<T, ApiErr> {
    if let Err(e) = &result {
        crate::audit::security(state, event, e.code, "-", &e.message);
    }
    result
}

async fn enroll_inner(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<EnrollResponse>, ApiErr> {
    let bytes = read_json_body(state, headers, body).await?;
    let signature = signing::decode_signature(header(headers, SIGNATURE_HEADER)?)
        .map_err(|e| ApiErr::bad_request("bad_encoding", format!("{SIGNATURE_HEADER}: {e}")))?;
    let req: EnrollRequest =
        serde_json::from_slice(&bytes).map_err(|e| json_error("enrollment request", &e))?;
    let bad_secret = || {
        ApiErr::new(
            StatusCode::FORBIDDEN,
            "bad_secret",
            "the enrollment secret is not valid",
        )
    };
    let (secret_id, secret_hash) = crate::auth::parse("ens", &req.secret).ok_or_else(bad_secret)?;
    // Attempts per secret are limited before any work is spent on them.
    if let Err(wait) = state.limits.enroll.take(&secret_id) {
        return Err(ApiErr::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many enrollment attempts with this secret: retry in {} s",
                wait.as_secs() + 1
            ),
        )
        .retry_after(wait.as_secs() + 1));
    }
    let public_key = trusted_public_key("public_key", &req.public_key)?;
    signing::verify(&public_key, &bytes, &signature).map_err(|_| {
        unauthorized_signature("the signature does not match the request body and public_key")
    })?;
    check_text("identity.machine_id", &req.identity.machine_id)?;
    check_text("identity.hostname", &req.identity.hostname)?;
    if let Some(serial) = &req.identity.hardware_serial {
        check_text("identity.hardware_serial", serial)?;
    }
    check_text("agent_version", &req.agent_version)?;
    let attempt = EnrollAttempt {
        secret_id: secret_id.clone(),
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
        EnrollRefusal::SecretForAnotherHost => forbidden("secret_for_another_host", "this enrollment secret was created to re-key another host"),
        EnrollRefusal::TooManyPendingKeys => ApiErr::new(
            StatusCode::CONFLICT,
            "too_many_pending_keys",
            "this host (or this secret) already has as many keys awaiting approval as allowed: an admin must approve or the host must rotate with its current key",
        ),
        EnrollRefusal::KeyChangeNeedsApproval { host_id } => {
            crate::audit::security(state, "key_change", "pending", &secret_id, &format!("host {host_id}: key {} pending approval", attempt.key_id));
            forbidden(
                "key_change_needs_approval",
                &format!("this machine is enrolled with another key; key {} is kept pending and is not trusted until an admin approves it, or enroll with a secret an admin created for this host, or rotate with the current key", attempt.key_id),
            )
        }
    })?;
    if let Some(event) = outcome.event {
        crate::audit::security(
            state,
            "key_change",
            event.as_str(),
            &secret_id,
            &format!("host {}: key {}", outcome.host_id, outcome.key_id),
        );
    }
    state.activate_cached_key(&outcome.host_id, &outcome.key_id, public_key, attempt.now);
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
    Ok(Json(state.enroll_response(outcome)))
}

/// `POST /v1/keys/rotate`: the host's current key signs a request naming its new key, and the
/// new key signs it too (proof of possession). The old key is retired at once.
pub async fn rotate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EnrollResponse>, ApiErr> {
    audited(
        &state,
        "key_rotation",
        rotate_inner(&state, &headers, body).await,
    )
}

async fn rotate_inner(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<EnrollResponse>, ApiErr> {
    let bytes = read_json_body(state, headers, body).await?;
    let key_id = header(headers, KEY_ID_HEADER)?;
    let signature = signing::decode_signature(header(headers, SIGNATURE_HEADER)?)
        .map_err(|e| ApiErr::bad_request("bad_encoding", format!("{SIGNATURE_HEADER}: {e}")))?;
    let new_signature = signing::decode_signature(header(headers, NEW_KEY_SIGNATURE_HEADER)?)
        .map_err(|e| {
            ApiErr::bad_request("bad_encoding", format!("{NEW_KEY_SIGNATURE_HEADER}: {e}"))
        })?;
    let current = known_key(state, key_id)?;
    usable(&current)?;
    signing::verify(&current.public_key, &bytes, &signature).map_err(|_| {
        unauthorized_signature("the signature does not match the body and the current key")
    })?;
    let req: RotateKeyRequest =
        serde_json::from_slice(&bytes).map_err(|e| json_error("rotation request", &e))?;
    if req.host_id != current.host_id {
        return Err(ApiErr::new(
            StatusCode::FORBIDDEN,
            "identity_mismatch",
            "the request names another host than the key that signed it",
        ));
    }
    let new_key = trusted_public_key("new_public_key", &req.new_public_key)?;
    signing::verify(&new_key, &bytes, &new_signature).map_err(|_| {
        unauthorized_signature(&format!(
            "{NEW_KEY_SIGNATURE_HEADER} does not match the body and new_public_key"
        ))
    })?;
    let now = crate::time::now_us();
    let skew = state.config.max_clock_skew_secs * 1_000_000;
    if (crate::time::to_us(&req.requested_at) - now).abs() > skew {
        return Err(ApiErr::unprocessable(
            "clock_skew",
            format!(
                "requested_at is more than {} s from the server's clock",
                state.config.max_clock_skew_secs
            ),
        ));
    }
    let new_key_id = signing::key_id(&new_key);
    let rotation = KeyRotation {
        host_id: current.host_id.clone(),
        previous_key_id: current.key_id.clone(),
        key_id: new_key_id.clone(),
        public_key: new_key,
        proof: serde_json::json!({
            "request": signing::b64(&bytes),
            "signature_by_previous_key": signing::b64(&signature),
            "signature_by_new_key": signing::b64(&new_signature),
        }),
        now,
    };
    let store = state.store.clone();
    let outcome = tokio::task::spawn_blocking(move || store.rotate_key(&rotation))
        .await
        .map_err(ApiErr::internal)??
        .map_err(|r| match r {
            RotateRefusal::HostRevoked => ApiErr::new(
                StatusCode::FORBIDDEN,
                "host_revoked",
                "this host was revoked",
            ),
            RotateRefusal::KeyNotActive => ApiErr::new(
                StatusCode::FORBIDDEN,
                "key_not_active",
                "the signing key is not the host's active key",
            ),
            RotateRefusal::KeyInUse => ApiErr::new(
                StatusCode::CONFLICT,
                "key_in_use",
                "the new key is enrolled for another host or was retired",
            ),
        })?;
    crate::audit::security(
        state,
        "key_change",
        "rotated",
        &current.key_id,
        &format!("host {}: key {new_key_id}", current.host_id),
    );
    state.activate_cached_key(
        &outcome.host_id,
        &outcome.key_id,
        new_key,
        current.host_enrolled_at,
    );
    Ok(Json(state.enroll_response(outcome)))
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
        Err(e) => {
            // Counted by reason in evidence_reports_refused_total; logged like every security event.
            tracing::warn!(target: "audit", event = "report", outcome = e.code, actor = "-", detail = %e.message);
            state.metrics.refused(e.code)
        }
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
    let key = known_key(state, key_id)?;
    // Verify the exact bytes before looking inside them.
    signing::verify(&key.public_key, &bytes, &signature).map_err(|_| {
        unauthorized_signature("the signature does not match the body and the enrolled key")
    })?;
    usable(&key)?;
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
    for (field, value) in [
        ("seq", report.seq),
        ("dropped_reports", report.dropped_reports),
    ] {
        if value > i64::MAX as u64 {
            return Err(ApiErr::unprocessable(
                "invalid_field",
                format!("{field} must be at most 2^63 - 1, got {value}"),
            ));
        }
    }
    let now = crate::time::now_us();
    let collected_at = crate::time::to_us(&report.collected_at);
    let skew = state.config.max_clock_skew_secs * 1_000_000;
    if collected_at < key.host_enrolled_at - skew {
        return Err(ApiErr::unprocessable(
            "collected_before_enrollment",
            format!(
                "collected_at {} is before this host enrolled ({}) by more than the clock skew bound",
                crate::time::fmt(collected_at),
                crate::time::fmt(key.host_enrolled_at)
            ),
        ));
    }
    if collected_at > now + skew {
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
