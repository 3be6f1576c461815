//! Pure decision rules shared by every `Store` backend: enrollment, report ingest (replay,
//! retries, attestations, chain breaks and dropped reports) and how findings become
//! transitions. No I/O: each backend gathers the inputs inside its transaction, calls these, and
//! applies the decision, so every backend decides alike.

use std::collections::BTreeMap;

use evidence_controls::Status;
use evidence_protocol::Digest;

use super::records::{
    AppendContent, AppendItem, AppendRefusal, Appended, EnrollRefusal, KeyChange, KeyState,
    NewFinding, SecretRecord,
};

/// Most keys one host may have waiting for approval: more is an attack or a broken install.
pub const MAX_PENDING_KEYS_PER_HOST: u64 = 3;
/// Most pending keys one fleet secret may have brought (a leaked secret cannot queue thousands).
pub const MAX_PENDING_KEYS_PER_SECRET: u64 = 100;

/// What the secret, host and key look like when an enrollment arrives.
pub struct EnrollInputs<'a> {
    pub secret: Option<&'a SecretRecord>,
    /// The presented secret's hash matched the stored one (compared in constant time).
    pub secret_matches: bool,
    /// The host with this machine id: (host id, revoked).
    pub host: Option<(&'a str, bool)>,
    /// Who holds the presented key already: (host id, state).
    pub key_owner: Option<(&'a str, KeyState)>,
    /// Keys pending approval for this host, and brought by this secret.
    pub pending_for_host: u64,
    pub pending_for_secret: u64,
    pub now: i64,
}

/// What to do with an accepted enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollAction {
    /// Same host, same active key: answer again, change nothing.
    Existing,
    /// A new host with this key; consume the secret.
    NewHost,
    /// Known host, new key, a secret an admin created for this host: the new key replaces the
    /// active one.
    Rekey,
    /// Known host, new key, a fleet secret: record the key as pending (the host keeps its
    /// current key) and refuse. A fleet-wide secret is never a host identity.
    Pending,
}

/// The enrollment rules (see `evidence_protocol::api::EnrollRequest`).
pub fn decide_enrollment(i: &EnrollInputs) -> Result<EnrollAction, EnrollRefusal> {
    if let Some((_, true)) = i.host {
        return Err(EnrollRefusal::HostRevoked);
    }
    let mut already_pending = false;
    if let Some((owner, state)) = i.key_owner {
        if i.host.map(|h| h.0) != Some(owner) {
            return Err(EnrollRefusal::KeyInUse);
        }
        match state {
            // A retry of an accepted enrollment by the key's holder (the request is signed by
            // the active key): the secret must still be the one presented.
            KeyState::Active => {
                return if i.secret.is_some() && i.secret_matches {
                    Ok(EnrollAction::Existing)
                } else {
                    Err(EnrollRefusal::BadSecret)
                };
            }
            KeyState::Pending => already_pending = true,
            KeyState::Retired => return Err(EnrollRefusal::KeyInUse),
        }
    }
    let secret = match i.secret {
        Some(s) if i.secret_matches => s,
        _ => return Err(EnrollRefusal::BadSecret),
    };
    if secret.revoked_at.is_some() {
        return Err(EnrollRefusal::SecretRevoked);
    }
    if secret.expires_at <= i.now {
        return Err(EnrollRefusal::SecretExpired);
    }
    if secret.single_use && secret.uses > 0 {
        return Err(EnrollRefusal::SecretUsed);
    }
    match (&secret.host_id, i.host) {
        (Some(bound), Some((host, _))) if bound == host => Ok(EnrollAction::Rekey),
        (Some(_), _) => Err(EnrollRefusal::SecretForAnotherHost),
        (None, None) => Ok(EnrollAction::NewHost),
        (None, Some(_)) => {
            if !already_pending
                && (i.pending_for_host >= MAX_PENDING_KEYS_PER_HOST
                    || i.pending_for_secret >= MAX_PENDING_KEYS_PER_SECRET)
            {
                return Err(EnrollRefusal::TooManyPendingKeys);
            }
            Ok(EnrollAction::Pending)
        }
    }
}

/// The evidence-log entry for a key change: the server's own record (JSON, fields in this
/// order), hash-chained like reports, so a verifier sees which key signed a host's reports
/// when, and on whose authority.
pub fn key_event_body(c: &KeyChange) -> Vec<u8> {
    let body = serde_json::json!({
        "type": "key_event",
        "host_id": c.host_id,
        "event": c.event.as_str(),
        "key_id": c.key_id,
        "public_key": evidence_protocol::signing::b64(c.public_key),
        "previous_key_id": c.previous_key_id,
        "authorized_by": c.authorized_by,
        "at": crate::time::fmt(c.at),
        "proof": c.proof,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// What a backend knows of a host's report chain when a report arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    pub revoked: bool,
    /// The signing key's state for this host (`None`: not this host's key).
    pub key_state: Option<KeyState>,
    pub last_seq: u64,
    pub last_digest: Option<Digest>,
    pub last_full_digest: Option<Digest>,
}

/// A gap in a host's evidence, recorded next to the report that revealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub kind: GapKind,
    pub detail: String,
    pub dropped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapKind {
    /// The report names another previous digest than the last stored report's.
    ChainBreak,
    /// The agent says it dropped reports (its spool was full).
    DroppedReports,
}

impl GapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GapKind::ChainBreak => "chain_break",
            GapKind::DroppedReports => "dropped_reports",
        }
    }
}

/// What to do with a verified report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendDecision {
    /// `seq` is at or below the last accepted: a retry of the very same bytes gets its original
    /// receipt back ([`retry_outcome`] with the entry stored at `seq`), anything else is a replay.
    Retry { last_seq: u64 },
    /// Append to the log, recording these gaps.
    Append { gaps: Vec<Gap> },
}

/// The ingest rules for one report against its host's chain (`None`: unknown host).
pub fn decide_append(
    item: &AppendItem,
    host: Option<&ChainState>,
) -> Result<AppendDecision, AppendRefusal> {
    let host = host.ok_or(AppendRefusal::UnknownHost)?;
    if host.revoked {
        return Err(AppendRefusal::HostRevoked);
    }
    if host.key_state != Some(KeyState::Active) {
        return Err(AppendRefusal::KeyNotActive);
    }
    if item.seq <= host.last_seq {
        return Ok(AppendDecision::Retry {
            last_seq: host.last_seq,
        });
    }
    if let AppendContent::Attestation { still_holds } = &item.content {
        if host.last_full_digest.as_ref() != Some(still_holds) {
            return Err(AppendRefusal::AttestationMismatch);
        }
    }
    let mut gaps = Vec::new();
    if host.last_digest.is_some() && item.prev_digest != host.last_digest {
        gaps.push(Gap {
            kind: GapKind::ChainBreak,
            detail: format!(
                "report seq {} names previous digest {} but the last stored report (seq {}) has digest {}",
                item.seq,
                item.prev_digest.map(|d| d.to_hex()).unwrap_or_else(|| "none".into()),
                host.last_seq,
                host.last_digest.map(|d| d.to_hex()).unwrap_or_default()
            ),
            dropped: 0,
        });
    }
    if item.dropped_reports > 0 {
        gaps.push(Gap {
            kind: GapKind::DroppedReports,
            detail: format!(
                "the agent dropped {} report(s) before seq {}",
                item.dropped_reports, item.seq
            ),
            dropped: item.dropped_reports,
        });
    }
    Ok(AppendDecision::Append { gaps })
}

/// The log entry stored for a host at some `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub log_index: u64,
    pub digest: Digest,
    pub received_at: i64,
    pub chain_hash: Digest,
}

/// A report at or below the last `seq`: the original receipt when the bytes are the same as
/// those stored at its `seq`, else a replay.
pub fn retry_outcome(
    item: &AppendItem,
    stored: Option<StoredEntry>,
    last_seq: u64,
) -> Result<Appended, AppendRefusal> {
    match stored {
        Some(e) if e.digest == item.digest => Ok(Appended {
            digest: item.digest,
            host_id: item.host_id.clone(),
            seq: item.seq,
            received_at: e.received_at,
            log_index: e.log_index,
            chain_hash: e.chain_hash,
            duplicate: true,
            gaps: vec![],
        }),
        _ => Err(AppendRefusal::Replay { last_seq }),
    }
}

/// A host's stored finding for one check: status, reason, evidence.
pub type StoredVerdict = (String, Option<String>, String);

/// How a host's stored findings change when new ones arrive.
#[derive(Debug, Default, PartialEq)]
pub struct FindingChanges<'a> {
    /// Findings to write (new verdict, or same verdict with new evidence).
    pub upserts: Vec<&'a NewFinding>,
    /// Checks whose verdict or reason changed: a transition each.
    pub transitions: Vec<&'a NewFinding>,
    /// Checks that no longer produce a finding (their collector is no longer run): deleted,
    /// with an `absent` transition.
    pub removed: Vec<String>,
}

/// Compares old and new findings. The steady state (same verdict, same evidence) writes nothing.
pub fn finding_changes<'a>(
    mut old: BTreeMap<String, StoredVerdict>,
    new: &'a [NewFinding],
) -> FindingChanges<'a> {
    let mut changes = FindingChanges::default();
    for f in new {
        let (changed, same_evidence) = match old.remove(&f.check) {
            Some((s, r, e)) => (s != f.status.as_str() || r != f.reason, e == f.evidence),
            None => (true, false),
        };
        if changed || !same_evidence {
            changes.upserts.push(f);
        }
        if changed {
            changes.transitions.push(f);
        }
    }
    changes.removed = old.into_keys().collect();
    changes
}

/// Parses a stored check status.
pub fn parse_status(s: &str) -> Option<Status> {
    Some(match s {
        "pass" => Status::Pass,
        "fail" => Status::Fail,
        "not_applicable" => Status::NotApplicable,
        "error" => Status::Error,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(created_at: i64, single_use: bool, uses: u64) -> SecretRecord {
        SecretRecord {
            id: "s".into(),
            hash: [0; 32],
            created_at,
            expires_at: 1_000,
            single_use,
            uses,
            revoked_at: None,
            note: String::new(),
            host_id: None,
        }
    }

    fn inputs<'a>(
        s: &'a SecretRecord,
        host: Option<(&'a str, bool)>,
        key: Option<(&'a str, KeyState)>,
    ) -> EnrollInputs<'a> {
        EnrollInputs {
            secret: Some(s),
            secret_matches: true,
            host,
            key_owner: key,
            pending_for_host: 0,
            pending_for_secret: 0,
            now: 500,
        }
    }

    #[test]
    fn a_new_machine_with_a_valid_secret_becomes_a_new_host() {
        let s = secret(10, true, 0);
        assert_eq!(
            decide_enrollment(&inputs(&s, None, None)),
            Ok(EnrollAction::NewHost)
        );
    }

    #[test]
    fn expired_revoked_used_or_wrong_secrets_are_refused() {
        let used = secret(10, true, 1);
        assert_eq!(
            decide_enrollment(&inputs(&used, None, None)),
            Err(EnrollRefusal::SecretUsed)
        );
        let mut expired = secret(10, false, 0);
        expired.expires_at = 100;
        assert_eq!(
            decide_enrollment(&inputs(&expired, None, None)),
            Err(EnrollRefusal::SecretExpired)
        );
        let mut revoked = secret(10, false, 0);
        revoked.revoked_at = Some(20);
        assert_eq!(
            decide_enrollment(&inputs(&revoked, None, None)),
            Err(EnrollRefusal::SecretRevoked)
        );
        let ok = secret(10, false, 0);
        let mut wrong = inputs(&ok, None, None);
        wrong.secret_matches = false;
        assert_eq!(decide_enrollment(&wrong), Err(EnrollRefusal::BadSecret));
    }

    #[test]
    fn a_fleet_secret_never_replaces_a_known_hosts_key_however_fresh() {
        // Created long after the host enrolled: still only a pending key.
        let fresh = secret(400, false, 0);
        assert_eq!(
            decide_enrollment(&inputs(&fresh, Some(("h", false)), None)),
            Ok(EnrollAction::Pending)
        );
    }

    #[test]
    fn a_secret_bound_to_a_host_rekeys_that_host_and_no_other() {
        let mut bound = secret(10, true, 0);
        bound.host_id = Some("h".into());
        assert_eq!(
            decide_enrollment(&inputs(&bound, Some(("h", false)), None)),
            Ok(EnrollAction::Rekey)
        );
        assert_eq!(
            decide_enrollment(&inputs(&bound, Some(("g", false)), None)),
            Err(EnrollRefusal::SecretForAnotherHost)
        );
        assert_eq!(
            decide_enrollment(&inputs(&bound, None, None)),
            Err(EnrollRefusal::SecretForAnotherHost)
        );
    }

    #[test]
    fn pending_keys_are_capped_per_host_and_per_secret_but_a_retry_is_not_counted() {
        let s = secret(10, false, 0);
        let mut full_host = inputs(&s, Some(("h", false)), None);
        full_host.pending_for_host = MAX_PENDING_KEYS_PER_HOST;
        assert_eq!(
            decide_enrollment(&full_host),
            Err(EnrollRefusal::TooManyPendingKeys)
        );
        let mut full_secret = inputs(&s, Some(("h", false)), None);
        full_secret.pending_for_secret = MAX_PENDING_KEYS_PER_SECRET;
        assert_eq!(
            decide_enrollment(&full_secret),
            Err(EnrollRefusal::TooManyPendingKeys)
        );
        let mut retry = inputs(&s, Some(("h", false)), Some(("h", KeyState::Pending)));
        retry.pending_for_host = MAX_PENDING_KEYS_PER_HOST;
        assert_eq!(decide_enrollment(&retry), Ok(EnrollAction::Pending));
    }

    #[test]
    fn a_revoked_host_is_refused_even_with_a_host_secret() {
        let mut bound = secret(60, false, 0);
        bound.host_id = Some("h".into());
        assert_eq!(
            decide_enrollment(&inputs(&bound, Some(("h", true)), None)),
            Err(EnrollRefusal::HostRevoked)
        );
    }

    #[test]
    fn a_retry_with_the_same_key_is_answered_again_and_another_hosts_key_is_refused() {
        let used = secret(10, true, 1);
        assert_eq!(
            decide_enrollment(&inputs(
                &used,
                Some(("h", false)),
                Some(("h", KeyState::Active))
            )),
            Ok(EnrollAction::Existing)
        );
        assert_eq!(
            decide_enrollment(&inputs(
                &used,
                Some(("h", false)),
                Some(("g", KeyState::Active))
            )),
            Err(EnrollRefusal::KeyInUse)
        );
    }

    fn item(seq: u64, prev: Option<Digest>, content: AppendContent) -> AppendItem {
        AppendItem {
            host_id: "h".into(),
            key_id: "k".into(),
            seq,
            prev_digest: prev,
            digest: Digest::of(format!("report {seq}").as_bytes()),
            bytes: vec![],
            collected_at: 0,
            received_at: 0,
            dropped_reports: 0,
            agent_version: "1".into(),
            content,
            signature: None,
        }
    }

    fn chain(last_seq: u64) -> ChainState {
        ChainState {
            revoked: false,
            key_state: Some(KeyState::Active),
            last_seq,
            last_digest: (last_seq > 0)
                .then(|| Digest::of(format!("report {last_seq}").as_bytes())),
            last_full_digest: (last_seq > 0)
                .then(|| Digest::of(format!("report {last_seq}").as_bytes())),
        }
    }

    fn full() -> AppendContent {
        AppendContent::Full { findings: vec![] }
    }

    #[test]
    fn a_report_from_an_unknown_revoked_or_inactive_key_is_refused() {
        let r = item(1, None, full());
        assert_eq!(decide_append(&r, None), Err(AppendRefusal::UnknownHost));
        let revoked = ChainState {
            revoked: true,
            ..chain(0)
        };
        assert_eq!(
            decide_append(&r, Some(&revoked)),
            Err(AppendRefusal::HostRevoked)
        );
        for state in [None, Some(KeyState::Pending), Some(KeyState::Retired)] {
            let c = ChainState {
                key_state: state,
                ..chain(0)
            };
            assert_eq!(
                decide_append(&r, Some(&c)),
                Err(AppendRefusal::KeyNotActive)
            );
        }
    }

    #[test]
    fn the_next_report_appends_without_gaps_and_a_wrong_previous_digest_is_a_chain_break() {
        let c = chain(3);
        let next = item(4, c.last_digest, full());
        assert_eq!(
            decide_append(&next, Some(&c)),
            Ok(AppendDecision::Append { gaps: vec![] })
        );
        let mut broken = item(4, Some(Digest::ZERO), full());
        broken.dropped_reports = 2;
        let Ok(AppendDecision::Append { gaps }) = decide_append(&broken, Some(&c)) else {
            panic!("a chain break is recorded, not refused");
        };
        assert_eq!(
            gaps.iter().map(|g| (g.kind, g.dropped)).collect::<Vec<_>>(),
            [(GapKind::ChainBreak, 0), (GapKind::DroppedReports, 2)]
        );
    }

    #[test]
    fn an_old_seq_is_a_retry_with_its_receipt_only_when_the_bytes_are_the_same() {
        let c = chain(3);
        let old = item(2, None, full());
        assert_eq!(
            decide_append(&old, Some(&c)),
            Ok(AppendDecision::Retry { last_seq: 3 })
        );
        let same = StoredEntry {
            log_index: 7,
            digest: old.digest,
            received_at: 11,
            chain_hash: Digest::ZERO,
        };
        let receipt = retry_outcome(&old, Some(same.clone()), 3).unwrap();
        assert_eq!(
            (receipt.log_index, receipt.received_at, receipt.duplicate),
            (7, 11, true)
        );
        let other = StoredEntry {
            digest: Digest::ZERO,
            ..same
        };
        assert_eq!(
            retry_outcome(&old, Some(other), 3),
            Err(AppendRefusal::Replay { last_seq: 3 })
        );
        assert_eq!(
            retry_outcome(&old, None, 3),
            Err(AppendRefusal::Replay { last_seq: 3 })
        );
    }

    #[test]
    fn an_attestation_must_name_the_last_full_report() {
        let c = chain(3);
        let good = item(
            4,
            c.last_digest,
            AppendContent::Attestation {
                still_holds: c.last_full_digest.unwrap(),
            },
        );
        assert!(matches!(
            decide_append(&good, Some(&c)),
            Ok(AppendDecision::Append { .. })
        ));
        let bad = item(
            4,
            c.last_digest,
            AppendContent::Attestation {
                still_holds: Digest::ZERO,
            },
        );
        assert_eq!(
            decide_append(&bad, Some(&c)),
            Err(AppendRefusal::AttestationMismatch)
        );
    }

    #[test]
    fn findings_change_only_when_verdict_reason_or_evidence_change() {
        let f = |check: &str, status, evidence: &str| NewFinding {
            check: check.into(),
            status,
            reason: None,
            evidence: evidence.into(),
        };
        let old: BTreeMap<String, StoredVerdict> = [
            ("a".to_string(), ("pass".to_string(), None, "e".to_string())),
            ("b".to_string(), ("pass".to_string(), None, "e".to_string())),
            (
                "gone".to_string(),
                ("fail".to_string(), None, "e".to_string()),
            ),
        ]
        .into();
        let new = [
            f("a", Status::Pass, "e"),
            f("b", Status::Pass, "e2"),
            f("c", Status::Fail, "e"),
        ];
        let changes = finding_changes(old, &new);
        let checks = |v: &[&NewFinding]| v.iter().map(|f| f.check.clone()).collect::<Vec<_>>();
        assert_eq!(checks(&changes.upserts), ["b", "c"]);
        assert_eq!(checks(&changes.transitions), ["c"]);
        assert_eq!(changes.removed, ["gone"]);
    }
}
