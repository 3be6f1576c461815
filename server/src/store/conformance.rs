//! The behaviour every [`Store`] implementation must show, as a test suite any backend runs
//! against a fresh store: `conformance::run_all(&|| Box::new(MyStore::open(..)))`. The SQLite
//! store runs it in its unit tests; the PostgreSQL store is to run the same.

use evidence_controls::Status;
use evidence_protocol::api::HostIdentity;
use evidence_protocol::{log_chain_next, Digest};

use super::*;

type Make<'a> = &'a dyn Fn() -> Box<dyn Store>;

/// Runs every conformance check, each on a fresh store.
pub fn run_all(make: Make) {
    enrollment_creates_hosts_answers_retries_and_consumes_single_use_secrets(make()).unwrap();
    appended_reports_get_consecutive_indexes_and_a_verifiable_chain(make()).unwrap();
    replays_are_refused_and_exact_resends_get_the_original_entry(make()).unwrap();
    chain_breaks_and_dropped_reports_are_recorded_as_gaps(make()).unwrap();
    findings_store_transitions_only_on_change_and_the_past_is_queryable(make()).unwrap();
    revoked_hosts_retired_keys_and_stale_attestations_are_refused(make()).unwrap();
    secrets_tokens_and_policy_versions_round_trip(make()).unwrap();
    a_fleet_secret_leaves_a_new_key_pending_and_the_host_keeps_its_key(make()).unwrap();
    host_secrets_and_signed_rotations_change_keys_with_logged_events(make()).unwrap();
}

const T0: i64 = 1_700_000_000_000_000;

fn secret(
    store: &dyn Store,
    id: &str,
    single_use: bool,
    created_at: i64,
) -> StoreResult<SecretRecord> {
    let s = SecretRecord {
        id: id.into(),
        hash: [7; 32],
        created_at,
        expires_at: created_at + 3_600_000_000,
        single_use,
        uses: 0,
        revoked_at: None,
        note: "n".into(),
        host_id: None,
    };
    store.create_secret(&s)?;
    Ok(s)
}

fn attempt(secret_id: &str, key: u8, machine: &str, now: i64) -> EnrollAttempt {
    EnrollAttempt {
        secret_id: secret_id.into(),
        secret_hash: [7; 32],
        public_key: [key; 32],
        key_id: format!("k{key}"),
        identity: HostIdentity {
            machine_id: machine.into(),
            hostname: format!("host-{machine}"),
            hardware_serial: None,
        },
        agent_version: "1".into(),
        new_host_id: format!("h-{machine}"),
        now,
    }
}

fn check(cond: bool, what: &str) -> StoreResult<()> {
    if cond {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!("conformance: {what}")))
    }
}

fn item(
    host: &str,
    key: &str,
    seq: u64,
    prev: Option<Digest>,
    body: &str,
    at: i64,
    findings: Vec<NewFinding>,
) -> AppendItem {
    AppendItem {
        host_id: host.into(),
        key_id: key.into(),
        seq,
        prev_digest: prev,
        digest: Digest::of(body.as_bytes()),
        bytes: body.as_bytes().to_vec(),
        collected_at: at,
        received_at: at,
        dropped_reports: 0,
        agent_version: "1".into(),
        content: AppendContent::Full { findings },
    }
}

fn finding(check: &str, status: Status) -> NewFinding {
    NewFinding {
        check: check.into(),
        status,
        reason: (status != Status::Pass).then(|| "why".into()),
        evidence: "{}".into(),
    }
}

/// Enrolls host `machine` with key byte `key`; returns its host id.
fn enrolled(store: &dyn Store, machine: &str, key: u8) -> StoreResult<String> {
    secret(store, &format!("s-{machine}"), false, T0)?;
    match store.enroll(&attempt(&format!("s-{machine}"), key, machine, T0 + 1))? {
        Ok(o) => Ok(o.host_id),
        Err(e) => Err(StoreError::Corrupt(format!("enroll refused: {e:?}"))),
    }
}

fn enrollment_creates_hosts_answers_retries_and_consumes_single_use_secrets(
    store: Box<dyn Store>,
) -> StoreResult<()> {
    let s = &*store;
    secret(s, "once", true, T0)?;
    let first = s.enroll(&attempt("once", 1, "m1", T0 + 1))?;
    check(
        matches!(&first, Ok(o) if o.host_id == "h-m1" && o.last_seq == 0),
        "new host enrolled",
    )?;
    let retry = s.enroll(&attempt("once", 1, "m1", T0 + 2))?;
    check(
        matches!((&retry, &first), (Ok(r), Ok(f)) if r.host_id == f.host_id && r.key_id == f.key_id && r.event.is_none()),
        "retry answered again, with no new key event",
    )?;
    check(
        s.enroll(&attempt("once", 2, "m2", T0 + 3))? == Err(EnrollRefusal::SecretUsed),
        "single use",
    )?;
    let mut wrong = attempt("once", 3, "m3", T0 + 3);
    wrong.secret_hash = [8; 32];
    check(
        s.enroll(&wrong)? == Err(EnrollRefusal::BadSecret),
        "wrong hash",
    )?;
    // Known host, new key, secret older than its key: pending; approval activates it.
    secret(s, "old", false, T0)?;
    check(
        s.enroll(&attempt("old", 4, "m1", T0 + 4))?
            == Err(EnrollRefusal::KeyChangeNeedsApproval {
                host_id: "h-m1".into(),
            }),
        "pending",
    )?;
    check(s.approve_key("h-m1", "k4", T0 + 5, "tok")?, "approved")?;
    let keys = s.keys()?;
    check(
        keys.iter().any(|k| k.key_id == "k4" && k.state == "active")
            && keys
                .iter()
                .any(|k| k.key_id == "k1" && k.state == "retired"),
        "rotation",
    )?;
    check(s.revoke_host("h-m1", T0 + 6)?, "revoked")?;
    secret(s, "fresh", false, T0 + 7)?;
    check(
        s.enroll(&attempt("fresh", 5, "m1", T0 + 8))? == Err(EnrollRefusal::HostRevoked),
        "revoked host refused",
    )?;
    Ok(())
}

fn appended_reports_get_consecutive_indexes_and_a_verifiable_chain(
    store: Box<dyn Store>,
) -> StoreResult<()> {
    let s = &*store;
    let h = enrolled(s, "m", 1)?;
    // The enrollment is the log's first entry (a key event).
    let Ok((start, mut chain)) = s.verify_log()? else {
        return check(false, "log verifies after enrollment");
    };
    check(start == 1, "the enrollment is logged")?;
    let mut prev = None;
    for seq in 1..=5u64 {
        let body = format!("report {seq}");
        let r = s.append_reports(&[item(&h, "k1", seq, prev, &body, T0 + seq as i64, vec![])])?;
        let a = r[0]
            .clone()
            .map_err(|e| StoreError::Corrupt(format!("{e:?}")))?;
        let index = start + seq - 1;
        chain = log_chain_next(&chain, index, &Digest::of(body.as_bytes()));
        check(
            a.log_index == index && a.chain_hash == chain && a.gaps.is_empty(),
            "index and chain",
        )?;
        prev = Some(a.digest);
    }
    check(s.verify_log()? == Ok((start + 5, chain)), "log verifies")?;
    check(
        s.report_bytes(start + 2)?.as_deref() == Some(b"report 3".as_slice()),
        "verbatim bytes",
    )?;
    Ok(())
}

fn replays_are_refused_and_exact_resends_get_the_original_entry(
    store: Box<dyn Store>,
) -> StoreResult<()> {
    let s = &*store;
    let h = enrolled(s, "m", 1)?;
    let first = s
        .append_reports(&[item(&h, "k1", 1, None, "one", T0, vec![])])?
        .remove(0);
    let again = s
        .append_reports(&[item(&h, "k1", 1, None, "one", T0 + 9, vec![])])?
        .remove(0);
    check(
        matches!((&first, &again), (Ok(a), Ok(b)) if b.duplicate && a.log_index == b.log_index && a.received_at == b.received_at),
        "resend",
    )?;
    let other = s
        .append_reports(&[item(&h, "k1", 1, None, "other bytes", T0, vec![])])?
        .remove(0);
    check(
        other == Err(AppendRefusal::Replay { last_seq: 1 }),
        "replay",
    )?;
    // In one batch: the second item with the same seq is a replay of the first.
    let batch = s.append_reports(&[
        item(&h, "k1", 2, None, "two", T0, vec![]),
        item(&h, "k1", 2, None, "two'", T0, vec![]),
    ])?;
    check(
        batch[0].is_ok() && batch[1] == Err(AppendRefusal::Replay { last_seq: 2 }),
        "batch replay",
    )?;
    check(
        s.append_reports(&[item("nobody", "k1", 1, None, "x", T0, vec![])])?[0]
            == Err(AppendRefusal::UnknownHost),
        "unknown host",
    )?;
    check(s.counts()?.reports == 2, "two stored")?;
    Ok(())
}

fn chain_breaks_and_dropped_reports_are_recorded_as_gaps(store: Box<dyn Store>) -> StoreResult<()> {
    let s = &*store;
    let h = enrolled(s, "m", 1)?;
    s.append_reports(&[item(&h, "k1", 1, None, "one", T0, vec![])])?;
    let mut it = item(
        &h,
        "k1",
        2,
        Some(Digest::of(b"unseen")),
        "two",
        T0 + 1,
        vec![],
    );
    it.dropped_reports = 2;
    let a = s
        .append_reports(&[it])?
        .remove(0)
        .map_err(|e| StoreError::Corrupt(format!("{e:?}")))?;
    check(a.gaps.len() == 2, "two gaps")?;
    let d = s.host(&h)?.ok_or(StoreError::NotFound)?;
    check(
        d.gaps.iter().any(|g| g.kind == "chain_break")
            && d.gaps
                .iter()
                .any(|g| g.kind == "dropped_reports" && g.dropped == 2),
        "gap rows",
    )?;
    Ok(())
}

fn findings_store_transitions_only_on_change_and_the_past_is_queryable(
    store: Box<dyn Store>,
) -> StoreResult<()> {
    let s = &*store;
    let h = enrolled(s, "m", 1)?;
    let fw = "firewall.inbound_default_deny";
    s.append_reports(&[item(
        &h,
        "k1",
        1,
        None,
        "1",
        T0 + 10,
        vec![finding(fw, Status::Fail)],
    )])?;
    s.append_reports(&[item(
        &h,
        "k1",
        2,
        None,
        "2",
        T0 + 20,
        vec![finding(fw, Status::Fail)],
    )])?;
    s.append_reports(&[item(
        &h,
        "k1",
        3,
        None,
        "3",
        T0 + 30,
        vec![finding(fw, Status::Pass)],
    )])?;
    let d = s.host(&h)?.ok_or(StoreError::NotFound)?;
    check(
        d.transitions.len() == 2,
        "fail then pass: two transitions, not three rows",
    )?;
    let then = s.fleet_at(T0 + 25)?;
    check(
        then.len() == 1
            && then[0].findings == vec![(fw.to_string(), Status::Fail, Some("why".into()))]
            && then[0].last_seen == Some(T0 + 20),
        "past state",
    )?;
    let now = s.fleet_at(i64::MAX)?;
    check(
        now[0].findings[0].1 == Status::Pass && now[0].last_seen == Some(T0 + 30),
        "current state",
    )?;
    check(s.fleet_at(T0 - 1)?.is_empty(), "nothing before enrollment")?;
    s.apply_findings(
        &[FindingsUpdate {
            host_id: h.clone(),
            findings: vec![finding(fw, Status::Error)],
        }],
        T0 + 40,
    )?;
    check(
        s.fleet_at(i64::MAX)?[0].findings[0].1 == Status::Error,
        "re-evaluation applied",
    )?;
    check(
        s.findings_for_checks(&[fw.to_string()])?.len() == 1,
        "failing/error findings by check",
    )?;
    check(
        s.latest_facts()? == vec![(h, b"3".to_vec())],
        "latest full report",
    )?;
    Ok(())
}

fn revoked_hosts_retired_keys_and_stale_attestations_are_refused(
    store: Box<dyn Store>,
) -> StoreResult<()> {
    let s = &*store;
    let h = enrolled(s, "m", 1)?;
    s.append_reports(&[item(&h, "k1", 1, None, "full", T0, vec![])])?;
    let mut att = item(&h, "k1", 2, None, "att", T0 + 1, vec![]);
    att.content = AppendContent::Attestation {
        still_holds: Digest::of(b"something else"),
    };
    check(
        s.append_reports(std::slice::from_ref(&att))?[0] == Err(AppendRefusal::AttestationMismatch),
        "stale attestation",
    )?;
    att.content = AppendContent::Attestation {
        still_holds: Digest::of(b"full"),
    };
    check(
        s.append_reports(&[att])?[0].is_ok(),
        "attestation of the last full report",
    )?;
    check(
        s.append_reports(&[item(&h, "k9", 3, None, "x", T0, vec![])])?[0]
            == Err(AppendRefusal::KeyNotActive),
        "foreign key",
    )?;
    s.revoke_host(&h, T0 + 2)?;
    check(
        s.append_reports(&[item(&h, "k1", 3, None, "y", T0, vec![])])?[0]
            == Err(AppendRefusal::HostRevoked),
        "revoked",
    )?;
    check(s.counts()?.revoked_hosts == 1, "counted")?;
    Ok(())
}

fn secrets_tokens_and_policy_versions_round_trip(store: Box<dyn Store>) -> StoreResult<()> {
    let s = &*store;
    secret(s, "a", false, T0)?;
    check(
        s.revoke_secret("a", T0 + 1)? && !s.revoke_secret("zz", T0)?,
        "secret revoke",
    )?;
    check(
        s.secrets()?[0].revoked_at == Some(T0 + 1),
        "secret listed revoked",
    )?;
    let t = TokenRecord {
        id: "t".into(),
        hash: [1; 32],
        role: "reader".into(),
        name: "x'); --".into(),
        created_at: T0,
        revoked_at: None,
    };
    s.create_token(&t)?;
    check(
        s.tokens()?[0].name == "x'); --" && s.tokens()?[0].hash == [1; 32],
        "token stored verbatim",
    )?;
    check(
        s.revoke_token("t", T0 + 1)? == TokenRevocation::Revoked
            && s.revoke_token("nope", T0 + 1)? == TokenRevocation::NotFound,
        "token revoke",
    )?;
    let admin = |id: &str| TokenRecord {
        id: id.into(),
        hash: [2; 32],
        role: "admin".into(),
        name: String::new(),
        created_at: T0,
        revoked_at: None,
    };
    s.create_token(&admin("a1"))?;
    s.create_token(&admin("a2"))?;
    check(
        s.revoke_token("a1", T0 + 2)? == TokenRevocation::Revoked,
        "an admin token revoked while another remains",
    )?;
    check(
        s.revoke_token("a2", T0 + 3)? == TokenRevocation::LastAdmin
            && s.tokens()?
                .iter()
                .any(|t| t.id == "a2" && t.revoked_at.is_none()),
        "the last admin token is kept",
    )?;
    let record = AuditRecord {
        at: T0 + 4,
        actor: "a2".into(),
        event: "policy_changed".into(),
        target: "policy".into(),
        detail: "d".into(),
    };
    s.record_audit(&record)?;
    check(s.audit(10)? == vec![record], "audit trail round trip")?;
    s.set_policy("{\"v\":1}", T0 + 10)?;
    s.set_policy("{\"v\":2}", T0 + 20)?;
    check(
        s.policy_at(T0 + 15)?.as_deref() == Some("{\"v\":1}")
            && s.policy_at(i64::MAX)?.as_deref() == Some("{\"v\":2}")
            && s.policy_at(T0)?.is_none(),
        "policy versions",
    )?;
    Ok(())
}

fn a_fleet_secret_leaves_a_new_key_pending_and_the_host_keeps_its_key(
    store: Box<dyn Store>,
) -> StoreResult<()> {
    let s = &*store;
    let h = enrolled(s, "m", 1)?;
    // A fleet secret created long after the host's key: still only pending.
    secret(s, "later", false, T0 + 100)?;
    check(
        s.enroll(&attempt("later", 2, "m", T0 + 101))?
            == Err(EnrollRefusal::KeyChangeNeedsApproval { host_id: h.clone() }),
        "pending, not rotated",
    )?;
    let keys = s.keys()?;
    check(
        keys.iter().any(|k| k.key_id == "k1" && k.state == "active")
            && keys
                .iter()
                .any(|k| k.key_id == "k2" && k.state == "pending"),
        "the current key stays active",
    )?;
    for key in 3..=(2 + crate::rules::MAX_PENDING_KEYS_PER_HOST as u8 - 1) {
        s.enroll(&attempt("later", key, "m", T0 + 102))?.ok();
    }
    check(
        s.enroll(&attempt("later", 50, "m", T0 + 103))? == Err(EnrollRefusal::TooManyPendingKeys),
        "pending keys capped per host",
    )?;
    let detail = s.host(&h)?.expect("host");
    check(
        detail
            .key_events
            .iter()
            .filter(|e| e.event == KeyEventKind::Pending)
            .count() as u64
            == crate::rules::MAX_PENDING_KEYS_PER_HOST
            && detail
                .key_events
                .iter()
                .all(|e| e.event != KeyEventKind::Pending || e.log_index.is_none()),
        "each pending attempt is in the host's history",
    )?;
    check(
        s.counts()?.pending_keys == crate::rules::MAX_PENDING_KEYS_PER_HOST,
        "counted",
    )?;
    Ok(())
}

fn host_secrets_and_signed_rotations_change_keys_with_logged_events(
    store: Box<dyn Store>,
) -> StoreResult<()> {
    let s = &*store;
    let h = enrolled(s, "m", 1)?;
    let other = enrolled(s, "n", 9)?;
    let mut bound = secret(s, "x", true, T0)?;
    bound.id = "for-m".into();
    bound.host_id = Some(h.clone());
    s.create_secret(&bound)?;
    check(
        s.enroll(&attempt("for-m", 2, "n", T0 + 2))? == Err(EnrollRefusal::SecretForAnotherHost),
        "a host secret does not re-key another host",
    )?;
    let rekeyed = s.enroll(&attempt("for-m", 2, "m", T0 + 3))?;
    check(
        matches!(&rekeyed, Ok(o) if o.key_id == "k2" && o.event == Some(KeyEventKind::Rekeyed)),
        "a host secret re-keys its host",
    )?;
    let rotation = KeyRotation {
        host_id: h.clone(),
        previous_key_id: "k2".into(),
        key_id: "k3".into(),
        public_key: [3; 32],
        proof: serde_json::json!({"request": "r"}),
        now: T0 + 4,
    };
    check(
        matches!(s.rotate_key(&rotation)?, Ok(o) if o.key_id == "k3"),
        "rotated",
    )?;
    check(
        s.rotate_key(&rotation)? == Err(RotateRefusal::KeyNotActive),
        "a rotation by a retired key is refused",
    )?;
    let mut stolen = rotation.clone();
    stolen.previous_key_id = "k9".into();
    stolen.key_id = "k4".into();
    check(
        s.rotate_key(&stolen)? == Err(RotateRefusal::KeyNotActive),
        "another host's key cannot rotate this host",
    )?;
    let _ = other;
    let events: Vec<KeyEventKind> = s
        .host(&h)?
        .expect("host")
        .key_events
        .iter()
        .map(|e| e.event)
        .collect();
    check(
        events
            == [
                KeyEventKind::Rotated,
                KeyEventKind::Rekeyed,
                KeyEventKind::Enrolled,
            ],
        "key history, newest first",
    )?;
    // Key events are log entries: 2 enrollments, a re-key and a rotation; the chain verifies.
    check(
        matches!(s.verify_log()?, Ok((4, _))),
        "key events are chained in the evidence log",
    )?;
    let body = s.report_bytes(3)?.expect("entry 3");
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    check(
        v["event"] == "rotated" && v["previous_key_id"] == "k2" && v["proof"]["request"] == "r",
        "the rotation's proof is in the log",
    )?;
    Ok(())
}
