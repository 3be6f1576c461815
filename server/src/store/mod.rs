//! The evidence store: what the server keeps, behind the [`Store`] trait.
//!
//! The server (ingest writer, enrollment, API handlers) calls these methods; the SQLite
//! implementation lives in [`sqlite`], and a PostgreSQL implementation can implement the same
//! trait and pass the same tests. Rules that decide outcomes (enrollment, replay, chain gaps,
//! finding transitions) are pure functions in `crate::rules`, called by each implementation
//! inside its own transaction, so every backend decides alike.
//!
//! Kept per fleet: the raw evidence log (hash-chained, verbatim report bytes), per host the
//! latest facts, finding **transitions** (a row only when a check's status changes), per control
//! and host the current status, gap events, policy versions, enrollment secrets, API tokens.
//! Times are microseconds since the Unix epoch (UTC).

pub mod conformance;
pub mod sqlite;
mod sqlite_ingest;
mod sqlite_reads;
mod types;

pub use types::*;

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
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the server persists. Each method is one transaction.
pub trait Store: Send + Sync + 'static {
    // ---- enrollment and keys ----
    /// Applies the enrollment rules (`crate::rules::decide_enrollment`) atomically: checks and
    /// consumes the secret, creates or updates the host and key.
    fn enroll(&self, attempt: &EnrollAttempt) -> StoreResult<Result<EnrollOutcome, EnrollRefusal>>;
    /// Every key (active or pending) with its host, for the server's in-memory key cache.
    fn keys(&self) -> StoreResult<Vec<KeyRecord>>;
    /// Approves a pending key for a host (retiring the old one), recording the key event with
    /// the approving token's id `by`. False if there is no such pending key.
    fn approve_key(&self, host_id: &str, key_id: &str, now: i64, by: &str) -> StoreResult<bool>;
    /// Replaces a host's active key with a new one, on the authority of a request signed by the
    /// current key (verified by the caller); the key event and its proof go in the log.
    fn rotate_key(
        &self,
        rotation: &KeyRotation,
    ) -> StoreResult<Result<EnrollOutcome, RotateRefusal>>;
    /// Revokes a host: its keys stop working and it cannot enroll again. False if unknown.
    fn revoke_host(&self, host_id: &str, now: i64) -> StoreResult<bool>;

    // ---- enrollment secrets and API tokens (secrets stored as SHA-256 hashes) ----
    fn create_secret(&self, secret: &SecretRecord) -> StoreResult<()>;
    fn secrets(&self) -> StoreResult<Vec<SecretRecord>>;
    fn revoke_secret(&self, id: &str, now: i64) -> StoreResult<bool>;
    fn create_token(&self, token: &TokenRecord) -> StoreResult<()>;
    fn tokens(&self) -> StoreResult<Vec<TokenRecord>>;
    /// Revokes a token, unless it is the last active admin token.
    fn revoke_token(&self, id: &str, now: i64) -> StoreResult<TokenRevocation>;

    // ---- audit trail of admin and policy changes ----
    fn record_audit(&self, event: &AuditRecord) -> StoreResult<()>;
    /// The latest `limit` audit records, newest first.
    fn audit(&self, limit: usize) -> StoreResult<Vec<AuditRecord>>;

    // ---- ingest ----
    /// Appends a batch of verified reports in ONE transaction (group commit), applying the
    /// replay and chain rules per item in order. Returns one result per item; an `Err` item
    /// changed nothing. Nothing is visible (nor acknowledged) before the commit.
    fn append_reports(
        &self,
        batch: &[AppendItem],
    ) -> StoreResult<Vec<Result<Appended, AppendRefusal>>>;
    /// Replaces hosts' current findings after a policy change (transitions at `at`).
    fn apply_findings(&self, updates: &[FindingsUpdate], at: i64) -> StoreResult<()>;

    // ---- reads ----
    fn hosts(&self) -> StoreResult<Vec<HostSummary>>;
    fn host(&self, host_id: &str) -> StoreResult<Option<HostDetail>>;
    /// Every host's latest full report (verbatim bytes; facts are parsed from them): for
    /// re-evaluation after a policy change. Facts are not stored a second time.
    fn latest_facts(&self) -> StoreResult<Vec<(String, Vec<u8>)>>;
    /// Every host's finding states as of `at` (latest transition at or before it), and each
    /// host's last report time at or before `at`. `at = i64::MAX` gives the current state.
    /// Streams every host (ordered by host id) to `f`, so 100,000 hosts never sit in memory
    /// in this wide form at once.
    fn for_each_host_at(&self, at: i64, f: &mut dyn FnMut(HostFindings)) -> StoreResult<()>;
    /// [`Store::for_each_host_at`], collected.
    fn fleet_at(&self, at: i64) -> StoreResult<Vec<HostFindings>> {
        let mut out = Vec::new();
        self.for_each_host_at(at, &mut |h| out.push(h))?;
        Ok(out)
    }
    /// Current failing/erroring findings for these checks, with evidence (one control's page).
    fn findings_for_checks(&self, checks: &[String]) -> StoreResult<Vec<StoredFinding>>;
    /// One stored report's verbatim bytes.
    fn report_bytes(&self, log_index: u64) -> StoreResult<Option<Vec<u8>>>;
    /// Walks the whole evidence log, recomputing each digest from the stored bytes and the
    /// chain hash; returns the number of entries and the head.
    fn verify_log(&self) -> StoreResult<Result<(u64, Digest), LogBreak>>;
    /// Counters for `/metrics`.
    fn counts(&self) -> StoreResult<Counts>;

    // ---- policy ----
    /// Records a policy version (JSON of `crate::policy::OrgPolicy`) effective from `at`.
    fn set_policy(&self, policy_json: &str, at: i64) -> StoreResult<()>;
    /// The policy in force at `at` (latest version at or before it).
    fn policy_at(&self, at: i64) -> StoreResult<Option<String>>;
}
