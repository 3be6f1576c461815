//! Enrollment and key rotation: requests signed by the agent's key, verified over the exact
//! bytes before anything else, then decided by `domain::rules` inside the store. A fleet-wide
//! secret is never a host identity: a known host's new key stays pending.

use evidence_protocol::api::{
    EnrollRequest, EnrollResponse, RotateKeyRequest, NEW_KEY_SIGNATURE_HEADER,
};
use evidence_protocol::signing::{self, SIGNATURE_LEN};

use super::{ErrorCode, ServiceError, ServiceResult, Services};
use crate::store::{
    EnrollAttempt, EnrollOutcome, EnrollRefusal, KeyRecord, KeyRotation, KeyState, RotateRefusal,
};

/// An Ed25519 signature as it came off the wire.
pub type Signature = [u8; SIGNATURE_LEN];

/// Longest accepted identity / version string.
const MAX_TEXT: usize = 256;

pub(super) fn check_text(field: &str, value: &str) -> ServiceResult<()> {
    if value.is_empty() || value.len() > MAX_TEXT || value.chars().any(char::is_control) {
        return Err(ServiceError::invalid(format!(
            "{field} must be 1 to {MAX_TEXT} bytes without control characters"
        )));
    }
    Ok(())
}

/// Decodes a public key from the wire and refuses weak ones, before anything is verified
/// with it (a small-order key would make one constant signature valid for every report).
fn trusted_public_key(field: &str, b64: &str) -> ServiceResult<[u8; 32]> {
    let key = signing::decode_public_key(b64)
        .map_err(|e| ServiceError::invalid(format!("{field}: {e}")))?;
    signing::check_public_key(&key)
        .map_err(|e| ServiceError::new(ErrorCode::WeakPublicKey, format!("{field}: {e}")))?;
    Ok(key)
}

pub(super) fn bad_signature(message: &str) -> ServiceError {
    ServiceError::new(ErrorCode::BadSignature, message)
}

/// A key may sign only while its host is not revoked and it is the host's active key.
pub(super) fn usable(key: &KeyRecord) -> ServiceResult<()> {
    if key.host_revoked {
        return Err(ServiceError::new(
            ErrorCode::HostRevoked,
            "this host was revoked",
        ));
    }
    if key.state != KeyState::Active {
        return Err(ServiceError::new(
            ErrorCode::KeyNotActive,
            format!("key {} is {}", key.key_id, key.state),
        ));
    }
    Ok(())
}

fn refusal(r: EnrollRefusal, key_id: &str) -> ServiceError {
    use ErrorCode::*;
    let (code, message) = match r {
        EnrollRefusal::BadSecret => (BadSecret, "the enrollment secret is not valid".to_string()),
        EnrollRefusal::SecretExpired => (SecretExpired, "the enrollment secret has expired".into()),
        EnrollRefusal::SecretRevoked => (SecretRevoked, "the enrollment secret was revoked".into()),
        EnrollRefusal::SecretUsed => (SecretUsed, "the single-use enrollment secret was already used".into()),
        EnrollRefusal::HostRevoked => (HostRevoked, "this host was revoked and cannot enroll".into()),
        EnrollRefusal::KeyInUse => (KeyInUse, "this key is enrolled for another host or was retired".into()),
        EnrollRefusal::SecretForAnotherHost => (SecretForAnotherHost, "this enrollment secret was created to re-key another host".into()),
        EnrollRefusal::TooManyPendingKeys => (
            TooManyPendingKeys,
            "this host (or this secret) already has as many keys awaiting approval as allowed: an admin must approve or the host must rotate with its current key".into(),
        ),
        EnrollRefusal::KeyChangeNeedsApproval { .. } => (
            KeyChangeNeedsApproval,
            format!("this machine is enrolled with another key; key {key_id} is kept pending and is not trusted until an admin approves it, or enroll with a secret an admin created for this host, or rotate with the current key"),
        ),
    };
    ServiceError::new(code, message)
}

impl Services {
    /// Logs and counts a refused enrollment or rotation (`event`) as a security event, by its
    /// error code: the caller reports every refusal, its own (body, headers) included.
    pub fn agent_call_refused(&self, event: &'static str, e: &ServiceError) {
        crate::audit::security(&self.metrics, event, e.code.as_str(), "-", &e.message);
    }

    /// The enrolled key with this id (any state).
    pub(super) fn known_key(&self, key_id: &str) -> ServiceResult<KeyRecord> {
        self.caches.key(key_id).ok_or_else(|| {
            ServiceError::new(
                ErrorCode::UnknownKey,
                "no enrolled key has this id: enroll first",
            )
        })
    }

    /// `POST /v1/enroll`: `body` signed by the public key it carries.
    pub async fn enroll(
        &self,
        body: &[u8],
        signature: &Signature,
    ) -> ServiceResult<EnrollResponse> {
        let req: EnrollRequest = serde_json::from_slice(body)
            .map_err(|e| ServiceError::json("enrollment request", &e))?;
        let (secret_id, secret_hash) = crate::auth::parse("ens", &req.secret)
            .ok_or_else(|| refusal(EnrollRefusal::BadSecret, ""))?;
        // Attempts per secret are limited before any work is spent on them.
        if let Err(wait) = self.enroll_limit.take(&secret_id) {
            let secs = wait.as_secs() + 1;
            return Err(ServiceError::new(
                ErrorCode::RateLimited,
                format!("too many enrollment attempts with this secret: retry in {secs} s"),
            )
            .retry_after(secs));
        }
        let public_key = trusted_public_key("public_key", &req.public_key)?;
        signing::verify(&public_key, body, signature).map_err(|_| {
            bad_signature("the signature does not match the request body and public_key")
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
        let outcome = self.store.enroll(&attempt).await?.map_err(|r| {
            if let EnrollRefusal::KeyChangeNeedsApproval { host_id } = &r {
                crate::audit::security(
                    &self.metrics,
                    "key_change",
                    "pending",
                    &secret_id,
                    &format!("host {host_id}: key {} pending approval", attempt.key_id),
                );
            }
            refusal(r, &attempt.key_id)
        })?;
        if let Some(event) = outcome.event {
            crate::audit::security(
                &self.metrics,
                "key_change",
                event.as_str(),
                &secret_id,
                &format!("host {}: key {}", outcome.host_id, outcome.key_id),
            );
        }
        self.caches
            .activate_key(&outcome.host_id, &outcome.key_id, public_key, attempt.now);
        self.caches
            .host_enrolled(&outcome.host_id, &req.identity.hostname);
        self.metrics.enrolled();
        Ok(self.enroll_response(outcome))
    }

    /// `POST /v1/keys/rotate`: the host's current key (`key_id`) signs a request naming its new
    /// key, and the new key signs it too (proof of possession). The old key is retired at once.
    pub async fn rotate(
        &self,
        body: &[u8],
        key_id: &str,
        signature: &Signature,
        new_signature: &Signature,
    ) -> ServiceResult<EnrollResponse> {
        let current = self.known_key(key_id)?;
        usable(&current)?;
        signing::verify(&current.public_key, body, signature).map_err(|_| {
            bad_signature("the signature does not match the body and the current key")
        })?;
        let req: RotateKeyRequest =
            serde_json::from_slice(body).map_err(|e| ServiceError::json("rotation request", &e))?;
        if req.host_id != current.host_id {
            return Err(ServiceError::new(
                ErrorCode::IdentityMismatch,
                "the request names another host than the key that signed it",
            ));
        }
        let new_key = trusted_public_key("new_public_key", &req.new_public_key)?;
        signing::verify(&new_key, body, new_signature).map_err(|_| {
            bad_signature(&format!(
                "{NEW_KEY_SIGNATURE_HEADER} does not match the body and new_public_key"
            ))
        })?;
        let now = crate::time::now_us();
        let skew = self.config.max_clock_skew_secs * 1_000_000;
        if (crate::time::to_us(&req.requested_at) - now).abs() > skew {
            return Err(ServiceError::new(
                ErrorCode::ClockSkew,
                format!(
                    "requested_at is more than {} s from the server's clock",
                    self.config.max_clock_skew_secs
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
                "request": signing::b64(body),
                "signature_by_previous_key": signing::b64(signature),
                "signature_by_new_key": signing::b64(new_signature),
            }),
            now,
        };
        let outcome = self
            .store
            .rotate_key(&rotation)
            .await?
            .map_err(|r| match r {
                RotateRefusal::HostRevoked => {
                    ServiceError::new(ErrorCode::HostRevoked, "this host was revoked")
                }
                RotateRefusal::KeyNotActive => ServiceError::new(
                    ErrorCode::KeyNotActive,
                    "the signing key is not the host's active key",
                ),
                RotateRefusal::KeyInUse => ServiceError::new(
                    ErrorCode::KeyInUse,
                    "the new key is enrolled for another host or was retired",
                ),
            })?;
        crate::audit::security(
            &self.metrics,
            "key_change",
            "rotated",
            &current.key_id,
            &format!("host {}: key {new_key_id}", current.host_id),
        );
        self.caches.activate_key(
            &outcome.host_id,
            &outcome.key_id,
            new_key,
            current.host_enrolled_at,
        );
        Ok(self.enroll_response(outcome))
    }

    /// What an agent is told when its key is (again) the host's active key.
    fn enroll_response(&self, outcome: EnrollOutcome) -> EnrollResponse {
        EnrollResponse {
            host_id: outcome.host_id,
            key_id: outcome.key_id,
            server_public_key: self.server_key.public_key_b64(),
            report_interval_secs: self.config.report_interval_secs,
            stale_after_intervals: self.config.stale_after_intervals,
            last_seq: outcome.last_seq,
            last_digest: outcome.last_digest,
        }
    }
}
