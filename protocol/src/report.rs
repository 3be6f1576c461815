//! The report an agent sends to the server: who, which key, where in the host's chain, when,
//! with which software, and what was observed (or that nothing changed).
//!
//! The agent serialises a [`Report`] ONCE (`to_bytes`), signs those exact bytes
//! (`crate::signing`), and sends them as the HTTP body. The server verifies the bytes before it
//! parses them and stores them verbatim: no re-serialisation ever stands between the evidence and
//! its signature. `digest` of the bytes is what the next report's `prev_digest` names and what the
//! server's receipt acknowledges.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Digest, Facts};

/// One signed report. Unknown fields are refused (a typo or a newer agent is an error, not
/// silently dropped evidence), with one exception: a collector this build does not know is kept
/// verbatim in [`Facts::unknown`] (see [`crate::facts`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    /// Host id assigned by the server at enrollment ([`crate::api::EnrollResponse::host_id`]).
    pub host_id: String,
    /// Id of the agent key that signs this report ([`crate::signing::key_id`] of its public key).
    pub key_id: String,
    /// Sequence number, strictly increasing per host (across key rotations): the server refuses a
    /// report whose `seq` is not above the last one it accepted. The first report may use any
    /// value >= 1.
    pub seq: u64,
    /// Digest of the exact bytes of this host's previous report (whether or not it reached the
    /// server), `None` for the host's first report. A mismatch with the last stored report is
    /// recorded by the server as a visible gap, never hidden.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub prev_digest: Option<Digest>,
    /// When the facts were collected (RFC 3339, UTC). The server refuses times too far in the
    /// future (clock skew bound).
    pub collected_at: DateTime<Utc>,
    /// Version of `evidence-agent`.
    pub agent_version: String,
    /// Version of each collector that ran, by collector name.
    pub collector_versions: BTreeMap<String, String>,
    /// Reports the agent's spool had to drop (full, corrupt) since the previous report: the
    /// server records them as a counted gap. `0` when nothing was lost.
    #[serde(default)]
    pub dropped_reports: u64,
    /// Full facts, or an attestation that the last full report still holds.
    pub kind: ReportKind,
    /// The last log checkpoint this agent verified (from its previous receipt), `None` before
    /// its first: the agent is a witness of the log, and this puts what it saw into the log
    /// itself. The receipt proves the new checkpoint consistent with this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed: Option<Witnessed>,
}

/// A checkpoint as a witness keeps it: the tree size and root hash the server signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Witnessed {
    pub size: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub root: Digest,
}

/// What a report carries. Externally tagged: `{"full": {"facts": {...}}}` or
/// `{"attestation": {"still_holds": "<digest>"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
// One report per collection interval: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ReportKind {
    /// Everything the collectors observed in this run.
    Full {
        /// Each collector's observation, keyed by collector name.
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        facts: Facts,
    },
    /// Nothing changed: the facts of the full report with this digest (an earlier report of the
    /// same host) were observed again at `collected_at`. Small, so an agent can prove
    /// "still compliant" every interval cheaply.
    Attestation {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        still_holds: Digest,
    },
}

/// Why bytes are not a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("report is not valid JSON or does not match the report schema: {0}")]
    Json(#[from] serde_json::Error),
}

impl Report {
    /// Serialises the report once: these are the bytes to sign, send, and digest.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data with String keys cannot fail.
        serde_json::to_vec(self).expect("a report always serialises")
    }

    /// Parses report bytes (after their signature has been verified).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ReportError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// The facts this report carries, if it is a full report.
    pub fn facts(&self) -> Option<&Facts> {
        match &self.kind {
            ReportKind::Full { facts } => Some(facts),
            ReportKind::Attestation { .. } => None,
        }
    }
}

/// A report ready to send: its exact bytes, the base64 signature over them, and the key id:
/// the body, `X-Evidence-Signature` and `X-Evidence-Key-Id` of `POST /v1/reports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReport {
    pub bytes: Vec<u8>,
    pub signature: String,
    pub key_id: String,
}

impl SignedReport {
    /// Digest of the bytes (what the receipt and the next report's `prev_digest` name).
    pub fn digest(&self) -> Digest {
        Digest::of(&self.bytes)
    }
}

impl Report {
    /// Serialises once and signs those bytes with the agent key.
    pub fn sign(&self, key: &crate::signing::SigningKey) -> SignedReport {
        let bytes = self.to_bytes();
        SignedReport {
            signature: key.sign_b64(&bytes),
            key_id: key.key_id(),
            bytes,
        }
    }
}

/// Digest of a report's exact bytes: what `prev_digest`, `still_holds` and receipts name.
pub fn report_digest(bytes: &[u8]) -> Digest {
    Digest::of(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: ReportKind) -> Report {
        Report {
            host_id: "h-1".into(),
            key_id: "k-1".into(),
            seq: 7,
            prev_digest: Some(Digest::of(b"previous")),
            collected_at: "2026-11-27T23:00:00Z".parse().unwrap(),
            agent_version: "0.1.0".into(),
            collector_versions: BTreeMap::from([("firewall".into(), "0.1.0".into())]),
            dropped_reports: 0,
            kind,
            witnessed: None,
        }
    }

    #[test]
    fn full_and_attestation_reports_round_trip_through_their_bytes() {
        for kind in [
            ReportKind::Full {
                facts: Facts::default(),
            },
            ReportKind::Attestation {
                still_holds: Digest::of(b"x"),
            },
        ] {
            let report = sample(kind);
            assert_eq!(Report::from_bytes(&report.to_bytes()).unwrap(), report);
        }
    }

    #[test]
    fn unknown_fields_and_missing_fields_are_refused() {
        let mut value = serde_json::to_value(sample(ReportKind::Full {
            facts: Facts::default(),
        }))
        .unwrap();
        value["surprise"] = serde_json::json!(1);
        assert!(Report::from_bytes(value.to_string().as_bytes()).is_err());
        let mut value = serde_json::to_value(sample(ReportKind::Full {
            facts: Facts::default(),
        }))
        .unwrap();
        value.as_object_mut().unwrap().remove("seq");
        assert!(Report::from_bytes(value.to_string().as_bytes()).is_err());
    }

    #[test]
    fn the_wire_form_names_kind_and_digests_as_documented() {
        let report = sample(ReportKind::Attestation {
            still_holds: Digest::ZERO,
        });
        let value: serde_json::Value = serde_json::from_slice(&report.to_bytes()).unwrap();
        assert_eq!(value["kind"]["attestation"]["still_holds"], "0".repeat(64));
        assert_eq!(value["collected_at"], "2026-11-27T23:00:00Z");
    }
}
