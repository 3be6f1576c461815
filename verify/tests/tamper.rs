//! The tamper table: an honest synthetic bundle verifies; any byte changed in any file is
//! caught by its digest; and each change a malicious server could make while re-signing the
//! manifest with its own key is caught by the check that proves it, each asserting its own
//! message. The command line's exit codes and output at the end.

mod fixture;

use std::process::Command;

use evidence_controls::{Applicability, OrgPolicy};
use evidence_protocol::bundle::{
    checkpoint_path, entry_body_path, entry_meta_path, findings_csv, Bundle, EntryMeta, FindingRow,
    FINDINGS_CSV, FINDINGS_JSON, MANIFEST, MANIFEST_SIG,
};
use evidence_protocol::checkpoint::verifier_key;
use evidence_protocol::{Checkpoint, Digest, SigningKey};
use evidence_verify::{verify, ServerKey, Verification};
use fixture::{facts, pretty, put_rows, resign, Agent, Scenario, FW};

fn key_of(server: &SigningKey) -> ServerKey {
    ServerKey {
        name: None,
        public_key: server.public_key(),
    }
}

fn check(bytes: &[u8], server: &SigningKey) -> Verification {
    let bundle = Bundle::read(bytes).expect("the bundle reads");
    verify(&bundle, &key_of(server))
}

/// Asserts the verification failed with a message containing `needle`.
fn assert_fails_with(v: &Verification, needle: &str) {
    assert!(
        !v.verified,
        "verified, but expected a failure with {needle:?}"
    );
    assert!(
        v.failures.iter().any(|f| f.message.contains(needle)),
        "no failure contains {needle:?}; failures:\n{}",
        v.failures
            .iter()
            .map(|f| format!("  [{}] {}", f.check, f.message))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Reads the honest bundle, lets `change` edit its files, re-signs the manifest.
fn tampered(s: &Scenario, change: impl FnOnce(&mut Bundle)) -> Verification {
    let mut bundle = Bundle::read(s.log.export(None).as_slice()).expect("the bundle reads");
    change(&mut bundle);
    check(&resign(&bundle, &s.log.server), &s.log.server)
}

fn meta(bundle: &Bundle, index: u64) -> EntryMeta {
    bundle.json(&entry_meta_path(index)).expect("an entry")
}

#[test]
fn the_honest_bundle_verifies_with_the_right_summary_and_is_deterministic() {
    let s = Scenario::new();
    let bytes = s.log.export(None);
    assert_eq!(bytes, s.log.export(None));
    let v = check(&bytes, &s.log.server);
    assert!(v.verified, "{:#?}", v.failures);
    let sum = &v.summary;
    assert_eq!(
        (sum.hosts, sum.reports, sum.full_reports, sum.attestations),
        (2, 6, 4, 2)
    );
    assert_eq!((sum.key_events, sum.policy_versions), (2, 1));
    assert_eq!(sum.checkpoint_size, 9);
    assert_eq!(sum.checkpoint_root, s.log.root(9).to_hex());
    let c820 = &sum.per_control["8.20"];
    // h1's latest full report (seq 3) and h2's both fail the firewall check.
    assert_eq!((c820.failing, c820.passing), (2, 0));
    assert_eq!(
        sum.controls.passing
            + sum.controls.failing
            + sum.controls.unknown
            + sum.controls.not_applicable,
        2 * sum.per_control.len() as u64
    );
}

#[test]
fn any_byte_changed_in_any_file_is_caught_naming_that_file() {
    let s = Scenario::new();
    let honest = Bundle::read(s.log.export(None).as_slice()).expect("the bundle reads");
    let names: Vec<String> = honest.files.keys().cloned().collect();
    assert!(names.len() > 20);
    for name in &names {
        let mut b = honest.clone();
        let bytes = b.files.get_mut(name).expect("the file");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        let v = check(&b.to_archive().expect("an archive"), &s.log.server);
        assert_fails_with(&v, &format!("file {name}: digest mismatch"));
    }
    // The manifest itself: its signature no longer covers it (or it no longer parses).
    let mut b = honest.clone();
    let mid = b.manifest_bytes.len() / 2;
    b.manifest_bytes[mid] ^= 0x01;
    match Bundle::read(b.to_archive().expect("an archive").as_slice()) {
        Err(e) => assert!(e.to_string().contains(MANIFEST), "{e}"),
        Ok(read) => assert_fails_with(&verify(&read, &key_of(&s.log.server)), MANIFEST),
    }
    let mut b = honest.clone();
    // A character of the signature itself (past the 4-byte key id), still valid base64.
    let pos = b
        .manifest_sig
        .trim_end()
        .rfind(' ')
        .expect("a signature line")
        + 12;
    let mut sig = b.manifest_sig.into_bytes();
    sig[pos] = if sig[pos] == b'A' { b'B' } else { b'A' };
    b.manifest_sig = String::from_utf8(sig).expect("text");
    let v = check(&b.to_archive().expect("an archive"), &s.log.server);
    assert_fails_with(&v, &format!("{MANIFEST_SIG} does not verify"));
}

#[test]
fn a_bundle_signed_by_another_server_key_fails_on_the_manifest() {
    let s = Scenario::new();
    let other = SigningKey::generate().expect("a key");
    let v = check(&s.log.export(None), &other);
    assert_fails_with(&v, "the given server key's origin");
    assert_fails_with(&v, "manifest.sig does not verify");
}

#[test]
fn a_removed_report_shows_as_a_chain_gap_not_stated() {
    let s = Scenario::new();
    let v = tampered(&s, |b| {
        b.files.remove(&entry_meta_path(6));
        b.files.remove(&entry_body_path(6));
    });
    assert_fails_with(
        &v,
        "chains.json host h2: chain gap not stated: after seq 1 before seq 3",
    );
}

#[test]
fn a_duplicated_report_is_refused() {
    let s = Scenario::new();
    let v = tampered(&s, |b| {
        let mut m = meta(b, 6);
        m.log_index = 9;
        let body = b.files[&entry_body_path(6)].clone();
        b.files.insert(entry_body_path(9), body);
        b.files.insert(entry_meta_path(9), pretty(&m));
    });
    assert_fails_with(&v, "host h2 seq 2 appears in entries 6 and 9");
}

#[test]
fn two_reports_with_swapped_log_indexes_are_out_of_order() {
    let s = Scenario::new();
    let v = tampered(&s, |b| {
        let (mut m5, mut m7) = (meta(b, 5), meta(b, 7));
        m5.log_index = 7;
        m7.log_index = 5;
        let (b5, b7) = (
            b.files[&entry_body_path(5)].clone(),
            b.files[&entry_body_path(7)].clone(),
        );
        b.files.insert(entry_body_path(5), b7);
        b.files.insert(entry_body_path(7), b5);
        b.files.insert(entry_meta_path(5), pretty(&m7));
        b.files.insert(entry_meta_path(7), pretty(&m5));
    });
    assert_fails_with(&v, "seq must increase with the log index");
    assert_fails_with(&v, "received_at must increase with the log index");
    assert_fails_with(&v, "its leaf is not in the final checkpoint");
}

#[test]
fn a_report_moved_to_another_host_is_refused() {
    let s = Scenario::new();
    let v = tampered(&s, |b| {
        let mut m = meta(b, 7);
        m.host_id = "h2".into();
        b.files.insert(entry_meta_path(7), pretty(&m));
    });
    assert_fails_with(
        &v,
        "entry 7 (host h2, seq 3): the entry names host h2 but the report says host h1",
    );
}

#[test]
fn truncating_the_newest_entries_leaves_a_periodic_checkpoint_beyond_the_final_one() {
    let s = Scenario::new();
    // The server signs a final checkpoint at size 6 but the bundle still holds size 7's.
    let v = check(&s.log.export(Some(6)), &s.log.server);
    assert_fails_with(
        &v,
        "size 7 is larger than the final checkpoint's 6: the log was truncated",
    );
}

#[test]
fn a_rewritten_log_is_caught_by_a_checkpoint_an_agent_witnessed() {
    let s = Scenario::new();
    // The server drops entries 5 to 7 (hiding h1's failing report), keeps h2's attestation
    // (which witnessed size 7), and signs fresh checkpoints of the new, shorter log.
    let forged = s.log.rebuilt(|i| !(5..=7).contains(&i), vec![5]);
    let v = check(&forged.export(None), &forged.server);
    assert_fails_with(
        &v,
        "witnessed a checkpoint of size 7, beyond the final checkpoint's 6: the log was truncated",
    );
}

#[test]
fn a_checkpoint_signed_by_another_key_is_refused() {
    let s = Scenario::new();
    let impostor = SigningKey::generate().expect("a key");
    let origin = s.log.origin();
    let v = tampered(&s, |b| {
        let note = Checkpoint::new(origin.clone(), 5, s.log.root(5))
            .sign(&impostor, &origin)
            .expect("a note");
        b.files.insert(checkpoint_path(5), note.into_bytes());
    });
    assert_fails_with(
        &v,
        "checkpoints/00000000000000000005.note: the note is signed by another key",
    );
}

#[test]
fn two_inconsistent_checkpoints_are_caught_by_the_consistency_proof() {
    let s = Scenario::new();
    let origin = s.log.origin();
    let v = tampered(&s, |b| {
        let note = Checkpoint::new(origin.clone(), 5, Digest::of(b"another history"))
            .sign(&s.log.server, &origin)
            .expect("a note");
        b.files.insert(checkpoint_path(5), note.into_bytes());
    });
    assert_fails_with(&v, "the consistency proof from the checkpoint of size 5");
    assert_fails_with(&v, "witnessed size 5 with root");
}

#[test]
fn a_report_received_after_its_hosts_revocation_fails() {
    let mut s = Scenario::new();
    let h2_key = SigningKey::from_pkcs8(s.h2.key.pkcs8()).expect("the key");
    s.log.key_event("h2", "revoked", &h2_key, None);
    s.log.report(&mut s.h2, Some(facts(true)));
    let v = check(&s.log.export(None), &s.log.server);
    assert_fails_with(
        &v,
        "entry 10 (host h2, seq 4) was received after host h2 was revoked (entry 9)",
    );
}

#[test]
fn a_report_signed_by_a_replaced_or_never_enrolled_key_fails() {
    let mut s = Scenario::new();
    let old = SigningKey::from_pkcs8(s.h1.key.pkcs8()).expect("the key");
    let new = Agent::new("h1").key;
    s.log.key_event("h1", "rotated", &new, Some(&old.key_id()));
    // h1 keeps signing with the replaced key.
    s.log.report(&mut s.h1, Some(facts(true)));
    let stranger = SigningKey::generate().expect("a key");
    s.log
        .report_signed_by(&mut s.h2, Some(facts(true)), Some(&stranger));
    let v = check(&s.log.export(None), &s.log.server);
    assert_fails_with(&v, "entry 10 (host h1, seq 4) is signed by key");
    assert_fails_with(&v, "which was replaced at entry 9");
    assert_fails_with(
        &v,
        &format!(
            "is signed by key {}, which is not enrolled for host h2",
            stranger.key_id()
        ),
    );
}

#[test]
fn a_policy_change_without_its_log_entry_does_not_give_the_bundles_rows() {
    let s = Scenario::new();
    let mut secret = OrgPolicy::default();
    secret.applicability.insert(
        "8.20".into(),
        Applicability {
            applicable: false,
            justification: "the firewall is someone else's job".into(),
        },
    );
    let rows = s.log.rows(s.log.size(), s.log.to(), Some(&secret));
    let v = tampered(&s, |b| put_rows(&mut b.files, &rows));
    assert_fails_with(
        &v,
        "status.json row host h1 control 8.20: status: bundle says not_applicable, facts give fail",
    );
    assert_fails_with(&v, "which is not a policy entry of the log");
}

#[test]
fn an_edited_finding_no_longer_follows_from_the_facts() {
    let s = Scenario::new();
    let v = tampered(&s, |b| {
        let mut rows: Vec<FindingRow> = b.json(FINDINGS_JSON).expect("findings");
        let row = rows
            .iter_mut()
            .find(|r| r.host_id == "h1" && r.check == FW)
            .expect("h1's firewall finding");
        row.status = evidence_protocol::bundle::CheckVerdict::Pass;
        b.files.insert(FINDINGS_JSON.into(), pretty(&rows));
        b.files.insert(FINDINGS_CSV.into(), findings_csv(&rows));
    });
    assert_fails_with(
        &v,
        &format!("findings.json row host h1 check {FW}: status: bundle says pass, facts give fail"),
    );
}

#[test]
fn a_csv_that_is_not_its_json_rows_fails() {
    let s = Scenario::new();
    let v = tampered(&s, |b| {
        let csv = b.files.get_mut(FINDINGS_CSV).expect("the csv");
        let text = String::from_utf8(csv.clone())
            .expect("text")
            .replacen(",fail,", ",pass,", 1);
        *csv = text.into_bytes();
    });
    assert_fails_with(
        &v,
        "findings.csv is not the rows of its JSON file (first difference on line",
    );
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_evidence-verify"))
}

#[test]
fn the_command_exits_0_when_verified_1_on_failure_and_2_on_usage() {
    let s = Scenario::new();
    let dir = tempfile::tempdir().expect("a scratch directory");
    let good = dir.path().join("good.tar");
    std::fs::write(&good, s.log.export(None)).expect("written");
    let vkey = verifier_key(&s.log.origin(), &s.log.server.public_key()).expect("a verifier key");
    let key_file = dir.path().join("server.vkey");
    std::fs::write(&key_file, format!("{vkey}\n")).expect("written");

    for key in [
        vkey.clone(),
        s.log.server.public_key_b64(),
        key_file.display().to_string(),
    ] {
        let out = binary()
            .arg(&good)
            .args(["--server-key", &key])
            .output()
            .expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{key}: {text}");
        assert!(text.contains("evidence bundle VERIFIED"), "{text}");
        assert!(text.contains("hosts:      2; reports 6"), "{text}");
    }

    let out = binary()
        .arg(&good)
        .args(["--server-key", &vkey, "--json"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(json["verified"], true);
    assert_eq!(json["summary"]["reports"], 6);

    let mut bundle = Bundle::read(s.log.export(None).as_slice()).expect("reads");
    bundle.files.remove(&entry_meta_path(6));
    bundle.files.remove(&entry_body_path(6));
    let bad = dir.path().join("bad.tar");
    std::fs::write(&bad, resign(&bundle, &s.log.server)).expect("written");
    let out = binary()
        .arg(&bad)
        .args(["--server-key", &vkey])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("evidence bundle FAILED"), "{text}");
    assert!(
        text.contains("[chains] chains.json host h2: chain gap not stated"),
        "{text}"
    );
    assert!(
        text.contains("[order]"),
        "every failure is printed, not only the first: {text}"
    );

    let out = binary().arg(&good).output().expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing --server-key is a usage error"
    );
    let out = binary()
        .arg(&good)
        .args(["--server-key", "not a key"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unusable key is a usage error"
    );
    let out = binary()
        .arg(dir.path().join("missing.tar"))
        .args(["--server-key", &vkey])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "an unreadable bundle fails");
}
