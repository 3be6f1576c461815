//! The server's typed records: what enrollment, ingest and the reads pass between the
//! services, the rules and the [`crate::store::Store`] backends. No I/O.

use evidence_controls::Status;
use evidence_protocol::api::HostIdentity;
use evidence_protocol::Digest;
use serde::Serialize;

/// An enrollment attempt whose signature (proof of key possession) was already verified.
#[derive(Debug, Clone)]
pub struct EnrollAttempt {
    /// SHA-256 of the presented secret's random part, and the secret id it names.
    pub secret_id: String,
    pub secret_hash: [u8; 32],
    pub public_key: [u8; 32],
    pub key_id: String,
    pub identity: HostIdentity,
    pub agent_version: String,
    /// A host id to use if this is a new host.
    pub new_host_id: String,
    pub now: i64,
}

/// Enrollment accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollOutcome {
    pub host_id: String,
    pub key_id: String,
    pub last_seq: u64,
    pub last_digest: Option<Digest>,
    /// The key event recorded (`enrolled`, `rekeyed`, `rotated`); `None` for a retry.
    pub event: Option<KeyEventKind>,
}

/// What happened to a host's keys (kept in `key_events` and, but for `pending`, in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyEventKind {
    /// A new host's first key (fleet secret).
    Enrolled,
    /// A known host asked for a new key with a fleet secret: kept pending, not trusted.
    Pending,
    /// The host's current key signed a request naming the new key.
    Rotated,
    /// An admin-created secret for this one host brought the new key.
    Rekeyed,
    /// An admin approved a pending key.
    Approved,
    /// An admin revoked the host: no report of it is accepted after this (names the key that
    /// was active).
    Revoked,
}

impl KeyEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyEventKind::Enrolled => "enrolled",
            KeyEventKind::Pending => "pending",
            KeyEventKind::Rotated => "rotated",
            KeyEventKind::Rekeyed => "rekeyed",
            KeyEventKind::Approved => "approved",
            KeyEventKind::Revoked => "revoked",
        }
    }
}

/// A key change to record: in the host's key history and (but for a pending key) in the
/// evidence log (`crate::rules::key_event_body`).
/// Role of an API token: a reader reads, an admin also changes.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Reader,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "reader" => Some(Role::Reader),
            _ => None,
        }
    }
}

/// Where a host key stands: `pending` (waiting for approval, never trusted), `active` (the one
/// key that signs the host's reports), `retired` (replaced; never accepted again).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Pending,
    Active,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }

    /// Parses a stored state; `None` for anything else (corrupt data).
    pub fn parse(s: &str) -> Option<KeyState> {
        Some(match s {
            "pending" => KeyState::Pending,
            "active" => KeyState::Active,
            "retired" => KeyState::Retired,
            _ => return None,
        })
    }
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct KeyChange<'a> {
    pub host_id: &'a str,
    pub event: KeyEventKind,
    pub key_id: &'a str,
    pub public_key: &'a [u8; 32],
    pub previous_key_id: Option<&'a str>,
    pub authorized_by: &'a str,
    pub at: i64,
    pub proof: Option<&'a serde_json::Value>,
}

/// A key rotation signed by the host's current key (and by the new key, proving possession).
#[derive(Debug, Clone)]
pub struct KeyRotation {
    pub host_id: String,
    pub previous_key_id: String,
    pub key_id: String,
    pub public_key: [u8; 32],
    /// The signed request and both signatures, kept in the evidence log for auditors.
    pub proof: serde_json::Value,
    pub now: i64,
}

/// A rotation refused by the store (the current key is no longer the host's active key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateRefusal {
    HostRevoked,
    KeyNotActive,
    KeyInUse,
}

/// One key change in a host's history.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KeyEvent {
    pub event: KeyEventKind,
    pub key_id: String,
    pub previous_key_id: Option<String>,
    pub authorized_by: String,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// Where the event sits in the evidence log (pending keys are not logged).
    pub log_index: Option<u64>,
}

/// One of a host's keys.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HostKey {
    pub key_id: String,
    pub state: KeyState,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub retired_at: Option<i64>,
}

/// An admin or policy change: who (token id), what, when.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub actor: String,
    pub event: String,
    pub target: String,
    pub detail: String,
}

/// The result of revoking an API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRevocation {
    Revoked,
    NotFound,
    /// The token is the last active admin token: revoking it would lock every admin out.
    LastAdmin,
}

/// Enrollment refused, with the reason the API reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollRefusal {
    BadSecret,
    SecretExpired,
    SecretRevoked,
    SecretUsed,
    HostRevoked,
    /// Known host, new key, fleet secret: the key is recorded as pending approval.
    KeyChangeNeedsApproval {
        host_id: String,
    },
    /// The key is already enrolled for another host.
    KeyInUse,
    /// The secret was created to re-key another host.
    SecretForAnotherHost,
    /// The host, or the secret, already has as many pending keys as allowed.
    TooManyPendingKeys,
}

/// A key the server knows.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub key_id: String,
    pub host_id: String,
    pub public_key: [u8; 32],
    /// `active`, `pending` (awaiting approval) or `retired`.
    pub state: KeyState,
    pub host_revoked: bool,
    /// When the host enrolled: no report may say it was collected long before.
    pub host_enrolled_at: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SecretRecord {
    pub id: String,
    #[serde(skip)]
    pub hash: [u8; 32],
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: i64,
    pub single_use: bool,
    pub uses: u64,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<i64>,
    pub note: String,
    /// Set: this secret re-keys that one host (and nothing else). `None`: a fleet secret.
    pub host_id: Option<String>,
}

impl SecretRecord {
    /// A new, unused secret with id and hash from `auth::generate`, valid `life_secs` from `now`.
    pub fn issued(
        id: String,
        hash: [u8; 32],
        now: i64,
        life_secs: i64,
        single_use: bool,
        note: String,
        host_id: Option<String>,
    ) -> Self {
        Self {
            id,
            hash,
            created_at: now,
            expires_at: now + life_secs * 1_000_000,
            single_use,
            uses: 0,
            revoked_at: None,
            note,
            host_id,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenRecord {
    pub id: String,
    #[serde(skip)]
    pub hash: [u8; 32],
    /// `admin` or `reader`.
    pub role: Role,
    pub name: String,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<i64>,
}

/// One finding as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredFinding {
    pub host_id: String,
    pub check: String,
    pub status: Status,
    pub reason: Option<String>,
    /// Evidence JSON text.
    #[serde(skip)]
    pub evidence: String,
    #[serde(serialize_with = "crate::time::ser")]
    pub since: i64,
}

/// A verified, parsed report on its way into the store.
#[derive(Debug, Clone)]
pub struct AppendItem {
    pub host_id: String,
    pub key_id: String,
    pub seq: u64,
    pub prev_digest: Option<Digest>,
    pub digest: Digest,
    pub bytes: Vec<u8>,
    pub collected_at: i64,
    pub received_at: i64,
    pub dropped_reports: u64,
    pub agent_version: String,
    pub content: AppendContent,
    /// The agent's base64 signature over `bytes`, kept beside them for evidence bundles.
    pub signature: Option<String>,
}

#[derive(Debug, Clone)]
pub enum AppendContent {
    /// Facts JSON and the findings computed from them.
    Full {
        findings: Vec<NewFinding>,
    },
    Attestation {
        still_holds: Digest,
    },
}

/// A finding to store (check id, status, reason, evidence JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct NewFinding {
    pub check: String,
    pub status: Status,
    pub reason: Option<String>,
    pub evidence: String,
}

/// New current findings for one host (after a policy change).
#[derive(Debug, Clone)]
pub struct FindingsUpdate {
    pub host_id: String,
    pub findings: Vec<NewFinding>,
}

/// A report stored: what the receipt says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub digest: Digest,
    pub host_id: String,
    pub seq: u64,
    pub received_at: i64,
    pub log_index: u64,
    pub chain_hash: Digest,
    /// True when these exact bytes were already stored (a retry): the original receipt.
    pub duplicate: bool,
    /// Gap events recorded with this report.
    pub gaps: Vec<String>,
}

/// A report refused by the store's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendRefusal {
    Replay { last_seq: u64 },
    UnknownHost,
    HostRevoked,
    KeyNotActive,
    AttestationMismatch,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HostSummary {
    pub host_id: String,
    pub machine_id: String,
    pub hostname: String,
    pub hardware_serial: Option<String>,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub enrolled_at: i64,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<i64>,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<i64>,
    pub last_seq: u64,
    pub agent_version: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Transition {
    pub check: String,
    pub status: String,
    pub reason: Option<String>,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub log_index: Option<u64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GapEvent {
    pub kind: String,
    pub detail: String,
    pub dropped: u64,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub log_index: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LogEntry {
    pub log_index: u64,
    pub seq: u64,
    pub digest: String,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: i64,
    pub kind: String,
}

#[derive(Debug, Clone)]
pub struct HostDetail {
    pub summary: HostSummary,
    /// The verbatim bytes of the host's latest full report (its facts are read from them).
    pub latest_full_report: Option<Vec<u8>>,
    pub facts_collected_at: Option<i64>,
    pub findings: Vec<StoredFinding>,
    pub transitions: Vec<Transition>,
    pub gaps: Vec<GapEvent>,
    pub reports: Vec<LogEntry>,
    pub keys: Vec<HostKey>,
    pub key_events: Vec<KeyEvent>,
}

/// One host's finding states at some time.
#[derive(Debug, Clone)]
pub struct HostFindings {
    pub host_id: String,
    pub hostname: String,
    pub last_seen: Option<i64>,
    pub revoked: bool,
    /// (check, status, reason), sorted by check.
    pub findings: Vec<(String, Status, Option<String>)>,
}

/// Where the evidence log's chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LogBreak {
    pub log_index: u64,
    pub problem: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub hosts: u64,
    pub revoked_hosts: u64,
    pub reports: u64,
    pub gaps: u64,
    pub transitions: u64,
    /// Keys waiting for an admin's approval.
    pub pending_keys: u64,
}

/// A checkpoint the server signed: the tree size and root, and the signed note (C2SP
/// `tlog-checkpoint` in a `signed-note`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: Digest,
    pub note: String,
    pub at: i64,
}

/// Which evidence-log entries an export reads ([`crate::store::Store::log_entries`]): the
/// entries of these kinds below log index `below`, of these hosts, received within `received`
/// (inclusive), in log order, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFilter {
    pub kinds: Vec<evidence_protocol::bundle::EntryKind>,
    /// `None`: every host.
    pub hosts: Option<Vec<String>>,
    /// `None`: any time.
    pub received: Option<(i64, i64)>,
    /// Entries with a log index below this (the final checkpoint's size).
    pub below: u64,
    pub limit: usize,
}

/// One evidence-log entry's fields without its body: what a bundle's `entries/*.json` states
/// (with the inclusion proof the exporter adds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntryMeta {
    pub log_index: u64,
    pub kind: evidence_protocol::bundle::EntryKind,
    pub host_id: String,
    pub key_id: String,
    pub seq: Option<u64>,
    pub received_at: i64,
    pub digest: Digest,
    /// The agent's base64 signature over the body (reports stored since migration 0005).
    pub signature: Option<String>,
}
