//! The version-1 receipt (one server signature per report) and the hash chain of the evidence
//! log. The server no longer issues these (see [`super::Receipt`]) but keeps the chain hashes,
//! so every receipt it ever issued stays verifiable: the signature with the server key, and the
//! chain hash against the log (`evidence-server verify-log`).
//!
//! The server appends each accepted report to an append-only log. Entry `i` has
//! `chain_hash[i] = SHA-256("evidence-log-v1" || chain_hash[i-1] || i as u64 big-endian ||
//! report_digest)`, with `chain_hash[-1]` = 32 zero bytes ([`log_chain_next`]): deleting,
//! reordering or changing any stored report breaks every later hash.
//!
//! A receipt is signed by the server's Ed25519 key over [`LegacyReceipt::signing_bytes`], a fixed text
//! form (not JSON), so the agent can keep the receipt as JSON and re-verify it any time.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::signing::{self, SigningError, SigningKey, PUBLIC_KEY_LEN};
use crate::Digest;

/// Acknowledgement that a report is stored (its transaction committed before this was sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyReceipt {
    /// Digest of the report's exact bytes.
    pub report_digest: Digest,
    /// The report's host and sequence number.
    pub host_id: String,
    pub seq: u64,
    /// When the server accepted the report.
    pub received_at: DateTime<Utc>,
    /// Position in the server's evidence log (0-based).
    pub log_index: u64,
    /// Chain hash of the log up to and including this entry.
    pub log_chain_hash: Digest,
}

/// A receipt and the server's base64 Ed25519 signature over its [`LegacyReceipt::signing_bytes`]:
/// what `POST /v1/reports` answered before checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedLegacyReceipt {
    pub receipt: LegacyReceipt,
    pub signature: String,
}

impl LegacyReceipt {
    /// The exact bytes the server signs: one `key=value` line per field, in this order,
    /// after the line `evidence-receipt-v1`; times in RFC 3339 UTC with nanoseconds.
    pub fn signing_bytes(&self) -> Vec<u8> {
        format!(
            "evidence-receipt-v1\nreport_digest={}\nhost_id={}\nseq={}\nreceived_at={}\nlog_index={}\nlog_chain_hash={}\n",
            self.report_digest,
            self.host_id,
            self.seq,
            self.received_at.to_rfc3339_opts(SecondsFormat::Nanos, true),
            self.log_index,
            self.log_chain_hash
        )
        .into_bytes()
    }

    /// Signs the receipt with the server key.
    pub fn sign(self, server_key: &SigningKey) -> SignedLegacyReceipt {
        let signature = server_key.sign_b64(&self.signing_bytes());
        SignedLegacyReceipt {
            receipt: self,
            signature,
        }
    }
}

impl SignedLegacyReceipt {
    /// Verifies the signature with the server's public key (from enrollment).
    pub fn verify(&self, server_public_key: &[u8; PUBLIC_KEY_LEN]) -> Result<(), SigningError> {
        let sig = signing::decode_signature(&self.signature)?;
        signing::verify(server_public_key, &self.receipt.signing_bytes(), &sig)
    }

    /// Verifies the signature and that the receipt is for exactly these report bytes.
    pub fn verify_for(
        &self,
        server_public_key: &[u8; PUBLIC_KEY_LEN],
        report_bytes: &[u8],
    ) -> Result<(), SigningError> {
        self.verify(server_public_key)?;
        if self.receipt.report_digest != Digest::of(report_bytes) {
            return Err(SigningError::BadSignature);
        }
        Ok(())
    }
}

/// The evidence log's chain hash after appending `report_digest` at `index`.
pub fn log_chain_next(prev_chain_hash: &Digest, index: u64, report_digest: &Digest) -> Digest {
    Digest::of_parts(&[
        b"evidence-log-v1",
        prev_chain_hash.as_bytes(),
        &index.to_be_bytes(),
        report_digest.as_bytes(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> LegacyReceipt {
        LegacyReceipt {
            report_digest: Digest::of(b"report"),
            host_id: "h-1".into(),
            seq: 3,
            received_at: "2026-11-27T23:00:00.123456789Z".parse().unwrap(),
            log_index: 41,
            log_chain_hash: log_chain_next(&Digest::ZERO, 0, &Digest::of(b"report")),
        }
    }

    #[test]
    fn a_signed_receipt_verifies_after_a_json_round_trip() {
        let server = SigningKey::generate().unwrap();
        let signed = receipt().sign(&server);
        let json = serde_json::to_vec(&signed).unwrap();
        let back: SignedLegacyReceipt = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.verify(&server.public_key()), Ok(()));
        assert_eq!(back.verify_for(&server.public_key(), b"report"), Ok(()));
        assert!(back.verify_for(&server.public_key(), b"other").is_err());
    }

    #[test]
    fn a_changed_receipt_or_another_key_does_not_verify() {
        let server = SigningKey::generate().unwrap();
        let mut signed = receipt().sign(&server);
        let other = SigningKey::generate().unwrap();
        assert!(signed.verify(&other.public_key()).is_err());
        signed.receipt.log_index += 1;
        assert!(signed.verify(&server.public_key()).is_err());
    }

    #[test]
    fn the_chain_hash_depends_on_order_and_index() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let ab = log_chain_next(&log_chain_next(&Digest::ZERO, 0, &a), 1, &b);
        let ba = log_chain_next(&log_chain_next(&Digest::ZERO, 0, &b), 1, &a);
        assert_ne!(ab, ba);
        assert_ne!(
            log_chain_next(&Digest::ZERO, 0, &a),
            log_chain_next(&Digest::ZERO, 1, &a)
        );
    }
}
