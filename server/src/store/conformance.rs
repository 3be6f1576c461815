//! The behaviour every [`Store`] implementation must show: one test per behaviour, each an
//! `async fn(&dyn Store)` run on a fresh store. [`store_conformance!`] turns the list into
//! `#[tokio::test]`s for one backend; each backend adds one invocation line next to the SQLite
//! one below (`store_conformance!(postgres, super::fresh_postgres())`), with an expression that
//! makes a fresh store and keeps alive whatever it needs (a temp directory, a scratch schema)
//! until the test ends. A behaviour left out of the macro's list is dead code (a warning).

// The store's yes/no answers are asserted with `assert_eq!` like every other answer.
#![allow(clippy::bool_assert_comparison)]

use std::ops::Deref;

use evidence_controls::Status;
use evidence_protocol::api::HostIdentity;
use evidence_protocol::{log_chain_next, Digest};
use serde_json::json;

use super::sqlite::SqliteStore;
use super::*;
use crate::domain::rules::MAX_PENDING_KEYS_PER_HOST;

/// One `#[tokio::test]` per behaviour, in `mod $backend`. `$make` is evaluated inside that
/// module, once per test, and must give a value that derefs to `dyn Store` (see [`Fresh`]); it
/// lives until the test ends.
macro_rules! store_conformance {
    ($backend:ident, $make:expr) => {
        store_conformance!(@tests $backend, $make, [
            // enrollment
            enrolling_a_new_machine_creates_its_host,
            an_enrollment_retry_is_answered_again_without_a_new_key_event,
            a_single_use_secret_enrolls_only_one_machine,
            an_enrollment_with_the_wrong_secret_is_refused,
            a_fleet_secret_older_than_the_hosts_key_leaves_the_new_key_pending,
            approving_a_pending_key_activates_it_and_retires_the_old_key,
            a_revoked_host_cannot_enroll_again,
            // the evidence log
            an_enrollment_is_the_first_entry_of_the_evidence_log,
            every_log_entry_is_a_leaf_naming_its_fields_and_every_proof_verifies,
            checkpoints_only_grow_and_a_removed_entry_breaks_verification,
            appended_reports_get_consecutive_log_indexes_and_chain_hashes,
            the_evidence_log_verifies_up_to_the_last_chain_hash,
            stored_reports_keep_their_verbatim_bytes,
            // replays and resends
            an_exact_resend_gets_the_original_receipt,
            other_bytes_with_an_accepted_seq_are_a_replay,
            a_repeated_seq_within_one_batch_is_a_replay,
            reports_from_an_unknown_host_are_refused,
            resends_and_refused_reports_are_not_stored,
            // gaps
            a_wrong_previous_digest_is_recorded_as_a_chain_break,
            dropped_reports_are_recorded_as_a_gap,
            a_chain_break_and_dropped_reports_in_one_report_are_both_recorded,
            // findings and the fleet over time
            findings_store_a_transition_only_when_the_status_changes,
            the_fleet_state_at_a_past_time_is_the_state_then,
            the_current_fleet_state_is_the_latest,
            no_host_is_in_the_fleet_before_it_enrolled,
            re_evaluation_replaces_the_current_findings,
            failing_and_erroring_findings_are_listed_by_check,
            the_latest_full_report_is_kept_for_re_evaluation,
            // refused reports
            an_attestation_of_another_report_than_the_last_full_one_is_refused,
            an_attestation_of_the_last_full_report_is_accepted,
            a_key_that_is_not_the_hosts_active_key_cannot_append,
            a_revoked_host_cannot_append,
            revoked_hosts_are_counted,
            // secrets, tokens, audit, policy
            a_revoked_secret_is_listed_revoked,
            revoking_an_unknown_secret_reports_it_unknown,
            tokens_are_stored_verbatim,
            a_token_can_be_revoked,
            revoking_an_unknown_token_reports_not_found,
            an_admin_token_can_be_revoked_while_another_remains,
            the_last_admin_token_cannot_be_revoked,
            the_audit_trail_round_trips,
            the_policy_in_force_is_the_latest_version_at_or_before_a_time,
            a_policy_version_is_a_log_entry_whose_body_is_the_policy,
            a_policy_entrys_leaf_is_in_the_tree,
            // reads for evidence bundles
            log_entries_are_selected_by_kind_host_and_receipt_time_below_a_size,
            each_hosts_last_report_before_a_time_is_found,
            full_reports_are_found_by_host_and_digest,
            checkpoints_between_two_sizes_are_listed_ascending,
            the_leaf_hashes_are_the_trees_leaves_in_order,
            // pending keys
            a_later_fleet_secret_leaves_the_new_key_pending_and_the_current_key_active,
            pending_keys_are_capped_per_host,
            each_pending_attempt_is_in_the_hosts_key_history_but_not_in_the_log,
            pending_keys_are_counted,
            // host secrets and signed rotations
            a_host_secret_cannot_rekey_another_host,
            a_host_secret_rekeys_its_host,
            a_signed_rotation_replaces_the_active_key,
            a_rotation_by_a_retired_key_is_refused,
            another_hosts_key_cannot_rotate_this_host,
            key_history_is_listed_newest_first,
            key_events_are_chained_in_the_evidence_log,
            a_rotations_proof_is_in_the_evidence_log,
            a_batch_signs_one_checkpoint_and_its_growth_proves_each_new_report,
            a_batch_that_appends_nothing_signs_nothing,
            derived_hosts_pages_in_host_order_with_their_latest_full_report_and_findings,
        ]);
    };
    (@tests $backend:ident, $make:expr, [$($behaviour:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    super::$behaviour(&*$make).await
                }
            )*
        }
    };
}

/// A fresh store and what must outlive it (dropped after the store).
pub struct Fresh<S, Keep> {
    store: S,
    _keep: Keep,
}

impl<S: Store, Keep> Deref for Fresh<S, Keep> {
    type Target = dyn Store;
    fn deref(&self) -> &(dyn Store + 'static) {
        &self.store
    }
}

/// A SQLite store on a new database file in its own temp directory.
fn fresh_sqlite() -> Fresh<SqliteStore, tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("db.sqlite")).expect("open sqlite");
    Fresh { store, _keep: dir }
}

store_conformance!(sqlite, super::fresh_sqlite());

// ---------------------------------------------------------------------------------------------
// Fixtures.

const T0: i64 = 1_700_000_000_000_000;
const FW: &str = "firewall.inbound_default_deny";

async fn secret(store: &dyn Store, id: &str, single_use: bool, created_at: i64) -> SecretRecord {
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
    store.create_secret(&s).await.unwrap();
    s
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
        signature: Some(format!("sig-{seq}")),
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

/// Enrolls host `machine` with key byte `key` (key id `k{key}`) at `T0 + 1`; returns its host id.
async fn enrolled(store: &dyn Store, machine: &str, key: u8) -> String {
    let id = format!("s-{machine}");
    secret(store, &id, false, T0).await;
    match store
        .enroll(&attempt(&id, key, machine, T0 + 1))
        .await
        .unwrap()
    {
        Ok(o) => o.host_id,
        Err(e) => panic!("enrollment of {machine} refused: {e:?}"),
    }
}

/// Signs checkpoints with a throw-away server key.
fn signer() -> Arc<dyn CheckpointSigner> {
    Arc::new(crate::service::checkpoints::NoteSigner::new(Arc::new(
        evidence_protocol::SigningKey::generate().unwrap(),
    )))
}

/// Appends a batch; the store's answer for each item.
async fn append_all(
    store: &dyn Store,
    items: &[AppendItem],
) -> Vec<Result<Appended, AppendRefusal>> {
    store.append_reports(items, signer()).await.unwrap().results
}

/// Appends one item; the store's answer for it.
async fn append(store: &dyn Store, item: AppendItem) -> Result<Appended, AppendRefusal> {
    append_all(store, &[item]).await.remove(0)
}

/// A host's keys (id, state), by key id.
async fn keys_of_host(store: &dyn Store, host_id: &str) -> Vec<(String, KeyState)> {
    let mut keys: Vec<_> = store
        .keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.host_id == host_id)
        .map(|k| (k.key_id, k.state))
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    keys
}

/// Owned copies of `(&str, T)` pairs, to compare with what the store lists.
fn owned<T: Copy>(pairs: &[(&str, T)]) -> Vec<(String, T)> {
    pairs.iter().map(|(s, t)| (s.to_string(), *t)).collect()
}

/// One host in `fleet_at`, with its findings' check ids spelled out.
#[derive(Debug, PartialEq)]
struct Seen {
    host_id: String,
    hostname: String,
    last_seen: Option<i64>,
    revoked: bool,
    findings: Vec<(String, Status, Option<String>)>,
}

async fn fleet(store: &dyn Store, at: i64) -> Vec<Seen> {
    let index = Arc::new(CheckIndex::from_checks(vec![(FW.into(), vec![])]));
    store
        .fleet_at(at, index.clone())
        .await
        .unwrap()
        .into_iter()
        .map(|(host_id, h)| Seen {
            host_id,
            hostname: h.hostname.to_string(),
            last_seen: h.last_seen,
            revoked: h.revoked,
            findings: h
                .findings
                .iter()
                .map(|(c, s, r)| {
                    (
                        index.checks[*c as usize].clone(),
                        *s,
                        r.as_deref().map(str::to_string),
                    )
                })
                .collect(),
        })
        .collect()
}

/// Host `m` with the firewall check failing at `T0 + 10` and `T0 + 20`, passing at `T0 + 30`.
async fn fail_fail_pass(s: &dyn Store) -> String {
    let h = enrolled(s, "m", 1).await;
    for (seq, status) in [(1, Status::Fail), (2, Status::Fail), (3, Status::Pass)] {
        let at = T0 + 10 * seq as i64;
        let body = seq.to_string();
        let it = item(&h, "k1", seq, None, &body, at, vec![finding(FW, status)]);
        append(s, it).await.unwrap();
    }
    h
}

/// The chain hash over log entries `0..n`, recomputed from their stored bytes.
async fn chain_over(s: &dyn Store, n: u64) -> Digest {
    let mut chain = Digest::ZERO;
    for index in 0..n {
        let bytes = s.report_bytes(index).await.unwrap().expect("log entry");
        chain = log_chain_next(&chain, index, &Digest::of(&bytes));
    }
    chain
}

/// A log entry's bytes, parsed as JSON.
async fn log_json(s: &dyn Store, index: u64) -> serde_json::Value {
    let bytes = s.report_bytes(index).await.unwrap().expect("log entry");
    serde_json::from_slice(&bytes).expect("JSON log entry")
}

// ---------------------------------------------------------------------------------------------
// Enrollment.

async fn enrolling_a_new_machine_creates_its_host(s: &dyn Store) {
    secret(s, "once", true, T0).await;
    assert_eq!(
        s.enroll(&attempt("once", 1, "m1", T0 + 1)).await.unwrap(),
        Ok(EnrollOutcome {
            host_id: "h-m1".into(),
            key_id: "k1".into(),
            last_seq: 0,
            last_digest: None,
            event: Some(KeyEventKind::Enrolled),
        })
    );
    assert_eq!(
        s.hosts()
            .await
            .unwrap()
            .iter()
            .map(|h| (
                h.host_id.as_str(),
                h.machine_id.as_str(),
                h.hostname.as_str()
            ))
            .collect::<Vec<_>>(),
        vec![("h-m1", "m1", "host-m1")]
    );
    assert_eq!(
        keys_of_host(s, "h-m1").await,
        owned(&[("k1", KeyState::Active)])
    );
}

async fn an_enrollment_retry_is_answered_again_without_a_new_key_event(s: &dyn Store) {
    secret(s, "once", true, T0).await;
    let first = s
        .enroll(&attempt("once", 1, "m1", T0 + 1))
        .await
        .unwrap()
        .unwrap();
    // The same machine and key again (a lost answer), even though the secret is single use.
    assert_eq!(
        s.enroll(&attempt("once", 1, "m1", T0 + 2)).await.unwrap(),
        Ok(EnrollOutcome {
            event: None,
            ..first
        })
    );
}

async fn a_single_use_secret_enrolls_only_one_machine(s: &dyn Store) {
    secret(s, "once", true, T0).await;
    s.enroll(&attempt("once", 1, "m1", T0 + 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.enroll(&attempt("once", 2, "m2", T0 + 3)).await.unwrap(),
        Err(EnrollRefusal::SecretUsed)
    );
    assert_eq!(
        s.secrets()
            .await
            .unwrap()
            .iter()
            .map(|r| (r.id.as_str(), r.uses))
            .collect::<Vec<_>>(),
        vec![("once", 1)]
    );
}

async fn an_enrollment_with_the_wrong_secret_is_refused(s: &dyn Store) {
    secret(s, "once", true, T0).await;
    let mut wrong = attempt("once", 3, "m3", T0 + 3);
    wrong.secret_hash = [8; 32];
    assert_eq!(
        s.enroll(&wrong).await.unwrap(),
        Err(EnrollRefusal::BadSecret)
    );
    // Once the secret is used, a wrong one is still reported as wrong (not as used).
    s.enroll(&attempt("once", 1, "m1", T0 + 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.enroll(&wrong).await.unwrap(),
        Err(EnrollRefusal::BadSecret)
    );
}

async fn a_fleet_secret_older_than_the_hosts_key_leaves_the_new_key_pending(s: &dyn Store) {
    secret(s, "once", true, T0).await;
    s.enroll(&attempt("once", 1, "m1", T0 + 1))
        .await
        .unwrap()
        .unwrap();
    // Known host, new key, fleet secret created before the host's key.
    secret(s, "old", false, T0).await;
    assert_eq!(
        s.enroll(&attempt("old", 4, "m1", T0 + 4)).await.unwrap(),
        Err(EnrollRefusal::KeyChangeNeedsApproval {
            host_id: "h-m1".into()
        })
    );
    assert_eq!(
        keys_of_host(s, "h-m1").await,
        owned(&[("k1", KeyState::Active), ("k4", KeyState::Pending)])
    );
}

async fn approving_a_pending_key_activates_it_and_retires_the_old_key(s: &dyn Store) {
    secret(s, "once", true, T0).await;
    s.enroll(&attempt("once", 1, "m1", T0 + 1))
        .await
        .unwrap()
        .unwrap();
    secret(s, "old", false, T0).await;
    s.enroll(&attempt("old", 4, "m1", T0 + 4))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        s.approve_key("h-m1", "k4", T0 + 5, "tok").await.unwrap(),
        true
    );
    assert_eq!(
        keys_of_host(s, "h-m1").await,
        owned(&[("k1", KeyState::Retired), ("k4", KeyState::Active)])
    );
}

async fn a_revoked_host_cannot_enroll_again(s: &dyn Store) {
    secret(s, "once", true, T0).await;
    s.enroll(&attempt("once", 1, "m1", T0 + 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.revoke_host("h-m1", "admin", T0 + 6).await.unwrap(), true);
    secret(s, "fresh", false, T0 + 7).await;
    assert_eq!(
        s.enroll(&attempt("fresh", 5, "m1", T0 + 8)).await.unwrap(),
        Err(EnrollRefusal::HostRevoked)
    );
}

// ---------------------------------------------------------------------------------------------
// The evidence log.

async fn an_enrollment_is_the_first_entry_of_the_evidence_log(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    assert_eq!(
        s.verify_log().await.unwrap(),
        Ok((1, chain_over(s, 1).await))
    );
    let entry = log_json(s, 0).await;
    assert_eq!(
        (
            &entry["type"],
            &entry["event"],
            &entry["host_id"],
            &entry["key_id"]
        ),
        (
            &json!("key_event"),
            &json!("enrolled"),
            &json!(h),
            &json!("k1")
        )
    );
}

async fn appended_reports_get_consecutive_log_indexes_and_chain_hashes(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    // The enrollment is entry 0.
    let mut chain = chain_over(s, 1).await;
    let mut prev = None;
    for seq in 1..=5u64 {
        let body = format!("report {seq}");
        let at = T0 + seq as i64;
        let digest = Digest::of(body.as_bytes());
        chain = log_chain_next(&chain, seq, &digest);
        assert_eq!(
            append(s, item(&h, "k1", seq, prev, &body, at, vec![])).await,
            Ok(Appended {
                digest,
                host_id: h.clone(),
                seq,
                received_at: at,
                log_index: seq,
                chain_hash: chain,
                duplicate: false,
                gaps: vec![],
            })
        );
        prev = Some(digest);
    }
}

/// Host `m` with five chained reports `report 1..=5`; the log's head, as this side computes it
/// from the enrollment entry on.
async fn five_reports(s: &dyn Store) -> Digest {
    let h = enrolled(s, "m", 1).await;
    let mut chain = chain_over(s, 1).await;
    let mut prev = None;
    for seq in 1..=5u64 {
        let body = format!("report {seq}");
        append(s, item(&h, "k1", seq, prev, &body, T0 + seq as i64, vec![]))
            .await
            .unwrap();
        let digest = Digest::of(body.as_bytes());
        chain = log_chain_next(&chain, seq, &digest);
        prev = Some(digest);
    }
    chain
}

async fn the_evidence_log_verifies_up_to_the_last_chain_hash(s: &dyn Store) {
    let chain = five_reports(s).await;
    assert_eq!(s.verify_log().await.unwrap(), Ok((6, chain)));
}

async fn stored_reports_keep_their_verbatim_bytes(s: &dyn Store) {
    five_reports(s).await;
    assert_eq!(s.report_bytes(3).await.unwrap(), Some(b"report 3".to_vec()));
    assert_eq!(s.report_bytes(6).await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Replays and resends.

async fn an_exact_resend_gets_the_original_receipt(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    let first = append(s, item(&h, "k1", 1, None, "one", T0, vec![]))
        .await
        .unwrap();
    assert_eq!(
        append(s, item(&h, "k1", 1, None, "one", T0 + 9, vec![])).await,
        Ok(Appended {
            duplicate: true,
            ..first
        })
    );
}

async fn other_bytes_with_an_accepted_seq_are_a_replay(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    append(s, item(&h, "k1", 1, None, "one", T0, vec![]))
        .await
        .unwrap();
    assert_eq!(
        append(s, item(&h, "k1", 1, None, "other bytes", T0, vec![])).await,
        Err(AppendRefusal::Replay { last_seq: 1 })
    );
}

async fn a_repeated_seq_within_one_batch_is_a_replay(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    append(s, item(&h, "k1", 1, None, "one", T0, vec![]))
        .await
        .unwrap();
    // In one batch: the second item with the same seq is a replay of the first.
    let batch = append_all(
        s,
        &[
            item(&h, "k1", 2, None, "two", T0, vec![]),
            item(&h, "k1", 2, None, "two'", T0, vec![]),
        ],
    )
    .await;
    assert_eq!(
        batch
            .into_iter()
            .map(|r| r.map(|a| (a.seq, a.log_index, a.duplicate)))
            .collect::<Vec<_>>(),
        vec![
            Ok((2, 2, false)),
            Err(AppendRefusal::Replay { last_seq: 2 })
        ]
    );
}

async fn reports_from_an_unknown_host_are_refused(s: &dyn Store) {
    enrolled(s, "m", 1).await;
    assert_eq!(
        append(s, item("nobody", "k1", 1, None, "x", T0, vec![])).await,
        Err(AppendRefusal::UnknownHost)
    );
}

async fn resends_and_refused_reports_are_not_stored(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    append(s, item(&h, "k1", 1, None, "one", T0, vec![]))
        .await
        .unwrap();
    let resent = append(s, item(&h, "k1", 1, None, "one", T0 + 9, vec![])).await;
    assert_eq!(resent.map(|a| a.duplicate), Ok(true));
    append(s, item(&h, "k1", 1, None, "other bytes", T0, vec![]))
        .await
        .unwrap_err();
    append_all(
        s,
        &[
            item(&h, "k1", 2, None, "two", T0, vec![]),
            item(&h, "k1", 2, None, "two'", T0, vec![]),
        ],
    )
    .await;
    append(s, item("nobody", "k1", 1, None, "x", T0, vec![]))
        .await
        .unwrap_err();
    assert_eq!(s.counts().await.unwrap().reports, 2);
}

// ---------------------------------------------------------------------------------------------
// Gaps.

/// A host's gaps (kind, dropped reports, log index), by log index then kind.
async fn gaps_of_host(s: &dyn Store, h: &str) -> Vec<(String, u64, u64)> {
    let mut gaps: Vec<_> = s
        .host(h)
        .await
        .unwrap()
        .expect("host")
        .gaps
        .into_iter()
        .map(|g| (g.kind, g.dropped, g.log_index))
        .collect();
    gaps.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
    gaps
}

async fn a_wrong_previous_digest_is_recorded_as_a_chain_break(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    append(s, item(&h, "k1", 1, None, "one", T0, vec![]))
        .await
        .unwrap();
    let it = item(
        &h,
        "k1",
        2,
        Some(Digest::of(b"unseen")),
        "two",
        T0 + 1,
        vec![],
    );
    assert_eq!(append(s, it).await.unwrap().gaps.len(), 1);
    assert_eq!(
        gaps_of_host(s, &h).await,
        vec![("chain_break".to_string(), 0, 2)]
    );
}

async fn dropped_reports_are_recorded_as_a_gap(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    let one = append(s, item(&h, "k1", 1, None, "one", T0, vec![]))
        .await
        .unwrap();
    let mut it = item(&h, "k1", 2, Some(one.digest), "two", T0 + 1, vec![]);
    it.dropped_reports = 2;
    assert_eq!(append(s, it).await.unwrap().gaps.len(), 1);
    assert_eq!(
        gaps_of_host(s, &h).await,
        vec![("dropped_reports".to_string(), 2, 2)]
    );
}

async fn a_chain_break_and_dropped_reports_in_one_report_are_both_recorded(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    append(s, item(&h, "k1", 1, None, "one", T0, vec![]))
        .await
        .unwrap();
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
    assert_eq!(append(s, it).await.unwrap().gaps.len(), 2);
    assert_eq!(
        gaps_of_host(s, &h).await,
        vec![
            ("chain_break".to_string(), 0, 2),
            ("dropped_reports".to_string(), 2, 2)
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Findings and the fleet over time.

async fn findings_store_a_transition_only_when_the_status_changes(s: &dyn Store) {
    let h = fail_fail_pass(s).await;
    // Fail, fail, pass: two transitions, not three rows.
    let mut transitions: Vec<_> = s
        .host(&h)
        .await
        .unwrap()
        .expect("host")
        .transitions
        .into_iter()
        .map(|t| (t.check, t.status, t.reason, t.at))
        .collect();
    transitions.sort_by_key(|t| t.3);
    assert_eq!(
        transitions,
        vec![
            (
                FW.to_string(),
                "fail".to_string(),
                Some("why".to_string()),
                T0 + 10
            ),
            (FW.to_string(), "pass".to_string(), None, T0 + 30),
        ]
    );
}

async fn the_fleet_state_at_a_past_time_is_the_state_then(s: &dyn Store) {
    let h = fail_fail_pass(s).await;
    assert_eq!(
        fleet(s, T0 + 25).await,
        vec![Seen {
            host_id: h,
            hostname: "host-m".into(),
            last_seen: Some(T0 + 20),
            revoked: false,
            findings: vec![(FW.to_string(), Status::Fail, Some("why".into()))],
        }]
    );
}

async fn the_current_fleet_state_is_the_latest(s: &dyn Store) {
    let h = fail_fail_pass(s).await;
    assert_eq!(
        fleet(s, i64::MAX).await,
        vec![Seen {
            host_id: h,
            hostname: "host-m".into(),
            last_seen: Some(T0 + 30),
            revoked: false,
            findings: vec![(FW.to_string(), Status::Pass, None)],
        }]
    );
}

async fn no_host_is_in_the_fleet_before_it_enrolled(s: &dyn Store) {
    fail_fail_pass(s).await;
    assert_eq!(fleet(s, T0 - 1).await, Vec::<Seen>::new());
}

/// [`fail_fail_pass`], then re-evaluated to an error at `T0 + 40`.
async fn re_evaluated(s: &dyn Store) -> String {
    let h = fail_fail_pass(s).await;
    let update = FindingsUpdate {
        host_id: h.clone(),
        findings: vec![finding(FW, Status::Error)],
    };
    s.apply_findings(&[update], T0 + 40).await.unwrap();
    h
}

async fn re_evaluation_replaces_the_current_findings(s: &dyn Store) {
    let h = re_evaluated(s).await;
    assert_eq!(
        fleet(s, i64::MAX).await,
        vec![Seen {
            host_id: h,
            hostname: "host-m".into(),
            last_seen: Some(T0 + 30),
            revoked: false,
            findings: vec![(FW.to_string(), Status::Error, Some("why".into()))],
        }]
    );
}

async fn failing_and_erroring_findings_are_listed_by_check(s: &dyn Store) {
    let h = re_evaluated(s).await;
    assert_eq!(
        s.findings_for_checks(&[FW.to_string()]).await.unwrap(),
        vec![StoredFinding {
            host_id: h,
            check: FW.into(),
            status: Status::Error,
            reason: Some("why".into()),
            evidence: "{}".into(),
            since: T0 + 40,
        }]
    );
}

async fn the_latest_full_report_is_kept_for_re_evaluation(s: &dyn Store) {
    let h = re_evaluated(s).await;
    assert_eq!(s.latest_facts().await.unwrap(), vec![(h, b"3".to_vec())]);
}

// ---------------------------------------------------------------------------------------------
// Refused reports.

fn attestation(h: &str, seq: u64, prev: Option<Digest>, still_holds: &[u8]) -> AppendItem {
    let mut att = item(h, "k1", seq, prev, "att", T0 + 1, vec![]);
    att.content = AppendContent::Attestation {
        still_holds: Digest::of(still_holds),
    };
    att
}

async fn an_attestation_of_another_report_than_the_last_full_one_is_refused(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    append(s, item(&h, "k1", 1, None, "full", T0, vec![]))
        .await
        .unwrap();
    assert_eq!(
        append(s, attestation(&h, 2, None, b"something else")).await,
        Err(AppendRefusal::AttestationMismatch)
    );
}

async fn an_attestation_of_the_last_full_report_is_accepted(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    let full = append(s, item(&h, "k1", 1, None, "full", T0, vec![]))
        .await
        .unwrap();
    // A refused (stale) attestation first: it changed nothing, seq 2 is still free.
    append(s, attestation(&h, 2, None, b"something else"))
        .await
        .unwrap_err();
    let digest = Digest::of(b"att");
    assert_eq!(
        append(s, attestation(&h, 2, Some(full.digest), b"full")).await,
        Ok(Appended {
            digest,
            host_id: h,
            seq: 2,
            received_at: T0 + 1,
            log_index: 2,
            chain_hash: log_chain_next(&full.chain_hash, 2, &digest),
            duplicate: false,
            gaps: vec![],
        })
    );
}

async fn a_key_that_is_not_the_hosts_active_key_cannot_append(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    append(s, item(&h, "k1", 1, None, "full", T0, vec![]))
        .await
        .unwrap();
    assert_eq!(
        append(s, item(&h, "k9", 2, None, "x", T0, vec![])).await,
        Err(AppendRefusal::KeyNotActive)
    );
}

async fn a_revoked_host_cannot_append(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    append(s, item(&h, "k1", 1, None, "full", T0, vec![]))
        .await
        .unwrap();
    assert_eq!(s.revoke_host(&h, "admin", T0 + 2).await.unwrap(), true);
    assert_eq!(
        append(s, item(&h, "k1", 2, None, "y", T0, vec![])).await,
        Err(AppendRefusal::HostRevoked)
    );
    // The revocation is a logged key event naming the active key; revoking again adds none.
    assert_eq!(s.revoke_host(&h, "admin", T0 + 3).await.unwrap(), true);
    let revoked: Vec<_> = s
        .host(&h)
        .await
        .unwrap()
        .expect("host")
        .key_events
        .into_iter()
        .filter(|e| e.event == KeyEventKind::Revoked)
        .map(|e| (e.key_id, e.authorized_by, e.at, e.log_index))
        .collect();
    assert_eq!(
        revoked,
        vec![("k1".to_string(), "admin".to_string(), T0 + 2, Some(2))]
    );
    assert_eq!(s.revoke_host("nobody", "admin", T0).await.unwrap(), false);
}

async fn revoked_hosts_are_counted(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    enrolled(s, "n", 2).await;
    s.revoke_host(&h, "admin", T0 + 2).await.unwrap();
    let counts = s.counts().await.unwrap();
    assert_eq!((counts.hosts, counts.revoked_hosts), (2, 1));
}

// ---------------------------------------------------------------------------------------------
// Secrets, tokens, audit, policy.

async fn a_revoked_secret_is_listed_revoked(s: &dyn Store) {
    secret(s, "a", false, T0).await;
    assert_eq!(s.revoke_secret("a", T0 + 1).await.unwrap(), true);
    assert_eq!(
        s.secrets()
            .await
            .unwrap()
            .iter()
            .map(|r| (r.id.as_str(), r.hash, r.created_at, r.revoked_at))
            .collect::<Vec<_>>(),
        vec![("a", [7; 32], T0, Some(T0 + 1))]
    );
}

async fn revoking_an_unknown_secret_reports_it_unknown(s: &dyn Store) {
    secret(s, "a", false, T0).await;
    assert_eq!(s.revoke_secret("zz", T0).await.unwrap(), false);
    assert_eq!(
        s.secrets()
            .await
            .unwrap()
            .iter()
            .map(|r| (r.id.as_str(), r.revoked_at))
            .collect::<Vec<_>>(),
        vec![("a", None)]
    );
}

fn token(id: &str, role: &str, name: &str, hash: [u8; 32]) -> TokenRecord {
    TokenRecord {
        id: id.into(),
        hash,
        role: Role::parse(role).expect("a role name"),
        name: name.into(),
        created_at: T0,
        revoked_at: None,
    }
}

/// Every token's (id, hash, role, name, created at, revoked at), by id.
type TokenFields = (String, [u8; 32], Role, String, i64, Option<i64>);

async fn tokens_listed(s: &dyn Store) -> Vec<TokenFields> {
    let mut tokens: Vec<_> = s
        .tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.id, t.hash, t.role, t.name, t.created_at, t.revoked_at))
        .collect();
    tokens.sort();
    tokens
}

async fn tokens_are_stored_verbatim(s: &dyn Store) {
    s.create_token(&token("t", "reader", "x'); --", [1; 32]))
        .await
        .unwrap();
    assert_eq!(
        tokens_listed(s).await,
        vec![(
            "t".into(),
            [1; 32],
            Role::Reader,
            "x'); --".into(),
            T0,
            None
        )]
    );
}

async fn a_token_can_be_revoked(s: &dyn Store) {
    s.create_token(&token("t", "reader", "x'); --", [1; 32]))
        .await
        .unwrap();
    assert_eq!(
        s.revoke_token("t", T0 + 1).await.unwrap(),
        TokenRevocation::Revoked
    );
    assert_eq!(
        tokens_listed(s).await,
        vec![(
            "t".into(),
            [1; 32],
            Role::Reader,
            "x'); --".into(),
            T0,
            Some(T0 + 1)
        )]
    );
}

async fn revoking_an_unknown_token_reports_not_found(s: &dyn Store) {
    s.create_token(&token("t", "reader", "x'); --", [1; 32]))
        .await
        .unwrap();
    assert_eq!(
        s.revoke_token("nope", T0 + 1).await.unwrap(),
        TokenRevocation::NotFound
    );
}

async fn an_admin_token_can_be_revoked_while_another_remains(s: &dyn Store) {
    s.create_token(&token("a1", "admin", "", [2; 32]))
        .await
        .unwrap();
    s.create_token(&token("a2", "admin", "", [2; 32]))
        .await
        .unwrap();
    assert_eq!(
        s.revoke_token("a1", T0 + 2).await.unwrap(),
        TokenRevocation::Revoked
    );
}

async fn the_last_admin_token_cannot_be_revoked(s: &dyn Store) {
    // A reader token does not count as an admin.
    s.create_token(&token("t", "reader", "x'); --", [1; 32]))
        .await
        .unwrap();
    s.create_token(&token("a1", "admin", "", [2; 32]))
        .await
        .unwrap();
    s.create_token(&token("a2", "admin", "", [2; 32]))
        .await
        .unwrap();
    assert_eq!(
        s.revoke_token("a1", T0 + 2).await.unwrap(),
        TokenRevocation::Revoked
    );
    assert_eq!(
        s.revoke_token("a2", T0 + 3).await.unwrap(),
        TokenRevocation::LastAdmin
    );
    assert_eq!(
        tokens_listed(s)
            .await
            .into_iter()
            .map(|t| (t.0, t.5))
            .collect::<Vec<_>>(),
        vec![
            ("a1".to_string(), Some(T0 + 2)),
            ("a2".to_string(), None),
            ("t".to_string(), None)
        ]
    );
}

async fn the_audit_trail_round_trips(s: &dyn Store) {
    let record = AuditRecord {
        at: T0 + 4,
        actor: "a2".into(),
        event: "policy_changed".into(),
        target: "policy".into(),
        detail: "d".into(),
    };
    s.record_audit(&record).await.unwrap();
    assert_eq!(s.audit(10).await.unwrap(), vec![record]);
}

async fn the_policy_in_force_is_the_latest_version_at_or_before_a_time(s: &dyn Store) {
    s.set_policy("{\"v\":1}", T0 + 10, SERVER_KEY_ID)
        .await
        .unwrap();
    s.set_policy("{\"v\":2}", T0 + 20, SERVER_KEY_ID)
        .await
        .unwrap();
    assert_eq!(
        s.policy_at(T0 + 15).await.unwrap().as_deref(),
        Some("{\"v\":1}")
    );
    assert_eq!(
        s.policy_at(i64::MAX).await.unwrap().as_deref(),
        Some("{\"v\":2}")
    );
    assert_eq!(s.policy_at(T0).await.unwrap(), None);
}

const SERVER_KEY_ID: &str = "ed25519:server";

fn policy_filter() -> EntryFilter {
    EntryFilter {
        kinds: vec![evidence_protocol::bundle::EntryKind::Policy],
        hosts: None,
        received: None,
        below: u64::MAX,
        limit: 100,
    }
}

async fn a_policy_version_is_a_log_entry_whose_body_is_the_policy(s: &dyn Store) {
    enrolled(s, "m", 1).await;
    let policy = "{\"checks\":{},\"applicability\":{}}";
    let index = s.set_policy(policy, T0 + 10, SERVER_KEY_ID).await.unwrap();
    assert_eq!(index, 1, "after the enrollment's key event");
    assert_eq!(
        s.log_entries(&policy_filter()).await.unwrap(),
        vec![LogEntryMeta {
            log_index: 1,
            kind: evidence_protocol::bundle::EntryKind::Policy,
            host_id: "-".into(),
            key_id: SERVER_KEY_ID.into(),
            seq: None,
            received_at: T0 + 10,
            digest: Digest::of(policy.as_bytes()),
            signature: None,
        }]
    );
    assert_eq!(
        s.report_bytes(1).await.unwrap().as_deref(),
        Some(policy.as_bytes())
    );
    assert_eq!(s.policy_at(T0 + 10).await.unwrap().as_deref(), Some(policy));
    assert_eq!(s.verify_log().await.unwrap().map(|(n, _)| n), Ok(2));
    assert_eq!(s.log_policy_versions(SERVER_KEY_ID).await.unwrap(), 0);
}

async fn a_policy_entrys_leaf_is_in_the_tree(s: &dyn Store) {
    let policy = "{\"v\":1}";
    let index = s.set_policy(policy, T0 + 10, SERVER_KEY_ID).await.unwrap();
    let (size, root) = s.tree_head().await.unwrap();
    let (leaf, proof) = s.inclusion_proof(index, size).await.unwrap().unwrap();
    let expected = crate::domain::log_entry::LogLeaf {
        kind: evidence_protocol::EntryKind::Policy,
        host_id: "-",
        key_id: SERVER_KEY_ID,
        seq: None,
        received_at: T0 + 10,
        digest: &Digest::of(policy.as_bytes()),
    }
    .hash();
    assert_eq!(leaf, expected);
    assert_eq!(
        evidence_protocol::merkle::verify_inclusion(&leaf, index, size, &proof, &root),
        Ok(())
    );
}

/// Two hosts: `a` (key event 0, reports 1..=3 at T0+11..13) and `b` (key event 4, report 5 at
/// T0+20), then a policy entry (6 at T0+30).
async fn two_hosts_and_a_policy(s: &dyn Store) -> (String, String) {
    let a = enrolled(s, "ma", 1).await;
    for seq in 1..=3u64 {
        let body = format!("a{seq}");
        append(
            s,
            item(&a, "k1", seq, None, &body, T0 + 10 + seq as i64, vec![]),
        )
        .await
        .unwrap();
    }
    let b = enrolled(s, "mb", 2).await;
    append(s, item(&b, "k2", 1, None, "b1", T0 + 20, vec![]))
        .await
        .unwrap();
    s.set_policy("{}", T0 + 30, SERVER_KEY_ID).await.unwrap();
    (a, b)
}

async fn log_entries_are_selected_by_kind_host_and_receipt_time_below_a_size(s: &dyn Store) {
    use evidence_protocol::bundle::EntryKind;
    let (a, b) = two_hosts_and_a_policy(s).await;
    let select =
        |kinds: Vec<EntryKind>, hosts: Option<Vec<String>>, received, below, limit| EntryFilter {
            kinds,
            hosts,
            received,
            below,
            limit,
        };
    let indexes =
        |entries: Vec<LogEntryMeta>| entries.iter().map(|e| e.log_index).collect::<Vec<_>>();
    let reports = vec![EntryKind::Full, EntryKind::Attestation];
    let all = s
        .log_entries(&select(reports.clone(), None, None, u64::MAX, 100))
        .await
        .unwrap();
    assert_eq!(indexes(all.clone()), vec![1, 2, 3, 5]);
    assert_eq!(
        (all[0].seq, all[0].signature.as_deref(), all[0].digest),
        (Some(1), Some("sig-1"), Digest::of(b"a1"))
    );
    let hosts = Some(vec![b.clone(), a.clone()]);
    let period = Some((T0 + 12, T0 + 20));
    let get = |filter: EntryFilter| async move { indexes(s.log_entries(&filter).await.unwrap()) };
    let in_period = select(reports.clone(), hosts.clone(), period, u64::MAX, 100);
    assert_eq!(get(in_period).await, vec![2, 3, 5]);
    assert_eq!(
        get(select(reports.clone(), hosts, period, 5, 100)).await,
        vec![2, 3]
    );
    assert_eq!(
        get(select(reports, None, None, u64::MAX, 2)).await,
        vec![1, 2]
    );
    let key_events = select(
        vec![EntryKind::KeyEvent],
        Some(vec![b]),
        None,
        u64::MAX,
        100,
    );
    assert_eq!(get(key_events).await, vec![4]);
    assert_eq!(get(policy_filter()).await, vec![6]);
}

async fn each_hosts_last_report_before_a_time_is_found(s: &dyn Store) {
    let (a, b) = two_hosts_and_a_policy(s).await;
    let last = |hosts: Option<Vec<String>>, before, below| async move {
        s.last_reports_before(hosts.as_deref(), before, below)
            .await
            .unwrap()
            .iter()
            .map(|e| e.log_index)
            .collect::<Vec<_>>()
    };
    assert_eq!(last(None, T0 + 13, u64::MAX).await, vec![2]);
    assert_eq!(last(None, T0 + 21, u64::MAX).await, vec![3, 5]);
    assert_eq!(last(Some(vec![b]), T0 + 21, u64::MAX).await, vec![5]);
    assert_eq!(last(Some(vec![a]), T0 + 21, 3).await, vec![2]);
    assert_eq!(last(None, T0, u64::MAX).await, Vec::<u64>::new());
}

async fn full_reports_are_found_by_host_and_digest(s: &dyn Store) {
    let (a, b) = two_hosts_and_a_policy(s).await;
    let wanted = vec![
        (a.clone(), Digest::of(b"a2")),
        (b.clone(), Digest::of(b"a2")),
        (b, Digest::of(b"b1")),
        (a, Digest::of(b"nothing")),
    ];
    let found = s.full_reports_by_digest(&wanted, u64::MAX).await.unwrap();
    assert_eq!(
        found.iter().map(|e| e.log_index).collect::<Vec<_>>(),
        vec![2, 5]
    );
    let below = s.full_reports_by_digest(&wanted, 5).await.unwrap();
    assert_eq!(
        below.iter().map(|e| e.log_index).collect::<Vec<_>>(),
        vec![2]
    );
}

async fn checkpoints_between_two_sizes_are_listed_ascending(s: &dyn Store) {
    two_hosts_and_a_policy(s).await;
    // Each append signed one: sizes 2, 3, 4 (host a) and 6 (host b).
    let sizes = |cps: Vec<StoredCheckpoint>| cps.iter().map(|c| c.size).collect::<Vec<_>>();
    assert_eq!(
        sizes(s.checkpoints_between(0, 100).await.unwrap()),
        vec![2, 3, 4, 6]
    );
    assert_eq!(
        sizes(s.checkpoints_between(3, 4).await.unwrap()),
        vec![3, 4]
    );
    let six = s.checkpoints_between(5, 6).await.unwrap();
    assert_eq!(six, vec![s.checkpoint(6).await.unwrap().unwrap()]);
}

async fn the_leaf_hashes_are_the_trees_leaves_in_order(s: &dyn Store) {
    two_hosts_and_a_policy(s).await;
    let (size, root) = s.tree_head().await.unwrap();
    let leaves = s.leaf_hashes(u64::MAX).await.unwrap();
    assert_eq!(leaves.len() as u64, size);
    assert_eq!(evidence_protocol::merkle::root(&leaves), root);
    for (index, leaf) in leaves.iter().enumerate() {
        let (stored, _) = s
            .inclusion_proof(index as u64, size)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&stored, leaf);
    }
    assert_eq!(s.leaf_hashes(3).await.unwrap(), leaves[..3].to_vec());
}

// ---------------------------------------------------------------------------------------------
// Pending keys.

async fn a_later_fleet_secret_leaves_the_new_key_pending_and_the_current_key_active(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    // A fleet secret created long after the host's key: still only pending.
    secret(s, "later", false, T0 + 100).await;
    assert_eq!(
        s.enroll(&attempt("later", 2, "m", T0 + 101)).await.unwrap(),
        Err(EnrollRefusal::KeyChangeNeedsApproval { host_id: h.clone() })
    );
    assert_eq!(
        keys_of_host(s, &h).await,
        owned(&[("k1", KeyState::Active), ("k2", KeyState::Pending)])
    );
}

/// Host `m` with as many pending keys as allowed (`k2`, `k3`, ...) and one more refused;
/// returns the host id and the answer to the attempt past the cap.
async fn pending_keys_up_to_the_cap(
    s: &dyn Store,
) -> (String, Result<EnrollOutcome, EnrollRefusal>) {
    let h = enrolled(s, "m", 1).await;
    secret(s, "later", false, T0 + 100).await;
    for key in 2..2 + MAX_PENDING_KEYS_PER_HOST as u8 {
        assert_eq!(
            s.enroll(&attempt("later", key, "m", T0 + 100 + key as i64))
                .await
                .unwrap(),
            Err(EnrollRefusal::KeyChangeNeedsApproval { host_id: h.clone() })
        );
    }
    let past_the_cap = s
        .enroll(&attempt("later", 50, "m", T0 + 150))
        .await
        .unwrap();
    (h, past_the_cap)
}

async fn pending_keys_are_capped_per_host(s: &dyn Store) {
    let (_, past_the_cap) = pending_keys_up_to_the_cap(s).await;
    assert_eq!(past_the_cap, Err(EnrollRefusal::TooManyPendingKeys));
}

async fn each_pending_attempt_is_in_the_hosts_key_history_but_not_in_the_log(s: &dyn Store) {
    let (h, _) = pending_keys_up_to_the_cap(s).await;
    let mut pending: Vec<_> = s
        .host(&h)
        .await
        .unwrap()
        .expect("host")
        .key_events
        .into_iter()
        .filter(|e| e.event == KeyEventKind::Pending)
        .map(|e| (e.key_id, e.log_index))
        .collect();
    pending.sort();
    let expected: Vec<_> = (2..2 + MAX_PENDING_KEYS_PER_HOST)
        .map(|k| (format!("k{k}"), None))
        .collect();
    assert_eq!(pending, expected);
    // Only the enrollment is logged.
    assert_eq!(s.verify_log().await.unwrap().map(|(n, _)| n), Ok(1));
}

async fn pending_keys_are_counted(s: &dyn Store) {
    let _ = pending_keys_up_to_the_cap(s).await;
    assert_eq!(
        s.counts().await.unwrap().pending_keys,
        MAX_PENDING_KEYS_PER_HOST
    );
}

// ---------------------------------------------------------------------------------------------
// Host secrets and signed rotations.

/// Hosts `m` (key `k1`) and `n` (key `k9`), and a single-use secret `for-m` that re-keys `m`;
/// returns `m`'s host id.
async fn two_hosts_and_a_host_secret(s: &dyn Store) -> String {
    let h = enrolled(s, "m", 1).await;
    enrolled(s, "n", 9).await;
    let mut bound = secret(s, "x", true, T0).await;
    bound.id = "for-m".into();
    bound.host_id = Some(h.clone());
    s.create_secret(&bound).await.unwrap();
    h
}

fn rotation(h: &str) -> KeyRotation {
    KeyRotation {
        host_id: h.into(),
        previous_key_id: "k2".into(),
        key_id: "k3".into(),
        public_key: [3; 32],
        proof: json!({"request": "r"}),
        now: T0 + 4,
    }
}

/// [`two_hosts_and_a_host_secret`], a refused use of `for-m` by `n`, `m` re-keyed to `k2` with
/// it at `T0 + 3`, then rotated to `k3` by a request signed by `k2` at `T0 + 4`.
async fn rekeyed_and_rotated(s: &dyn Store) -> String {
    let h = two_hosts_and_a_host_secret(s).await;
    s.enroll(&attempt("for-m", 2, "n", T0 + 2))
        .await
        .unwrap()
        .unwrap_err();
    s.enroll(&attempt("for-m", 2, "m", T0 + 3))
        .await
        .unwrap()
        .unwrap();
    s.rotate_key(&rotation(&h)).await.unwrap().unwrap();
    h
}

async fn a_host_secret_cannot_rekey_another_host(s: &dyn Store) {
    two_hosts_and_a_host_secret(s).await;
    assert_eq!(
        s.enroll(&attempt("for-m", 2, "n", T0 + 2)).await.unwrap(),
        Err(EnrollRefusal::SecretForAnotherHost)
    );
    assert_eq!(
        keys_of_host(s, "h-n").await,
        owned(&[("k9", KeyState::Active)])
    );
}

async fn a_host_secret_rekeys_its_host(s: &dyn Store) {
    let h = two_hosts_and_a_host_secret(s).await;
    assert_eq!(
        s.enroll(&attempt("for-m", 2, "m", T0 + 3)).await.unwrap(),
        Ok(EnrollOutcome {
            host_id: h.clone(),
            key_id: "k2".into(),
            last_seq: 0,
            last_digest: None,
            event: Some(KeyEventKind::Rekeyed),
        })
    );
    assert_eq!(
        keys_of_host(s, &h).await,
        owned(&[("k1", KeyState::Retired), ("k2", KeyState::Active)])
    );
}

async fn a_signed_rotation_replaces_the_active_key(s: &dyn Store) {
    let h = two_hosts_and_a_host_secret(s).await;
    s.enroll(&attempt("for-m", 2, "m", T0 + 3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.rotate_key(&rotation(&h)).await.unwrap(),
        Ok(EnrollOutcome {
            host_id: h.clone(),
            key_id: "k3".into(),
            last_seq: 0,
            last_digest: None,
            event: Some(KeyEventKind::Rotated),
        })
    );
    assert_eq!(
        keys_of_host(s, &h).await,
        owned(&[
            ("k1", KeyState::Retired),
            ("k2", KeyState::Retired),
            ("k3", KeyState::Active)
        ])
    );
}

async fn a_rotation_by_a_retired_key_is_refused(s: &dyn Store) {
    let h = rekeyed_and_rotated(s).await;
    assert_eq!(
        s.rotate_key(&rotation(&h)).await.unwrap(),
        Err(RotateRefusal::KeyNotActive)
    );
}

async fn another_hosts_key_cannot_rotate_this_host(s: &dyn Store) {
    let h = rekeyed_and_rotated(s).await;
    let mut stolen = rotation(&h);
    stolen.previous_key_id = "k9".into();
    stolen.key_id = "k4".into();
    assert_eq!(
        s.rotate_key(&stolen).await.unwrap(),
        Err(RotateRefusal::KeyNotActive)
    );
    assert_eq!(
        keys_of_host(s, "h-n").await,
        owned(&[("k9", KeyState::Active)])
    );
}

async fn key_history_is_listed_newest_first(s: &dyn Store) {
    let h = rekeyed_and_rotated(s).await;
    assert_eq!(
        s.host(&h)
            .await
            .unwrap()
            .expect("host")
            .key_events
            .into_iter()
            .map(|e| (e.event, e.key_id, e.previous_key_id, e.at, e.log_index))
            .collect::<Vec<_>>(),
        vec![
            (
                KeyEventKind::Rotated,
                "k3".into(),
                Some("k2".into()),
                T0 + 4,
                Some(3)
            ),
            (
                KeyEventKind::Rekeyed,
                "k2".into(),
                Some("k1".into()),
                T0 + 3,
                Some(2)
            ),
            (KeyEventKind::Enrolled, "k1".into(), None, T0 + 1, Some(0)),
        ]
    );
}

async fn key_events_are_chained_in_the_evidence_log(s: &dyn Store) {
    rekeyed_and_rotated(s).await;
    // 2 enrollments, a re-key and a rotation; the chain verifies.
    assert_eq!(
        s.verify_log().await.unwrap(),
        Ok((4, chain_over(s, 4).await))
    );
}

async fn a_rotations_proof_is_in_the_evidence_log(s: &dyn Store) {
    let h = rekeyed_and_rotated(s).await;
    let v = log_json(s, 3).await;
    assert_eq!(
        (
            &v["type"],
            &v["event"],
            &v["host_id"],
            &v["key_id"],
            &v["previous_key_id"],
            &v["proof"]
        ),
        (
            &json!("key_event"),
            &json!("rotated"),
            &json!(h),
            &json!("k3"),
            &json!("k2"),
            &json!({"request": "r"})
        )
    );
}

/// Enrolls a host (one key-event entry) and appends three reports, keeping the tree's head
/// after each entry.
async fn four_entries_with_heads(s: &dyn Store) -> (String, Vec<(u64, Digest)>) {
    let host = enrolled(s, "m1", 1).await;
    let mut heads = vec![s.tree_head().await.unwrap()];
    for seq in 1..=3u64 {
        append(
            s,
            item(
                &host,
                "k1",
                seq,
                None,
                &format!("r{seq}"),
                T0 + 10 + seq as i64,
                vec![],
            ),
        )
        .await
        .unwrap();
        heads.push(s.tree_head().await.unwrap());
    }
    (host, heads)
}

async fn every_log_entry_is_a_leaf_naming_its_fields_and_every_proof_verifies(s: &dyn Store) {
    use evidence_protocol::merkle;
    let (host, heads) = four_entries_with_heads(s).await;
    assert_eq!(
        heads.iter().map(|h| h.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let (size, root) = heads[3];
    // The report at index 2 (seq 2): its leaf commits to its kind, host, key, seq, time, digest.
    let digest = Digest::of(b"r2");
    let expected_leaf = crate::domain::log_entry::LogLeaf {
        kind: evidence_protocol::EntryKind::Full,
        host_id: &host,
        key_id: "k1",
        seq: Some(2),
        received_at: T0 + 12,
        digest: &digest,
    }
    .hash();
    let (leaf, _) = s.inclusion_proof(2, size).await.unwrap().unwrap();
    assert_eq!(leaf, expected_leaf);
    for index in 0..size {
        let (leaf, proof) = s.inclusion_proof(index, size).await.unwrap().unwrap();
        assert_eq!(
            merkle::verify_inclusion(&leaf, index, size, &proof, &root),
            Ok(())
        );
    }
    for (old_size, old_root) in &heads {
        let proof = s.consistency_proof(*old_size, size).await.unwrap().unwrap();
        assert_eq!(
            merkle::verify_consistency(*old_size, size, old_root, &root, &proof),
            Ok(())
        );
    }
    assert_eq!(s.inclusion_proof(size, size).await.unwrap(), None);
    assert_eq!(s.consistency_proof(size, size + 1).await.unwrap(), None);
}

async fn checkpoints_only_grow_and_a_removed_entry_breaks_verification(s: &dyn Store) {
    let (_, heads) = four_entries_with_heads(s).await;
    let checkpoint = |(size, root): (u64, Digest)| StoredCheckpoint {
        size,
        root,
        note: format!("note {size}"),
        at: T0,
    };
    // Each append signed its batch's checkpoint; the last covers all four entries.
    let latest = s
        .latest_checkpoint()
        .await
        .unwrap()
        .expect("signed by the appends");
    assert_eq!((latest.size, latest.root), heads[3]);
    // Neither a smaller size nor another note for the same size replaces it.
    s.record_checkpoint(&checkpoint(heads[1])).await.unwrap();
    s.record_checkpoint(&checkpoint(heads[3])).await.unwrap();
    assert_eq!(s.latest_checkpoint().await.unwrap(), Some(latest.clone()));
    assert_eq!(s.checkpoint(4).await.unwrap(), Some(latest));
    assert_eq!(
        s.checkpoint(1).await.unwrap(),
        None,
        "the key event alone was never signed"
    );
    assert_eq!(s.verify_log().await.unwrap().map(|(n, _)| n), Ok(4));
}

async fn a_batch_signs_one_checkpoint_and_its_growth_proves_each_new_report(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    append(s, item(&h, "k1", 1, None, "one", T0, vec![]))
        .await
        .unwrap();
    let batch = s
        .append_reports(
            &[
                item(&h, "k1", 2, None, "two", T0, vec![]),
                item(&h, "k1", 3, None, "three", T0, vec![]),
                item(&h, "k1", 3, None, "three'", T0, vec![]),
                item(&h, "k1", 4, None, "four", T0, vec![]),
            ],
            signer(),
        )
        .await
        .unwrap();
    let growth = batch.growth.expect("the batch grew the log");
    // The key event and report 1 before; reports 2, 3 and 4 now (the replay appended nothing).
    assert_eq!(growth.before.size(), 2);
    assert_eq!(growth.leaves.len(), 3);
    assert_eq!(s.tree_head().await.unwrap(), (5, growth.checkpoint.root));
    assert_eq!(
        s.latest_checkpoint().await.unwrap(),
        Some(growth.checkpoint.clone())
    );
    let tree = evidence_protocol::merkle::Extended::new(
        growth.before.clone(),
        growth.leaves.iter().copied(),
    );
    for result in batch.results.into_iter().flatten() {
        let in_memory =
            evidence_protocol::merkle::inclusion_proof(result.log_index, 5, &tree).unwrap();
        let (_, stored) = s
            .inclusion_proof(result.log_index, 5)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(in_memory, stored, "entry {}", result.log_index);
    }
}

async fn a_batch_that_appends_nothing_signs_nothing(s: &dyn Store) {
    let h = enrolled(s, "m", 1).await;
    append(s, item(&h, "k1", 1, None, "one", T0, vec![]))
        .await
        .unwrap();
    let before = s.latest_checkpoint().await.unwrap();
    let batch = s
        .append_reports(&[item(&h, "k1", 1, None, "one", T0, vec![])], signer())
        .await
        .unwrap();
    assert!(batch.growth.is_none());
    assert_eq!(batch.results[0].as_ref().map(|a| a.duplicate), Ok(true));
    assert_eq!(s.latest_checkpoint().await.unwrap(), before);
}

async fn derived_hosts_pages_in_host_order_with_their_latest_full_report_and_findings(
    s: &dyn Store,
) {
    let a = enrolled(s, "ma", 1).await;
    let b = enrolled(s, "mb", 2).await;
    append(
        s,
        item(
            &a,
            "k1",
            1,
            None,
            "a1",
            T0,
            vec![finding("c1", Status::Pass)],
        ),
    )
    .await
    .unwrap();
    let a2 = append(
        s,
        item(
            &a,
            "k1",
            2,
            None,
            "a2",
            T0 + 1,
            vec![finding("c1", Status::Fail)],
        ),
    )
    .await
    .unwrap();
    // An attestation is not a full report: the latest full one stays a2.
    append(s, attestation(&a, 3, None, b"a2")).await.unwrap();
    assert!(s.revoke_host(&b, "admin", T0 + 2).await.unwrap());
    let first = s.derived_hosts(None, 1).await.unwrap();
    let second = s
        .derived_hosts(Some(first[0].host_id.clone()), 10)
        .await
        .unwrap();
    let ids: Vec<String> = first
        .iter()
        .chain(&second)
        .map(|h| h.host_id.clone())
        .collect();
    assert_eq!((first.len(), second.len()), (1, 1));
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "pages follow host-id order");
    let all: Vec<_> = first.into_iter().chain(second).collect();
    let host_a = all.iter().find(|h| h.host_id == a).expect("host a");
    assert_eq!(host_a.latest_facts, Some(a2.log_index));
    assert_eq!(
        host_a
            .latest_full
            .as_ref()
            .map(|(i, bytes)| (*i, bytes.as_slice())),
        Some((a2.log_index, b"a2".as_slice()))
    );
    assert_eq!(
        host_a
            .findings
            .iter()
            .map(|f| (f.check.as_str(), f.status.as_str()))
            .collect::<Vec<_>>(),
        vec![("c1", "fail")]
    );
    assert_eq!(
        host_a
            .last_transitions
            .iter()
            .map(|f| f.status.as_str())
            .collect::<Vec<_>>(),
        vec!["fail"]
    );
    let host_b = all.iter().find(|h| h.host_id == b).expect("host b");
    assert!(host_b.revoked && !host_a.revoked);
    assert_eq!(
        (host_b.latest_facts, host_b.latest_full.is_none()),
        (None, true)
    );
    assert!(host_b.findings.is_empty());
}
