//! What a leaf of the evidence log's Merkle tree commits to. Each entry's leaf is the hash of a
//! small canonical text naming everything an auditor relies on (the kind of entry, the host,
//! the signing key, the report's sequence number, when the server received it, and the digest
//! of the stored bytes), so an inclusion proof proves those, not only the bytes.
//!
//! The server writes these leaves (`evidence-server`), the agents recompute their own report's
//! leaf to check a receipt, and `evidence-verify` recomputes every leaf of a bundle.

use chrono::{SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::merkle::leaf_hash;
use crate::Digest;

/// The kind of an evidence-log entry (the leaf's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A full report (JSON `Report` with facts).
    Full,
    /// An attestation report (JSON `Report` naming an earlier full report).
    Attestation,
    /// A key event of a host (enrolled, rotated, approved, revoked...).
    KeyEvent,
    /// A policy version (JSON `OrgPolicy`).
    Policy,
}

impl EntryKind {
    /// The wire name, as in the log leaf.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Full => "full",
            EntryKind::Attestation => "attestation",
            EntryKind::KeyEvent => "key_event",
            EntryKind::Policy => "policy",
        }
    }

    /// The kind named `name` in a leaf (the store's column), if any.
    pub fn parse(name: &str) -> Option<Self> {
        [
            EntryKind::Full,
            EntryKind::Attestation,
            EntryKind::KeyEvent,
            EntryKind::Policy,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }

    /// Whether entries of this kind are agent reports.
    pub fn is_report(self) -> bool {
        matches!(self, EntryKind::Full | EntryKind::Attestation)
    }
}

/// One evidence-log entry as its Merkle leaf sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLeaf<'a> {
    pub kind: EntryKind,
    pub host_id: &'a str,
    pub key_id: &'a str,
    /// The report's sequence number (`None` for key events and policy versions).
    pub seq: Option<u64>,
    /// When the server received (or made) the entry, microseconds since the Unix epoch, UTC.
    pub received_at: i64,
    /// SHA-256 of the entry's stored bytes.
    pub digest: &'a Digest,
}

impl LogLeaf<'_> {
    /// The canonical text: a version line, then one `key=value` line per field, in this order;
    /// the time in RFC 3339 UTC with microseconds.
    pub fn bytes(&self) -> Vec<u8> {
        format!(
            "evidence-log-entry-v1\nkind={}\nhost_id={}\nkey_id={}\nseq={}\nreceived_at={}\ndigest={}\n",
            self.kind.as_str(),
            self.host_id,
            self.key_id,
            self.seq.map_or_else(|| "-".to_string(), |s| s.to_string()),
            format_micros(self.received_at),
            self.digest.to_hex(),
        )
        .into_bytes()
    }

    /// The leaf hash, `SHA-256(0x00 || bytes)`.
    pub fn hash(&self) -> Digest {
        leaf_hash(&self.bytes())
    }
}

/// A time in microseconds since the epoch as RFC 3339 UTC with microseconds (`...123456Z`).
pub fn format_micros(us: i64) -> String {
    Utc.timestamp_micros(us)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leaf_names_every_field_so_changing_one_changes_the_hash() {
        let digest = Digest::of(b"report");
        let leaf = LogLeaf {
            kind: EntryKind::Full,
            host_id: "h",
            key_id: "k",
            seq: Some(7),
            received_at: 1_764_633_600_000_001,
            digest: &digest,
        };
        assert_eq!(
            String::from_utf8(leaf.bytes()).unwrap(),
            format!(
                "evidence-log-entry-v1\nkind=full\nhost_id=h\nkey_id=k\nseq=7\nreceived_at=2025-12-02T00:00:00.000001Z\ndigest={}\n",
                digest.to_hex()
            )
        );
        let other = LogLeaf {
            seq: Some(8),
            ..leaf.clone()
        };
        assert_ne!(leaf.hash(), other.hash());
    }
}
