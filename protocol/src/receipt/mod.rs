//! The server's receipt for an accepted report: the signed checkpoint of the evidence log that
//! the report's commit produced, the report's inclusion proof against it, and a consistency
//! proof from the checkpoint its agent last verified (the agent's current one, sent in
//! [`crate::api::WITNESSED_HEADER`]; else the one the report names, [`crate::Witnessed`]).
//!
//! One server signature covers a whole group commit (the checkpoint), not each report. The
//! agent checks all three with [`Receipt::verify`] before it deletes the report from its spool,
//! and keeps the new checkpoint as the one it has witnessed: a server that rewrites or forks
//! history after an agent saw it cannot produce the consistency proof, and that agent refuses
//! the receipt and says why.

mod legacy;

pub use legacy::{log_chain_next, LegacyReceipt, SignedLegacyReceipt};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, CheckpointError};
use crate::log_entry::{EntryKind, LogLeaf};
use crate::merkle::{self, ProofError};
use crate::signing::PUBLIC_KEY_LEN;
use crate::{Digest, Report, ReportKind, Witnessed};

/// Acknowledgement that a report is stored (its transaction committed before this was sent):
/// the response body of `POST /v1/reports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Receipt {
    /// Digest of the report's exact bytes.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub report_digest: Digest,
    /// The report's host and sequence number.
    pub host_id: String,
    pub seq: u64,
    /// When the server accepted the report (microsecond precision: the log leaf's).
    pub received_at: DateTime<Utc>,
    /// Position in the server's evidence log (0-based).
    pub log_index: u64,
    /// The server's signed checkpoint (C2SP `tlog-checkpoint` in a `signed-note`) of a log
    /// that holds the report.
    pub checkpoint: String,
    /// The report's RFC 9162 inclusion proof against that checkpoint, hex, leaf to root.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub inclusion: Vec<Digest>,
    /// The consistency proof from the agent's last verified checkpoint (the size it sent, else
    /// the report's `witnessed`) to this one, hex; absent when it named none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>))]
    pub consistency: Option<Vec<Digest>>,
}

/// Why a receipt does not prove what it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the receipt is for other bytes than this report")]
    OtherReport,
    #[error("the report these bytes hold cannot be read: {0}")]
    Report(String),
    #[error("the receipt names host {host_id} seq {seq}, the report another")]
    OtherName { host_id: String, seq: u64 },
    #[error("the receipt's checkpoint is not the server's: {0}")]
    Checkpoint(CheckpointError),
    #[error("the report is not in the server's checkpoint of {size} entries: {error}")]
    NotIncluded { size: u64, error: ProofError },
    #[error("the server's checkpoint of {size} entries is older than the checkpoint of {witnessed} entries this agent verified before: the server rolled its log back")]
    RolledBack { size: u64, witnessed: u64 },
    #[error("the receipt has no consistency proof from the checkpoint of {witnessed} entries this agent verified before")]
    NoConsistencyProof { witnessed: u64 },
    #[error("the server's log of {size} entries is not an extension of the checkpoint of {witnessed} entries this agent verified before: it rewrote or forked history ({error})")]
    Inconsistent {
        witnessed: u64,
        size: u64,
        error: ProofError,
    },
}

/// The log origin of the server whose key is `server_key` (also the name its checkpoint notes
/// are signed under): `evidence-server/<key id>`.
pub fn server_origin(server_key: &[u8; PUBLIC_KEY_LEN]) -> String {
    format!("evidence-server/{}", crate::signing::key_id(server_key))
}

/// Verifies a checkpoint note from the server with key `server_key`, returning what a witness
/// keeps of it.
pub fn verify_server_checkpoint(
    note: &str,
    server_key: &[u8; PUBLIC_KEY_LEN],
) -> Result<Witnessed, CheckpointError> {
    let origin = server_origin(server_key);
    let checkpoint = checkpoint::verify_note_from(note, &origin, &origin, server_key)?;
    Ok(Witnessed {
        size: checkpoint.size,
        root: checkpoint.root,
    })
}

/// Checks that `new` extends `old` by `proof` (both checkpoints the witness verified).
pub fn verify_extension(
    old: &Witnessed,
    new: &Witnessed,
    proof: &[Digest],
) -> Result<(), ReceiptError> {
    if new.size < old.size {
        return Err(ReceiptError::RolledBack {
            size: new.size,
            witnessed: old.size,
        });
    }
    merkle::verify_consistency(old.size, new.size, &old.root, &new.root, proof).map_err(|error| {
        ReceiptError::Inconsistent {
            witnessed: old.size,
            size: new.size,
            error,
        }
    })
}

/// The log leaf of a report as the server records it (see [`crate::log_entry`]).
pub fn report_leaf_hash(report: &Report, digest: &Digest, received_at: &DateTime<Utc>) -> Digest {
    LogLeaf {
        kind: match report.kind {
            ReportKind::Full { .. } => EntryKind::Full,
            ReportKind::Attestation { .. } => EntryKind::Attestation,
        },
        host_id: &report.host_id,
        key_id: &report.key_id,
        seq: Some(report.seq),
        received_at: received_at.timestamp_micros(),
        digest,
    }
    .hash()
}

impl Receipt {
    /// Verifies the receipt for exactly these report bytes against the server key: the
    /// checkpoint's signature, the report's inclusion in it, and that the new checkpoint extends
    /// `witnessed`, the last checkpoint this agent verified (`None` before its first). Returns
    /// the new checkpoint, which the agent keeps as its witnessed one.
    pub fn verify(
        &self,
        server_key: &[u8; PUBLIC_KEY_LEN],
        report_bytes: &[u8],
        witnessed: Option<&Witnessed>,
    ) -> Result<Witnessed, ReceiptError> {
        let digest = Digest::of(report_bytes);
        if self.report_digest != digest {
            return Err(ReceiptError::OtherReport);
        }
        let report =
            Report::from_bytes(report_bytes).map_err(|e| ReceiptError::Report(e.to_string()))?;
        if report.host_id != self.host_id || report.seq != self.seq {
            return Err(ReceiptError::OtherName {
                host_id: self.host_id.clone(),
                seq: self.seq,
            });
        }
        let new = verify_server_checkpoint(&self.checkpoint, server_key)
            .map_err(ReceiptError::Checkpoint)?;
        let leaf = report_leaf_hash(&report, &digest, &self.received_at);
        merkle::verify_inclusion(&leaf, self.log_index, new.size, &self.inclusion, &new.root)
            .map_err(|error| ReceiptError::NotIncluded {
                size: new.size,
                error,
            })?;
        if let Some(witnessed) = witnessed {
            if new.size < witnessed.size {
                return Err(ReceiptError::RolledBack {
                    size: new.size,
                    witnessed: witnessed.size,
                });
            }
            let proof = self
                .consistency
                .as_deref()
                .ok_or(ReceiptError::NoConsistencyProof {
                    witnessed: witnessed.size,
                })?;
            verify_extension(witnessed, &new, proof)?;
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests;
