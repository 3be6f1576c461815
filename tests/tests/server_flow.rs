//! The server's main paths against the real process over TLS: enrollment rules, signed
//! reports and receipts, idempotent resend, attestations, chain and drop gaps, policy changes
//! re-evaluating stored facts, the snapshot now and on a past date, staleness, key rotation,
//! revocation, the read API, metrics, OpenAPI.
//!
//! Needs the binary: `cargo build -p evidence-server && cargo test -p evidence-tests --test server_flow`.

mod server_common;

use std::time::Duration;

use evidence_loadgen::client::{sample_facts, SimHost};
use evidence_protocol::{Digest, ReportKind, SigningKey};
use serde_json::{json, Value};
use server_common::{runtime, start, temp_dir};

fn control<'a>(snapshot: &'a Value, id: &str) -> &'a Value {
    snapshot["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control"] == id)
        .unwrap_or_else(|| panic!("control {id} in {snapshot}"))
}

#[test]
fn reports_become_evidence_findings_and_status_now_and_in_the_past() {
    let (_tmp, data) = temp_dir();
    // Stale after 1 interval of 3 s.
    let server = start(
        &data,
        None,
        &[
            "--report-interval-secs",
            "3",
            "--stale-after-intervals",
            "1",
        ],
    );
    runtime().block_on(async {
        let admin = server.admin.clone();
        let a_ = Some(admin.as_str());
        assert_eq!(server.api.http.get(format!("{}/healthz", server.base)).send().await.unwrap().status(), 200);

        // Enrollment: a single-use secret enrolls one host; a retry with the same key is answered again.
        let (s, v) = server.send("POST", "/v1/admin/enrollment-secrets", a_, Some("application/json"), br#"{"single_use":true}"#.to_vec()).await;
        assert_eq!(s, 201, "{v}");
        let single = v["secret"].as_str().unwrap().to_string();
        let key = SigningKey::generate().unwrap();
        let first = server.api.enroll(&single, &key, "machine-a", "host-a").await.unwrap();
        let again = server.api.enroll(&single, &key, "machine-a", "host-a").await.unwrap();
        assert_eq!(first, again, "a retried enrollment gets the same answer");
        assert_eq!(first.key_id, key.key_id());
        let used = server.api.enroll(&single, &SigningKey::generate().unwrap(), "machine-b", "host-b").await.unwrap_err();
        assert!(used.to_string().contains("secret_used"), "{used}");

        let mut a = SimHost {
            server_key: evidence_protocol::signing::decode_public_key(&first.server_public_key).unwrap(),
            key,
            host_id: first.host_id.clone(),
            next_seq: 1,
            prev: None,
            hostname: "host-a".into(),
            witnessed: None,
        };
        // A full report: receipt verifies, stored at log index 1, after the enrollment's key event.
        let head: Digest = serde_json::from_value(server.get("/v1/admin/log/verify", a_).await.1["head"].clone()).unwrap();
        let r1 = a.next_report(ReportKind::Full { facts: sample_facts("host-a") });
        let (s, body) = server.api.submit(&r1).await.unwrap();
        assert_eq!(s, 200);
        let receipt1 = a.check_receipt(&r1, &body).unwrap();
        assert_eq!(receipt1.log_index, 1);
        // One checkpoint for the commit: the key event and this report.
        assert_eq!(a.witnessed.map(|w| w.size), Some(2));
        let chain = serde_json::from_value::<Digest>(server.get("/v1/admin/log/verify", a_).await.1["head"].clone()).unwrap();
        assert_eq!(chain, evidence_protocol::log_chain_next(&head, 1, &r1.digest()), "the v1 chain hash goes on");
        // The exact bytes again: the original receipt, nothing stored twice.
        let (s, body) = server.api.submit(&r1).await.unwrap();
        assert_eq!(s, 200);
        assert_eq!(a.check_receipt(&r1, &body).unwrap(), receipt1);
        let t1 = chrono_like_now(&server, a_).await;

        let snap = server.get("/v1/snapshot", a_).await.1;
        let c820 = control(&snap, "8.20");
        assert_eq!(c820["failing"], 1, "{c820}");
        assert_eq!(c820["failing_hosts"][0]["host_id"], a.host_id.as_str());
        assert!(c820["failing_hosts"][0]["reason"].as_str().unwrap().contains("firewall.inbound_default_deny"));
        assert_eq!(c820["share_passing"], 0.0);
        let c819 = control(&snap, "8.19");
        assert_eq!(c819["failing"], 1, "pending updates fail 8.19 under the default policy: {c819}");

        // An attestation that the last full report still holds.
        let att = a.next_report(ReportKind::Attestation { still_holds: r1.digest() });
        let (s, body) = server.api.submit(&att).await.unwrap();
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));

        // A chain break and dropped reports are stored as visible gaps.
        a.prev = Some(Digest::of(b"a report the server never saw"));
        let mut facts = sample_facts("host-a");
        facts.firewall = None;
        let r3 = a.build_report(ReportKind::Full { facts });
        let mut v = serde_json::to_value(&r3).unwrap();
        v["dropped_reports"] = json!(3);
        let bytes = serde_json::to_vec(&v).unwrap();
        let r3 = evidence_protocol::SignedReport { signature: a.key.sign_b64(&bytes), key_id: a.key.key_id(), bytes };
        let (s, body) = server.api.submit(&r3).await.unwrap();
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
        a.next_seq += 1;
        a.prev = Some(r3.digest());
        let host = server.get(&format!("/v1/hosts/{}", a.host_id), a_).await.1;
        let gaps = host["history"]["gaps"].as_array().unwrap();
        assert!(gaps.iter().any(|g| g["kind"] == "chain_break"), "{gaps:?}");
        assert!(gaps.iter().any(|g| g["kind"] == "dropped_reports" && g["dropped"] == 3), "{gaps:?}");
        // The firewall collector did not run: its finding left, 8.20 has no evidence now.
        let transitions = host["history"]["transitions"].as_array().unwrap();
        assert!(transitions.iter().any(|t| t["check"] == "firewall.inbound_default_deny" && t["status"] == "absent"));
        assert_eq!(host["controls"]["8.20"]["status"], "unknown");
        assert_eq!(host["controls"]["8.20"]["reason"], "no evidence");

        // Policy change: thresholds and the Statement of Applicability re-evaluate stored facts.
        let policy = json!({
            "checks": { "patch_level": { "max_pending_updates": 100, "max_pending_security_updates": 100 } },
            "applicability": { "8.22": { "applicable": false, "justification": "single flat office network" } }
        });
        let (s, v) = server.send("PUT", "/v1/admin/policy", a_, Some("application/json"), serde_json::to_vec(&policy).unwrap()).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["reevaluated_hosts"], 1);
        let snap = server.get("/v1/snapshot", a_).await.1;
        assert_eq!(control(&snap, "8.22")["not_applicable"], 1);
        assert_eq!(control(&snap, "8.22")["applicable_hosts"], 0);
        let host = server.get(&format!("/v1/hosts/{}", a.host_id), a_).await.1;
        let upd = host["findings"].as_array().unwrap().iter().find(|f| f["check"] == "patch_level.updates_installed").unwrap().clone();
        assert_eq!(upd["status"], "pass", "re-evaluated without a new report: {upd}");

        // The past: at t1 the default policy applied and the firewall finding failed 8.20 and 8.22.
        let past = server.get(&format!("/v1/snapshot?at={t1}"), a_).await.1;
        assert_eq!(control(&past, "8.20")["failing"], 1, "{past}");
        assert_eq!(control(&past, "8.22")["failing"], 1);
        assert_eq!(control(&past, "8.19")["failing"], 1);
        let before = server.get("/v1/snapshot?at=2020-01-01", a_).await.1;
        assert_eq!(before["hosts"], 0, "no host existed in 2020");

        // One control: failing hosts with their evidence; controls carry crosswalks.
        let c = server.get("/v1/controls/5.17", a_).await.1;
        assert_eq!(c["failing_hosts"][0]["host_id"], a.host_id.as_str(), "{c}");
        assert!(!c["failing_hosts"][0]["findings"][0]["evidence"].is_null());
        let all = server.get("/v1/controls", a_).await.1;
        assert_eq!(all["controls"].as_array().unwrap().len(), 93);
        assert!(all["controls"].as_array().unwrap().iter().any(|c| !c["crosswalks"].as_array().unwrap().is_empty()));

        // Stale: no report for more than one 3 s interval: unknown, never passing.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let snap = server.get("/v1/snapshot", a_).await.1;
        assert_eq!(snap["stale_hosts"], 1);
        let c516 = control(&snap, "5.16");
        assert_eq!((c516["passing"].as_u64(), c516["unknown"].as_u64()), (Some(0), Some(1)), "{c516}");
        let host = server.get(&format!("/v1/hosts/{}", a.host_id), a_).await.1;
        assert!(host["controls"]["5.16"]["reason"].as_str().unwrap().starts_with("stale"));

        // Key rotation: a fleet secret, however fresh, only leaves a pending key; the current key
        // signs a rotation; an admin approves a pending key; the old key stops working.
        let (_, v) = server.send("POST", "/v1/admin/enrollment-secrets", a_, Some("application/json"), b"{}".to_vec()).await;
        let reusable = v["secret"].as_str().unwrap().to_string();
        let b = SimHost::enroll(&server.api, &reusable, "host-b").await.unwrap();
        let _ = b;
        let pending = server.api.enroll(&reusable, &SigningKey::generate().unwrap(), "machine-a", "host-a").await.unwrap_err();
        assert!(pending.to_string().contains("key_change_needs_approval"), "{pending}");
        let old_key = a.key.key_id();
        let old_key_pkcs8 = SigningKey::from_pkcs8(a.key.pkcs8()).unwrap();
        let (s, body) = a.rotate(&server.api, SigningKey::generate().unwrap()).await.unwrap();
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
        let rotated: evidence_protocol::api::EnrollResponse = serde_json::from_slice(&body).unwrap();
        assert_eq!(rotated.host_id, a.host_id);
        assert_eq!(rotated.last_seq, 3);
        assert_ne!(rotated.key_id, old_key);
        let old_key_report = a.build_report(ReportKind::Attestation { still_holds: r3.digest() });
        let signed = old_key_report.sign(&old_key_pkcs8);
        let (s, body) = server.api.submit(&signed).await.unwrap();
        assert_eq!(s, 403, "the retired key is refused: {}", String::from_utf8_lossy(&body));
        // A new key with a fleet secret needs approval.
        let third = SigningKey::generate().unwrap();
        let pending = server.api.enroll(&reusable, &third, "machine-a", "host-a").await.unwrap_err();
        assert!(pending.to_string().contains("key_change_needs_approval"), "{pending}");
        let (s, v) = server.send("POST", &format!("/v1/admin/hosts/{}/approve-key", a.host_id), a_, Some("application/json"), serde_json::to_vec(&json!({"key_id": third.key_id()})).unwrap()).await;
        assert_eq!(s, 204, "{v}");
        a.key = third;
        let r4 = a.next_report(ReportKind::Full { facts: sample_facts("host-a") });
        let (s, body) = server.api.submit(&r4).await.unwrap();
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
        let snap = server.get("/v1/snapshot", a_).await.1;
        assert_eq!(control(&snap, "5.16")["passing"], 1, "fresh again");

        // Revocation holds.
        let (s, _) = server.send("POST", &format!("/v1/admin/hosts/{}/revoke", a.host_id), a_, None, vec![]).await;
        assert_eq!(s, 204);
        let r5 = a.next_report(ReportKind::Full { facts: sample_facts("host-a") });
        assert_eq!(server.api.submit(&r5).await.unwrap().0, 403);
        let snap = server.get("/v1/snapshot", a_).await.1;
        assert_eq!(control(&snap, "5.16")["passing"], 0, "revoked hosts are left out");

        // Reader tokens read; metrics and OpenAPI are served.
        let (_, v) = server.send("POST", "/v1/admin/tokens", a_, Some("application/json"), br#"{"role":"reader"}"#.to_vec()).await;
        let reader = v["token"].as_str().unwrap().to_string();
        assert_eq!(server.get("/v1/hosts", Some(&reader)).await.0, 200);
        let metrics = server.api.http.get(format!("{}/metrics", server.base)).bearer_auth(&reader).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("evidence_reports_accepted_total 4"), "{metrics}");
        assert!(metrics.contains("evidence_keys_pending 1"), "one fleet-secret attempt still pending: {metrics}");
        assert!(metrics.contains("evidence_reports_duplicate_total 1"));
        assert!(metrics.contains("evidence_reports_refused_total{reason=\"key_not_active\"} 1"));
        let openapi = server.get("/v1/openapi.json", None).await.1;
        assert_eq!(openapi["openapi"], "3.1.0");
        assert!(openapi["paths"]["/v1/snapshot"]["get"].is_object());
        let log = server.get("/v1/admin/log/verify", a_).await.1;
        // 4 reports, 5 key events (host-a and host-b enrolled, a rotation, an approval, host-a's
        // revocation) and 1 policy version.
        assert_eq!((log["ok"].as_bool(), log["entries"].as_u64()), (Some(true), Some(10)));
    });
}

/// The server's notion of "now" after the last commit (the last report's received time).
async fn chrono_like_now(server: &server_common::Server, token: Option<&str>) -> String {
    let hosts = server.get("/v1/hosts", token).await.1;
    hosts["hosts"][0]["last_seen"].as_str().unwrap().to_string()
}

#[test]
fn a_newer_agents_unknown_collector_is_accepted_and_kept_verbatim() {
    let (_tmp, data) = temp_dir();
    let server = start(&data, None, &[]);
    runtime().block_on(async {
        let admin = Some(server.admin.as_str());
        let secret = server.api.create_secret(&server.admin).await.unwrap();
        let mut host = SimHost::enroll(&server.api, &secret, "host-new")
            .await
            .unwrap();
        let mut facts = sample_facts("host-new");
        // A collector this server does not know, its facts in an order and spacing of its own.
        let unknown = r#"{"observed": {"zeta": 1, "alpha": [true, null]}}"#;
        facts.unknown.insert(
            "antivirus".into(),
            evidence_protocol::facts::RawFacts::from_json(unknown).unwrap(),
        );
        let report = host.next_report(ReportKind::Full { facts });
        let (status, body) = server.api.submit(&report).await.unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let receipt = host.check_receipt(&report, &body).unwrap();

        // The stored entry is the exact signed bytes, the unknown collector byte for byte.
        let stored = server
            .api
            .http
            .get(format!("{}/v1/reports/{}", server.base, receipt.log_index))
            .bearer_auth(&server.admin)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(Digest::of(&stored), report.digest());
        let text = String::from_utf8(stored.to_vec()).unwrap();
        assert!(text.contains(&format!("\"antivirus\":{unknown}")), "{text}");

        // The known collectors were evaluated as usual; the unknown one gave no finding.
        let (_, host_page) = server
            .get(&format!("/v1/hosts/{}", host.host_id), admin)
            .await;
        let checks: Vec<&str> = host_page["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["check"].as_str().unwrap())
            .collect();
        assert!(
            checks.contains(&"firewall.inbound_default_deny"),
            "{checks:?}"
        );
        assert!(
            checks.iter().all(|c| !c.starts_with("antivirus")),
            "{checks:?}"
        );

        // A policy change re-evaluates the stored bytes, unknown collector included, without
        // refusing them.
        let (s, v) = server
            .send(
                "PUT",
                "/v1/admin/policy",
                admin,
                Some("application/json"),
                b"{}".to_vec(),
            )
            .await;
        assert_eq!((s, v["reevaluated_hosts"].as_u64()), (200, Some(1)), "{v}");
    });
}

#[test]
fn the_log_signs_checkpoints_and_proves_every_receipt_and_its_own_growth() {
    use evidence_protocol::merkle;
    let (_tmp, data) = temp_dir();
    let server = start(&data, None, &[]);
    runtime().block_on(async {
        let admin = Some(server.admin.as_str());
        let note = |path: &'static str| {
            let api = server.api.clone();
            let token = server.admin.clone();
            async move {
                let resp = api
                    .http
                    .get(format!("{}{path}", api.base))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                resp.text().await.unwrap()
            }
        };
        let secret = server.api.create_secret(&server.admin).await.unwrap();
        let mut host = SimHost::enroll(&server.api, &secret, "host-log")
            .await
            .unwrap();
        let origin = format!(
            "evidence-server/{}",
            evidence_protocol::signing::key_id(&host.server_key)
        );
        let first = evidence_protocol::checkpoint::verify_note(
            &note("/v1/log/checkpoint").await,
            &origin,
            &host.server_key,
        )
        .unwrap();
        assert_eq!(
            (first.origin.as_str(), first.size),
            (origin.as_str(), 1),
            "the enrollment's key event"
        );

        let mut receipts = Vec::new();
        for _ in 0..3 {
            let report = host.next_report(ReportKind::Full {
                facts: sample_facts("host-log"),
            });
            let (status, body) = server.api.submit(&report).await.unwrap();
            assert_eq!(status, 200);
            receipts.push(host.check_receipt(&report, &body).unwrap());
        }
        let latest = evidence_protocol::checkpoint::verify_note(
            &note("/v1/log/checkpoint").await,
            &origin,
            &host.server_key,
        )
        .unwrap();
        assert_eq!(latest.size, 4);
        // A checkpoint signed by another key, or edited, is refused.
        let other = SigningKey::generate().unwrap();
        assert!(evidence_protocol::checkpoint::verify_note(
            &latest.sign(&other, &origin).unwrap(),
            &origin,
            &host.server_key
        )
        .is_err());

        // Every receipt's entry is in the signed tree.
        for receipt in &receipts {
            let (s, proof) = server
                .get(&format!("/v1/log/proof?index={}", receipt.log_index), admin)
                .await;
            assert_eq!(s, 200, "{proof}");
            assert_eq!(proof["size"], 4);
            let leaf: Digest = serde_json::from_value(proof["leaf_hash"].clone()).unwrap();
            let path: Vec<Digest> = serde_json::from_value(proof["proof"].clone()).unwrap();
            assert_eq!(
                merkle::verify_inclusion(
                    &leaf,
                    receipt.log_index,
                    latest.size,
                    &path,
                    &latest.root
                ),
                Ok(())
            );
            assert_eq!(
                merkle::verify_inclusion(&leaf, receipt.log_index, latest.size, &path, &first.root),
                Err(merkle::ProofError::RootMismatch),
                "not against another root"
            );
        }
        // The later tree extends the earlier one.
        let (s, c) = server.get("/v1/log/consistency?from=1&to=4", admin).await;
        assert_eq!(s, 200, "{c}");
        let path: Vec<Digest> = serde_json::from_value(c["proof"].clone()).unwrap();
        assert_eq!(
            merkle::verify_consistency(1, 4, &first.root, &latest.root, &path),
            Ok(())
        );
        // Out of range: refused with the JSON error.
        let (s, e) = server.get("/v1/log/proof?index=4&size=4", admin).await;
        assert_eq!((s, e["error"].as_str()), (422, Some("invalid_field")));
    });
}
