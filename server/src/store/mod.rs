//! The evidence store: what the server keeps, behind the async [`Store`] trait.
//!
//! The trait speaks domain types ([`crate::domain::records`]) and holds no SQL dialect: each
//! backend (SQLite in [`sqlite`]; PostgreSQL next) gathers the inputs inside its own
//! transaction and applies the pure rules of [`crate::domain::rules`] (enrollment, replay,
//! retries, attestations, chain gaps, finding transitions), so every backend decides alike. The
//! [`conformance`] suite is one test per behaviour, run against every backend.
//!
//! Kept per fleet: the raw evidence log (hash-chained, verbatim report bytes), per host the
//! latest facts, finding **transitions** (a row only when a check's status changes), gap events,
//! policy versions, enrollment secrets, API tokens, key events, the audit trail. Times are
//! microseconds since the Unix epoch (UTC).

#[cfg(test)]
mod conformance;
pub mod sqlite;
mod sqlite_export;
mod sqlite_ingest;
mod sqlite_reads;
mod sqlite_tree;
mod sqlite_verify;

use std::sync::Arc;

pub use crate::domain::records::*;
use crate::domain::status::{CheckIndex, HostState};

use evidence_protocol::Digest;

/// Storage errors (backend failures; refusals are typed results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("not found")]
    NotFound,
    #[error("signing the checkpoint: {0}")]
    Signing(String),
}

/// Signs the checkpoint a group commit produced, inside its transaction (the server's key; the
/// store never holds it): a committed batch always has its checkpoint.
pub trait CheckpointSigner: Send + Sync {
    /// The signed note of the checkpoint of `size` entries with root `root`.
    fn sign(&self, size: u64, root: &Digest) -> Result<String, String>;
}

/// What a batch did to the log's tree: the right edge before it, its leaves in order, and the
/// checkpoint signed after them (from which every new leaf's inclusion proof is computed in
/// memory: `evidence_protocol::merkle::Extended`).
#[derive(Debug, Clone)]
pub struct TreeGrowth {
    pub before: evidence_protocol::CompactRange,
    pub leaves: Vec<Digest>,
    pub checkpoint: StoredCheckpoint,
}

/// The outcome of a group commit: one result per item, and the tree's growth (`None` when the
/// batch appended nothing: every item refused or a retry).
#[derive(Debug, Clone)]
pub struct AppendBatch {
    pub results: Vec<Result<Appended, AppendRefusal>>,
    pub growth: Option<TreeGrowth>,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the server persists. Each method is one transaction.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- enrollment and keys ----
    /// Applies the enrollment rules (`rules::decide_enrollment`) atomically: checks and
    /// consumes the secret, creates or updates the host and key.
    async fn enroll(
        &self,
        attempt: &EnrollAttempt,
    ) -> StoreResult<Result<EnrollOutcome, EnrollRefusal>>;
    /// Every key (active, pending or retired) with its host, for the key cache.
    async fn keys(&self) -> StoreResult<Vec<KeyRecord>>;
    /// Approves a pending key for a host (retiring the old one), recording the key event with
    /// the approving token's id `by`. False if there is no such pending key.
    async fn approve_key(
        &self,
        host_id: &str,
        key_id: &str,
        now: i64,
        by: &str,
    ) -> StoreResult<bool>;
    /// Replaces a host's active key with a new one, on the authority of a request signed by the
    /// current key (verified by the caller); the key event and its proof go in the log.
    async fn rotate_key(
        &self,
        rotation: &KeyRotation,
    ) -> StoreResult<Result<EnrollOutcome, RotateRefusal>>;
    /// Revokes a host: its keys stop working and it cannot enroll again. False if unknown.
    async fn revoke_host(&self, host_id: &str, authorized_by: &str, now: i64) -> StoreResult<bool>;

    // ---- enrollment secrets and API tokens (secrets stored as SHA-256 hashes) ----
    async fn create_secret(&self, secret: &SecretRecord) -> StoreResult<()>;
    async fn secrets(&self) -> StoreResult<Vec<SecretRecord>>;
    async fn revoke_secret(&self, id: &str, now: i64) -> StoreResult<bool>;
    async fn create_token(&self, token: &TokenRecord) -> StoreResult<()>;
    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>>;
    /// Revokes a token, unless it is the last active admin token.
    async fn revoke_token(&self, id: &str, now: i64) -> StoreResult<TokenRevocation>;

    // ---- audit trail of admin and policy changes ----
    async fn record_audit(&self, event: &AuditRecord) -> StoreResult<()>;
    /// The latest `limit` audit records, newest first.
    async fn audit(&self, limit: usize) -> StoreResult<Vec<AuditRecord>>;

    // ---- ingest ----
    /// Appends a batch of verified reports in ONE transaction (group commit), applying the
    /// ingest rules per item in order. Returns one result per item; an `Err` item changed
    /// nothing. Nothing is visible (nor acknowledged) before the commit.
    async fn append_reports(
        &self,
        batch: &[AppendItem],
        signer: Arc<dyn CheckpointSigner>,
    ) -> StoreResult<AppendBatch>;
    /// Replaces hosts' current findings after a policy change (transitions at `at`).
    async fn apply_findings(&self, updates: &[FindingsUpdate], at: i64) -> StoreResult<()>;

    // ---- reads ----
    async fn hosts(&self) -> StoreResult<Vec<HostSummary>>;
    async fn host(&self, host_id: &str) -> StoreResult<Option<HostDetail>>;
    /// Every host's latest full report (verbatim bytes; facts are parsed from them): for
    /// re-evaluation after a policy change. Facts are not stored a second time.
    async fn latest_facts(&self) -> StoreResult<Vec<(String, Vec<u8>)>>;
    /// Every host's state as of `at` (latest finding transition at or before it, last report
    /// at or before it), compact, ordered by host id. `at = i64::MAX` gives the current state.
    async fn fleet_at(
        &self,
        at: i64,
        index: Arc<CheckIndex>,
    ) -> StoreResult<Vec<(String, HostState)>>;
    /// Current failing/erroring findings for these checks, with evidence (one control's page).
    async fn findings_for_checks(&self, checks: &[String]) -> StoreResult<Vec<StoredFinding>>;
    /// One stored report's verbatim bytes.
    async fn report_bytes(&self, log_index: u64) -> StoreResult<Option<Vec<u8>>>;
    /// Walks the whole evidence log, recomputing each digest from the stored bytes and the
    /// chain hash; returns the number of entries and the head.
    async fn verify_log(&self) -> StoreResult<Result<(u64, Digest), LogBreak>>;
    /// For deep verification (`verify-log --deep`): up to `limit` hosts with ids after `after`
    /// (from the first with `None`), in host-id order, revoked ones included, each with where
    /// `latest_facts` points, its latest `full` entry found by scanning the log (index and
    /// verbatim bytes), its current findings and the last finding transition per check. One
    /// page is one consistent read.
    async fn derived_hosts(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Vec<crate::domain::deep_verify::HostDerived>>;
    /// Counters for `/metrics`.
    async fn counts(&self) -> StoreResult<Counts>;

    // ---- the log's Merkle tree ----
    /// The tree's size (every entry of the evidence log is a leaf) and root.
    async fn tree_head(&self) -> StoreResult<(u64, Digest)>;
    /// The inclusion proof of entry `index` in the tree of `size` leaves (RFC 9162), with the
    /// entry's leaf hash; `None` when `index` or `size` is beyond the log.
    async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> StoreResult<Option<(Digest, Vec<Digest>)>>;
    /// The consistency proof from the tree of `from` leaves to the tree of `to` leaves; `None`
    /// when the sizes are out of order or beyond the log.
    async fn consistency_proof(&self, from: u64, to: u64) -> StoreResult<Option<Vec<Digest>>>;
    /// Keeps a signed checkpoint (sizes only grow: an older or equal size is ignored).
    async fn record_checkpoint(&self, checkpoint: &StoredCheckpoint) -> StoreResult<()>;
    /// The latest signed checkpoint, if any.
    async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>>;
    /// The signed checkpoint of exactly `size` leaves, if the server signed one.
    async fn checkpoint(&self, size: u64) -> StoreResult<Option<StoredCheckpoint>>;

    // ---- policy ----
    /// Records a policy version (JSON of `evidence_controls::OrgPolicy`) effective from `at`, and
    /// in the same transaction appends it to the evidence log (kind `policy`, host `-`, key id
    /// `key_id`: the server key's, seq none, received at `at`, body the JSON's bytes); returns
    /// the entry's log index.
    async fn set_policy(&self, policy_json: &str, at: i64, key_id: &str) -> StoreResult<u64>;
    /// Appends an evidence-log entry (as [`Store::set_policy`] does) for every policy version
    /// that has none (stored before policies were logged), in order of `at`; returns how many.
    /// The server calls it at start, with its key's id.
    async fn log_policy_versions(&self, key_id: &str) -> StoreResult<u64>;
    /// The policy in force at `at` (latest version at or before it).
    async fn policy_at(&self, at: i64) -> StoreResult<Option<String>>;

    // ---- evidence bundles (reads for the exporter) ----
    /// The entries `filter` selects, without bodies, in log order (at most `filter.limit`).
    async fn log_entries(&self, filter: &EntryFilter) -> StoreResult<Vec<LogEntryMeta>>;
    /// Per host (`None`: every host), its last report (full or attestation, latest
    /// `received_at`, then highest index) received before `before` with an index below `below`.
    async fn last_reports_before(
        &self,
        hosts: Option<&[String]>,
        before: i64,
        below: u64,
    ) -> StoreResult<Vec<LogEntryMeta>>;
    /// The full reports with these (host, digest), below index `below` (the lowest index when
    /// one digest appears twice); pairs not found are left out.
    async fn full_reports_by_digest(
        &self,
        wanted: &[(String, Digest)],
        below: u64,
    ) -> StoreResult<Vec<LogEntryMeta>>;
    /// The stored bytes of these entries, by index (indexes not in the log are left out).
    async fn log_bodies(&self, indexes: &[u64]) -> StoreResult<Vec<(u64, Vec<u8>)>>;
    /// The signed checkpoints with `from <= size <= to`, ascending.
    async fn checkpoints_between(&self, from: u64, to: u64) -> StoreResult<Vec<StoredCheckpoint>>;
    /// The leaf hashes of the first `size` entries (fewer when the tree is smaller), in order:
    /// every proof of an export computed in memory from one read.
    async fn leaf_hashes(&self, size: u64) -> StoreResult<Vec<Digest>>;
}
