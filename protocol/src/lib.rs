//! Wire types shared by `evidence-agent` and `evidence-server`.
//!
//! Data flows one way: collectors observe a host and fill in [`Facts`]; the agent wraps them in a
//! report and signs it; the server verifies the signature, stores the signed bytes verbatim and
//! evaluates the facts with the `evidence-controls` crate. Everything here is plain data with a
//! stable JSON form: maps are `BTreeMap`s and lists are sorted by the producer, so the same host
//! state always serialises to the same bytes.
//!
//! The list of collectors is written once, in [`for_each_collector!`] (`registry.rs`); the
//! fact modules, [`Facts`] and [`CollectorName`] are generated from it.

mod collector_name;
pub mod facts;
mod observation;
mod platform;
mod registry;

pub use collector_name::{CollectorName, UnknownCollector};
pub use facts::Facts;
pub use observation::Observation;
pub use platform::Platform;

// Signed reports, receipts and the agent-facing API (issue: signed reports and the server).
pub mod api;
mod digest;
#[cfg(feature = "pinning")]
pub mod pinning;
pub mod receipt;
pub mod report;
pub mod signing;

pub use digest::{Digest, DigestParseError};
pub use receipt::{log_chain_next, LegacyReceipt, Receipt, ReceiptError, SignedLegacyReceipt};
pub use report::{report_digest, Report, ReportKind, SignedReport, Witnessed};
pub use signing::SigningKey;

// The evidence log as a transparency log (issue 9): RFC 9162 Merkle tree and proofs, C2SP
// signed checkpoints. Shared by the server, the agents (witnesses) and evidence-verify.
pub mod checkpoint;
pub mod log_entry;
pub mod merkle;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use log_entry::{EntryKind, LogLeaf};
pub use merkle::{CompactRange, LeafHashes, ProofError};

// Evidence bundles: what the server exports and evidence-verify checks offline.
pub mod bundle;
