//! `evidence-server verify-log --deep` and `GET /v1/admin/log/verify?deep=true` against the real
//! process: a store the server wrote verifies; a finding edited in the SQLite file behind the
//! server's back is named (host and check, stored and recomputed) with exit status 1, offline and
//! over the API.
//!
//! Needs the binary: `cargo build -p evidence-server && cargo test -p evidence-tests --test server_deep_verify`.

mod server_common;

use std::path::Path;
use std::process::Output;

use evidence_loadgen::client::{sample_facts, SimHost};
use evidence_protocol::{ReportKind, SigningKey};
use server_common::{runtime, start, temp_dir};

fn verify_deep(data: &Path) -> Output {
    std::process::Command::new(server_common::server_bin())
        .args(["verify-log", "--deep", "--data-dir"])
        .arg(data)
        .output()
        .expect("run evidence-server verify-log --deep")
}

#[test]
fn deep_verification_passes_on_the_servers_store_and_names_a_finding_edited_behind_its_back() {
    let (_tmp, data) = temp_dir();
    let server = start(&data, None, &[]);
    let admin = server.admin.clone();
    let a_ = Some(admin.as_str());
    let host_id = runtime().block_on(async {
        let (s, v) = server
            .send(
                "POST",
                "/v1/admin/enrollment-secrets",
                a_,
                Some("application/json"),
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let key = SigningKey::generate().unwrap();
        let enrolled = server
            .api
            .enroll(v["secret"].as_str().unwrap(), &key, "machine-a", "host-a")
            .await
            .unwrap();
        let mut host = SimHost {
            server_key: evidence_protocol::signing::decode_public_key(&enrolled.server_public_key)
                .unwrap(),
            key,
            host_id: enrolled.host_id.clone(),
            next_seq: 1,
            prev: None,
            hostname: "host-a".into(),
            witnessed: None,
        };
        for _ in 0..2 {
            let report = host.next_report(ReportKind::Full {
                facts: sample_facts("host-a"),
            });
            assert_eq!(server.api.submit(&report).await.unwrap().0, 200);
        }
        let (s, v) = server.get("/v1/admin/log/verify?deep=true", a_).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["ok"].as_bool(), v["deep"]["ok"].as_bool()),
            (Some(true), Some(true)),
            "{v}"
        );
        assert_eq!(v["deep"]["counts"]["hosts"], 1, "{v}");
        assert!(v["deep"]["counts"]["findings"].as_u64().unwrap() > 0, "{v}");
        // Without `deep`, the answer is the log check alone.
        assert!(server
            .get("/v1/admin/log/verify", a_)
            .await
            .1
            .get("deep")
            .is_none());
        // Admin only.
        let (_, t) = server
            .send(
                "POST",
                "/v1/admin/tokens",
                a_,
                Some("application/json"),
                br#"{"role":"reader"}"#.to_vec(),
            )
            .await;
        let reader = t["token"].as_str().unwrap().to_string();
        assert_eq!(
            server
                .get("/v1/admin/log/verify?deep=true", Some(&reader))
                .await
                .0,
            403
        );
        enrolled.host_id
    });
    drop(server);

    let clean = verify_deep(&data);
    let stdout = String::from_utf8_lossy(&clean.stdout);
    assert!(
        clean.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(
        stdout.contains("deep verification: 1 hosts (0 revoked)"),
        "{stdout}"
    );
    assert!(stdout.contains("agree with the signed facts"), "{stdout}");

    // A failing finding turned into a pass, in the database file.
    let db = rusqlite::Connection::open(data.join("evidence.db")).unwrap();
    let (check, reason): (String, String) = db
        .query_row(
            "SELECT check_id, reason FROM current_findings WHERE host_id = ?1 AND status = 'fail'
             ORDER BY check_id LIMIT 1",
            [&host_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the sample facts fail a check");
    db.execute(
        "UPDATE current_findings SET status = 'pass', reason = NULL WHERE host_id = ?1 AND check_id = ?2",
        [&host_id, &check],
    )
    .unwrap();
    drop(db);
    let named = format!("host {host_id} check {check}: stored pass, facts give fail ({reason:?})");

    let tampered = verify_deep(&data);
    let stdout = String::from_utf8_lossy(&tampered.stdout);
    assert_eq!(tampered.status.code(), Some(1), "{stdout}");
    assert!(stdout.lines().any(|l| l == named), "{named} in:\n{stdout}");
    assert!(
        String::from_utf8_lossy(&tampered.stderr).contains("differences"),
        "{}",
        String::from_utf8_lossy(&tampered.stderr)
    );
    // The hash chain itself still verifies: only the derived table was edited.
    assert!(stdout.contains("evidence log verifies"), "{stdout}");

    // The API names the same difference.
    let server = start(&data, Some(&admin), &[]);
    runtime().block_on(async {
        let (s, v) = server
            .get("/v1/admin/log/verify?deep=true", Some(&admin))
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["ok"], false, "{v}");
        let differences = v["deep"]["differences"].as_array().unwrap();
        let found = differences
            .iter()
            .find(|d| d["message"] == named.as_str())
            .unwrap_or_else(|| panic!("{named} in {v}"));
        assert_eq!(found["problem"]["kind"], "finding", "{found}");
        assert_eq!(found["problem"]["check"], check.as_str(), "{found}");
        assert_eq!(found["problem"]["stored"]["status"], "pass", "{found}");
        assert_eq!(found["problem"]["facts_give"]["status"], "fail", "{found}");
    });
    drop(server);

    // A checkpoint note whose signature was replaced: the API's verification names it.
    let db = rusqlite::Connection::open(data.join("evidence.db")).unwrap();
    db.execute(
        "UPDATE checkpoints SET note = replace(note, substr(note, -12, 8), 'AAAAAAAA')
         WHERE size = (SELECT MAX(size) FROM checkpoints)",
        [],
    )
    .unwrap();
    drop(db);
    let server = start(&data, Some(&admin), &[]);
    runtime().block_on(async {
        let (s, v) = server.get("/v1/admin/log/verify", Some(&admin)).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["ok"], false, "{v}");
        let problem = v["break"]["problem"].as_str().unwrap_or_default();
        assert!(
            problem.contains("does not verify with this server's key"),
            "{v}"
        );
    });
}
