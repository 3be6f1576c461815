//! The JSON files of a bundle: the manifest, each entry's metadata, the consistency steps, the
//! host chains and the findings and status rows, with their exact wire form (snake_case enums,
//! RFC 3339 UTC times with microseconds, digests as lowercase hex). Unknown fields are refused.
//!
//! The server fills these in when it exports; `evidence-verify` parses them back and recomputes
//! each one it can from the signed entries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::log_entry::EntryKind;
use crate::log_entry::LogLeaf;
use crate::Digest;

/// The `format` of every v1 manifest (also the first line of `manifest.sig`'s text).
pub const FORMAT: &str = "evidence-bundle-v1";
/// `consistency.json`: `Vec<ConsistencyStep>`.
pub const CONSISTENCY: &str = "consistency.json";
/// `chains.json`: `Vec<HostChain>`.
pub const CHAINS: &str = "chains.json";
/// `findings.json`: `Vec<FindingRow>`.
pub const FINDINGS_JSON: &str = "findings.json";
/// `findings.csv`: the same rows as CSV ([`crate::bundle::findings_csv`]).
pub const FINDINGS_CSV: &str = "findings.csv";
/// `status.json`: `Vec<StatusRow>`.
pub const STATUS_JSON: &str = "status.json";
/// `status.csv`: the same rows as CSV ([`crate::bundle::status_csv`]).
pub const STATUS_CSV: &str = "status.csv";

/// `manifest.json`: what the bundle holds and how it was made. Serialised pretty, keys in
/// struct order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The checkpoint origin, which is also the note key name of the server's key:
    /// `evidence-server/<server key id>`.
    pub origin: String,
    /// The server's key id ([`crate::signing::key_id`]).
    pub server_key_id: String,
    /// What wrote the bundle, e.g. `evidence-server 0.1.0`.
    pub generator: String,
    pub selection: Selection,
    pub period: Period,
    /// The control catalog and mappings the rows were derived with.
    pub catalog: CatalogIdentity,
    /// The freshness bound the status rows were computed with.
    pub stale_after_secs: u64,
    /// The final checkpoint (`checkpoints/final.note`).
    pub checkpoint: TreeHead,
    /// Every file of the archive but `manifest.json` and `manifest.sig`, by path, with the
    /// SHA-256 of its bytes. [`crate::bundle::BundleWriter`] fills this in.
    pub files: BTreeMap<String, Digest>,
}

/// What the exporter was asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Host ids; empty means every host.
    pub hosts: Vec<String>,
    /// ISO/IEC 27002:2022 control ids; empty means every control.
    pub controls: Vec<String>,
    /// Microseconds since the epoch (RFC 3339 UTC on the wire).
    #[serde(with = "micros_opt")]
    pub from: Option<i64>,
    #[serde(with = "micros_opt")]
    pub to: Option<i64>,
}

/// The period the bundle covers, resolved: `from` is the earliest included report's receipt
/// time (or `selection.from`), `to` is `selection.to` or the export time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    #[serde(with = "micros")]
    pub from: i64,
    #[serde(with = "micros")]
    pub to: i64,
}

/// Which control catalog, crosswalk and check mappings a computation used: the controls
/// crate's version and the SHA-256 over its embedded data (`evidence_controls::catalog_identity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogIdentity {
    pub version: String,
    pub digest: Digest,
}

/// A tree size and root hash, as a checkpoint states them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeHead {
    pub size: u64,
    pub root: Digest,
}

/// `entries/<log index, 20 digits>.json`: one log entry's leaf fields, signature and
/// inclusion proof. Its bytes are in the `.body` file beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryMeta {
    pub log_index: u64,
    pub kind: EntryKind,
    /// The host (`-` for policy entries).
    pub host_id: String,
    /// The agent key that signed a report, the key a key event is about, or the server's key
    /// id for a policy entry.
    pub key_id: String,
    /// The report's sequence number; `None` for key events and policy entries.
    pub seq: Option<u64>,
    /// When the server received (or made) the entry.
    #[serde(with = "micros")]
    pub received_at: i64,
    /// SHA-256 of the `.body` file.
    pub digest: Digest,
    /// The agent's base64 Ed25519 signature over the body (reports). `None` for key events and
    /// policy entries, and for reports stored before signatures were kept (which do not verify).
    pub signature: Option<String>,
    /// Inclusion proof of the leaf against the final checkpoint (`manifest.checkpoint.size`).
    pub inclusion: Vec<Digest>,
}

impl EntryMeta {
    /// The Merkle leaf this entry commits to.
    pub fn leaf(&self) -> LogLeaf<'_> {
        LogLeaf {
            kind: self.kind,
            host_id: &self.host_id,
            key_id: &self.key_id,
            seq: self.seq,
            received_at: self.received_at,
            digest: &self.digest,
        }
    }
}

/// The body of a `key_event` entry as the server writes it (`domain::rules::key_event_body`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEventBody {
    /// Always `key_event`.
    #[serde(rename = "type")]
    pub kind: String,
    pub host_id: String,
    /// `enrolled`, `rekeyed`, `rotated`, `approved` (the key becomes the host's one active key)
    /// or `revoked` (the host is revoked: nothing it signs afterwards counts).
    pub event: String,
    pub key_id: String,
    /// Base64 Ed25519 public key.
    pub public_key: String,
    pub previous_key_id: Option<String>,
    pub authorized_by: String,
    pub at: String,
    #[serde(default)]
    pub proof: Option<serde_json::Value>,
}

/// `consistency.json`: a consistency proof from the tree of `from` leaves to that of `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyStep {
    pub from: u64,
    pub to: u64,
    pub proof: Vec<Digest>,
}

/// `chains.json`: one host's report chain over the period's reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostChain {
    pub host_id: String,
    pub first_seq: u64,
    pub last_seq: u64,
    /// How many reports of the host the period holds.
    pub reports: u64,
    /// Every discontinuity, sorted by (after_seq, before_seq, kind).
    pub gaps: Vec<ChainGap>,
}

/// A discontinuity between two consecutive reports of a host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainGap {
    pub after_seq: u64,
    pub before_seq: u64,
    pub kind: GapKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// Sequence numbers are missing (or repeat) between the two reports.
    SeqGap,
    /// The later report names another previous digest than the earlier report's.
    PrevDigestMismatch,
    /// The agent says it dropped reports before the later one.
    DroppedReports,
}

impl GapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GapKind::SeqGap => "seq_gap",
            GapKind::PrevDigestMismatch => "prev_digest_mismatch",
            GapKind::DroppedReports => "dropped_reports",
        }
    }
}

/// A check's verdict in a finding row (`evidence_controls::Status` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckVerdict {
    Pass,
    Fail,
    Error,
    NotApplicable,
}

impl CheckVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckVerdict::Pass => "pass",
            CheckVerdict::Fail => "fail",
            CheckVerdict::Error => "error",
            CheckVerdict::NotApplicable => "not_applicable",
        }
    }
}

/// A control's status in a status row (`evidence_controls::ControlStatus` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlVerdict {
    Pass,
    Fail,
    NotApplicable,
    Unknown,
}

impl ControlVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ControlVerdict::Pass => "pass",
            ControlVerdict::Fail => "fail",
            ControlVerdict::NotApplicable => "not_applicable",
            ControlVerdict::Unknown => "unknown",
        }
    }
}

/// `findings.json`: one check's verdict on one host as of `period.to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingRow {
    pub host_id: String,
    pub check: String,
    pub status: CheckVerdict,
    pub reason: Option<String>,
    /// The full report whose facts were evaluated.
    pub log_index: u64,
    pub report_digest: Digest,
    /// The policy entry in force at `period.to`; `None`: no policy entry yet, the default policy.
    pub policy_log_index: Option<u64>,
}

/// `status.json`: one control's status on one host as of `period.to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRow {
    pub host_id: String,
    pub control: String,
    pub status: ControlVerdict,
    /// Why, when it is not a pass (the failing checks, the staleness, the Statement of
    /// Applicability's justification), as the server's host page says it.
    pub reason: Option<String>,
    /// The host's latest report at or before `period.to` (what freshness was judged on);
    /// `None` when the host had sent none.
    pub log_index: Option<u64>,
    pub report_digest: Option<Digest>,
}

/// RFC 3339 UTC with microseconds on the wire, microseconds since the epoch in memory. Parsing
/// accepts only that one spelling (`...T00:00:00.000000Z`), so a time has one form.
pub(crate) mod micros {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::log_entry::format_micros;

    pub fn serialize<S: Serializer>(us: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_micros(*us))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    pub fn parse(text: &str) -> Result<i64, String> {
        let bad = || format!("{text:?} is not an RFC 3339 UTC time with microseconds");
        let time = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| bad())?;
        let us = time.timestamp_micros();
        if format_micros(us) != text {
            return Err(bad());
        }
        Ok(us)
    }
}

/// [`micros`] for optional times (`null` on the wire when absent).
pub(crate) mod micros_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::log_entry::format_micros;

    pub fn serialize<S: Serializer>(us: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match us {
            Some(us) => s.serialize_str(&format_micros(*us)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        text.map(|t| super::micros::parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}
