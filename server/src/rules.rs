//! Pure decision rules shared by every `Store` implementation: enrollment, and how findings
//! become transitions and per-control statuses. No I/O: each backend gathers the inputs inside
//! its transaction and applies the decision.

use std::collections::BTreeMap;

use evidence_controls::Status;

use crate::store::{EnrollRefusal, KeyChange, NewFinding, SecretRecord};

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
    pub key_owner: Option<(&'a str, &'a str)>,
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
            "active" => {
                return if i.secret.is_some() && i.secret_matches {
                    Ok(EnrollAction::Existing)
                } else {
                    Err(EnrollRefusal::BadSecret)
                };
            }
            "pending" => already_pending = true,
            _ => return Err(EnrollRefusal::KeyInUse),
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

/// Status of each control on one host, derived from its findings alone (the Statement of
/// Applicability and staleness are applied when reading). Per control: any `fail` -> fail
/// (reasons of the failing checks); else any `error` -> unknown (an error is never a pass nor
/// a fail); else any `pass` -> pass; else (all not applicable) -> not_applicable.
pub fn control_statuses(findings: &[NewFinding]) -> BTreeMap<String, (String, Option<String>)> {
    let mappings = evidence_controls::check_mappings();
    let mut per_control: BTreeMap<String, Vec<&NewFinding>> = BTreeMap::new();
    for f in findings {
        if let Some(m) = mappings.get(&f.check) {
            for link in &m.iso27002 {
                per_control.entry(link.control.clone()).or_default().push(f);
            }
        }
    }
    per_control
        .into_iter()
        .map(|(control, fs)| {
            let statuses: Vec<(Status, &str, Option<&str>)> = fs
                .iter()
                .map(|f| (f.status, f.check.as_str(), f.reason.as_deref()))
                .collect();
            (control, combine(&statuses))
        })
        .collect()
}

/// Combines check verdicts on one control (see [`control_statuses`]).
pub fn combine(statuses: &[(Status, &str, Option<&str>)]) -> (String, Option<String>) {
    let reasons = |want: Status| -> String {
        statuses
            .iter()
            .filter(|s| s.0 == want)
            .map(|(_, check, reason)| format!("{check}: {}", reason.unwrap_or(want.as_str())))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if statuses.iter().any(|s| s.0 == Status::Fail) {
        ("fail".into(), Some(reasons(Status::Fail)))
    } else if statuses.iter().any(|s| s.0 == Status::Error) {
        ("unknown".into(), Some(reasons(Status::Error)))
    } else if statuses.iter().any(|s| s.0 == Status::Pass) {
        ("pass".into(), None)
    } else {
        (
            "not_applicable".into(),
            Some(reasons(Status::NotApplicable)),
        )
    }
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
        key: Option<(&'a str, &'a str)>,
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
        let mut retry = inputs(&s, Some(("h", false)), Some(("h", "pending")));
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
            decide_enrollment(&inputs(&used, Some(("h", false)), Some(("h", "active")))),
            Ok(EnrollAction::Existing)
        );
        assert_eq!(
            decide_enrollment(&inputs(&used, Some(("h", false)), Some(("g", "active")))),
            Err(EnrollRefusal::KeyInUse)
        );
    }

    #[test]
    fn a_fail_outranks_an_error_and_an_error_is_never_a_pass() {
        let s = |st| (st, "c", Some("r"));
        assert_eq!(
            combine(&[s(Status::Pass), s(Status::Fail), s(Status::Error)]).0,
            "fail"
        );
        assert_eq!(combine(&[s(Status::Pass), s(Status::Error)]).0, "unknown");
        assert_eq!(
            combine(&[s(Status::Pass), s(Status::NotApplicable)]).0,
            "pass"
        );
        assert_eq!(combine(&[s(Status::NotApplicable)]).0, "not_applicable");
    }
}
