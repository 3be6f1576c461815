//! The agent-facing HTTP API: paths, headers, enrollment messages and the error body.
//!
//! All under `/v1`, JSON over HTTPS (the agent pins the server's certificate by its SHA-256
//! fingerprint, printed by `evidence-server serve` on first start).
//!
//! * `POST /v1/enroll` ([`ENROLL_PATH`]): body = [`EnrollRequest`] JSON bytes, with
//!   [`SIGNATURE_HEADER`] = the agent key's signature over exactly those bytes (proves the agent
//!   holds the key it enrolls). `200` + [`EnrollResponse`]. Re-sending the same request (same
//!   machine, same key) returns the same answer, so a lost response is harmless.
//! * `POST /v1/reports` ([`REPORTS_PATH`]): body = the report's exact bytes
//!   ([`crate::Report::to_bytes`]), `Content-Type: application/json`, [`SIGNATURE_HEADER`] =
//!   base64 Ed25519 signature over the body, [`KEY_ID_HEADER`] = the signing key's id.
//!   `200` + [`crate::Receipt`] (the signed checkpoint, inclusion and consistency proofs) once
//!   the report is committed. Re-sending the exact bytes of an already accepted report returns
//!   a receipt for it against the latest checkpoint (`200`), so the agent may retry
//!   anything it holds no receipt for. Any other report whose `seq` is not above the last
//!   accepted one is refused with `409`.
//!
//! Errors: a 4xx/5xx status with an [`ApiError`] body. Codes the agent should act on:
//! `401 unknown_key` (enroll again), `403 host_revoked` (stop), `409 replayed_sequence` (drop the
//! report), `413 body_too_large`, `422 clock_skew` (fix the clock), `429`/`5xx` (retry later).

use serde::{Deserialize, Serialize};

/// Enrollment endpoint.
pub const ENROLL_PATH: &str = "/v1/enroll";
/// Report submission endpoint.
pub const REPORTS_PATH: &str = "/v1/reports";
/// Key rotation endpoint: a host replaces its key on the authority of its current key.
pub const ROTATE_PATH: &str = "/v1/keys/rotate";
/// Liveness endpoint (no authentication).
pub const HEALTH_PATH: &str = "/healthz";

/// Base64 Ed25519 signature over the exact request body.
pub const SIGNATURE_HEADER: &str = "x-evidence-signature";
/// Id of the key that made [`SIGNATURE_HEADER`] (see [`crate::signing::key_id`]).
pub const KEY_ID_HEADER: &str = "x-evidence-key-id";
/// On `POST /v1/reports`, optional: the size of the last checkpoint the agent verified (it may
/// be newer than the one the queued report names). The receipt's consistency proof starts
/// there; without it, at the report's `witnessed` checkpoint.
pub const WITNESSED_HEADER: &str = "x-evidence-witnessed";
/// On a key rotation: the NEW key's base64 signature over the exact body (proof of possession;
/// [`SIGNATURE_HEADER`] and [`KEY_ID_HEADER`] are the current key's).
pub const NEW_KEY_SIGNATURE_HEADER: &str = "x-evidence-new-key-signature";
/// The only accepted request content type for `POST` bodies.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// Who the host is, as the agent sees it. The server uses `machine_id` to recognise a host that
/// enrolls again (re-install, key rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostIdentity {
    /// `/etc/machine-id` on Linux, the platform UUID elsewhere.
    pub machine_id: String,
    pub hostname: String,
    /// Hardware serial number where the agent can read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_serial: Option<String>,
}

/// `POST /v1/enroll` body.
///
/// Rules the server applies: the public key must not be a small-order or non-canonical point
/// (`422 weak_public_key`); the secret must exist, be unexpired, unrevoked, and unused if
/// single-use; attempts per secret are rate-limited (`429`). A new `machine_id` gets a new host
/// id. A known `machine_id` with the key it already has gets its existing ids back. A known
/// `machine_id` with a NEW key never takes over with a fleet secret, however fresh: the key is
/// kept `pending` (the host keeps reporting with its current key) and the answer is `403
/// key_change_needs_approval`; it becomes active only when an admin approves it (`POST
/// /v1/admin/hosts/{host_id}/approve-key`), or at once with a secret an admin created for that
/// one host (`host_id` in `POST /v1/admin/enrollment-secrets`). A host that still holds its
/// current key rotates with [`ROTATE_PATH`] instead. A revoked host is refused (`403
/// host_revoked`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollRequest {
    /// The enrollment secret an admin created (`POST /v1/admin/enrollment-secrets`).
    pub secret: String,
    /// The agent's Ed25519 public key, base64 (32 bytes).
    pub public_key: String,
    pub identity: HostIdentity,
    /// Version of `evidence-agent`.
    pub agent_version: String,
}

/// `POST /v1/enroll` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollResponse {
    /// The host id to put in every report.
    pub host_id: String,
    /// The enrolled key's id (equals [`crate::signing::key_id`] of the public key sent).
    pub key_id: String,
    /// The server's Ed25519 public key, base64: verifies receipts.
    pub server_public_key: String,
    /// How often the agent should report, in seconds. A host that misses
    /// `stale_after_intervals` intervals is stale and never counts as passing.
    pub report_interval_secs: u64,
    pub stale_after_intervals: u32,
    /// The last sequence number the server accepted for this host (0 when none): an agent that
    /// lost its state continues above it.
    pub last_seq: u64,
    /// Digest of the last report the server stored for this host, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub last_digest: Option<crate::Digest>,
}

/// `POST /v1/keys/rotate` body, signed by the host's current key ([`SIGNATURE_HEADER`],
/// [`KEY_ID_HEADER`]) and by the new key ([`NEW_KEY_SIGNATURE_HEADER`]). `200` +
/// [`EnrollResponse`] for the new key; the old key is retired at once, and the change (with
/// this request and both signatures) is an entry in the evidence log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotateKeyRequest {
    pub host_id: String,
    /// The new Ed25519 public key, base64 (32 bytes).
    pub new_public_key: String,
    /// When the agent asked: a request older or newer than the server's clock skew bound is
    /// refused.
    pub requested_at: chrono::DateTime<chrono::Utc>,
}

/// Error body of every 4xx/5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// Stable machine-readable code, e.g. `replayed_sequence`, `bad_signature`.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enroll_request_refuses_unknown_fields() {
        let json = r#"{"secret":"s","public_key":"k","identity":{"machine_id":"m","hostname":"h"},"agent_version":"1","x":1}"#;
        assert!(serde_json::from_str::<EnrollRequest>(json).is_err());
        let ok = r#"{"secret":"s","public_key":"k","identity":{"machine_id":"m","hostname":"h"},"agent_version":"1"}"#;
        assert_eq!(
            serde_json::from_str::<EnrollRequest>(ok)
                .unwrap()
                .identity
                .hardware_serial,
            None
        );
    }
}
