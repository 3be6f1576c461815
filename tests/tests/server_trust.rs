//! The trust model against the real server over TLS: a fleet-wide enrollment secret is never a
//! host identity (a new key for a known host stays pending until the host's current key, an
//! admin, or a secret made for that host says otherwise), every key change is in the host's
//! history and the evidence log, pending keys and enrollment attempts are capped, and the
//! operator is protected from the easy mistakes (modes, a second server, missing keys, a busy
//! port, locking out the last admin, an expiring certificate), with an audit trail.
//!
//! Needs the binary: `cargo build -p evidence-server && cargo test -p evidence-tests --test server_trust`.

mod server_common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use evidence_loadgen::client::{sample_facts, SimHost};
use evidence_protocol::{ReportKind, SigningKey};
use serde_json::{json, Value};
use server_common::{runtime, server_bin, start, start_with_umask, temp_dir, Server};

async fn machine_id(server: &Server, host_id: &str) -> String {
    let hosts = server.get("/v1/hosts", Some(&server.admin)).await.1;
    hosts["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host_id"] == host_id)
        .unwrap()["machine_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn metrics(server: &Server) -> String {
    let resp = server
        .api
        .http
        .get(format!("{}/metrics", server.base))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    resp.text().await.unwrap()
}

async fn new_secret(server: &Server, body: Value) -> (u16, Value) {
    server
        .send(
            "POST",
            "/v1/admin/enrollment-secrets",
            Some(&server.admin),
            Some("application/json"),
            serde_json::to_vec(&body).unwrap(),
        )
        .await
}

#[test]
fn a_fleet_secret_cannot_take_over_a_known_host_and_every_key_change_is_logged() {
    let (tmp, data) = temp_dir();
    let config = tmp.path().join("server.toml");
    std::fs::write(
        &config,
        "enroll_burst_per_secret = 8\nenroll_per_minute_per_secret = 6\n",
    )
    .unwrap();
    let server = start(&data, None, &["--config", config.to_str().unwrap()]);
    runtime().block_on(async {
        let admin = Some(server.admin.as_str());
        let install = server.api.create_secret(&server.admin).await.unwrap();
        let mut a = SimHost::enroll(&server.api, &install, "host-a").await.unwrap();
        let r1 = a.next_report(ReportKind::Full { facts: sample_facts("host-a") });
        assert_eq!(server.api.submit(&r1).await.unwrap().0, 200);
        let machine = machine_id(&server, &a.host_id).await;

        // An attacker holding a fleet secret created AFTER the host's key, and its machine id.
        let (_, v) = new_secret(&server, json!({})).await;
        let fresh = v["secret"].as_str().unwrap().to_string();
        let thief = SigningKey::generate().unwrap();
        let refused = server.api.enroll(&fresh, &thief, &machine, "host-a").await.unwrap_err().to_string();
        assert!(refused.contains("key_change_needs_approval"), "{refused}");
        assert!(!refused.contains("last_seq") && !refused.contains(&a.host_id), "nothing about the host is handed out: {refused}");
        // The real host keeps reporting with its key, with no gap; the thief's key signs nothing.
        let r2 = a.next_report(ReportKind::Full { facts: sample_facts("host-a") });
        let (s, body) = server.api.submit(&r2).await.unwrap();
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
        let forged = SimHost { key: SigningKey::from_pkcs8(thief.pkcs8()).unwrap(), host_id: a.host_id.clone(), server_key: a.server_key, next_seq: a.next_seq, prev: a.prev, hostname: "host-a".into(), witnessed: None };
        let (s, body) = server.api.submit(&forged.build_report(ReportKind::Full { facts: sample_facts("x") }).sign(&forged.key)).await.unwrap();
        let refusal = String::from_utf8_lossy(&body);
        assert!(s == 401 && refusal.contains("unknown_key"), "a pending key is not trusted: {s} {refusal}");
        // Visible: the host view, the metrics.
        let host = server.get(&format!("/v1/hosts/{}", a.host_id), admin).await.1;
        assert!(host["history"]["gaps"].as_array().unwrap().is_empty(), "{host}");
        let keys = host["keys"].as_array().unwrap();
        assert!(keys.iter().any(|k| k["key_id"] == thief.key_id().as_str() && k["state"] == "pending"), "{keys:?}");
        assert!(keys.iter().any(|k| k["key_id"] == a.key.key_id().as_str() && k["state"] == "active"));
        assert_eq!(host["history"]["key_events"][0]["event"], "pending");
        let m = metrics(&server).await;
        assert!(m.contains("evidence_keys_pending 1"), "{m}");
        assert!(m.contains("evidence_security_events_total{event=\"key_change\",outcome=\"pending\"} 1"), "{m}");

        // Pending keys are capped per host.
        for _ in 0..2 {
            let e = server.api.enroll(&fresh, &SigningKey::generate().unwrap(), &machine, "host-a").await.unwrap_err();
            assert!(e.to_string().contains("key_change_needs_approval"), "{e}");
        }
        let e = server.api.enroll(&fresh, &SigningKey::generate().unwrap(), &machine, "host-a").await.unwrap_err();
        assert!(e.to_string().contains("too_many_pending_keys"), "{e}");

        // A secret made for this one host re-keys it (the host lost its key), at once.
        let (s, v) = new_secret(&server, json!({"host_id": a.host_id})).await;
        assert_eq!((s, v["single_use"].as_bool()), (201, Some(true)), "{v}");
        let for_a = v["secret"].as_str().unwrap().to_string();
        let other = SimHost::enroll(&server.api, &install, "host-b").await.unwrap();
        let e = server.api.enroll(&for_a, &SigningKey::generate().unwrap(), &machine_id(&server, &other.host_id).await, "host-b").await.unwrap_err();
        assert!(e.to_string().contains("secret_for_another_host"), "{e}");
        let new_key = SigningKey::generate().unwrap();
        let rekeyed = server.api.enroll(&for_a, &new_key, &machine, "host-a").await.unwrap();
        assert_eq!((rekeyed.host_id.as_str(), rekeyed.last_seq), (a.host_id.as_str(), 2), "the host's own re-key continues its chain");
        let old = a.build_report(ReportKind::Full { facts: sample_facts("host-a") }).sign(&a.key);
        assert_eq!(server.api.submit(&old).await.unwrap().0, 403, "the old key is retired");
        a.key = new_key;
        assert_eq!(server.api.submit(&a.next_report(ReportKind::Full { facts: sample_facts("host-a") })).await.unwrap().0, 200);

        // A rotation must be signed by the host's current key, not another host's.
        let mut impostor = SimHost { key: SigningKey::from_pkcs8(other.key.pkcs8()).unwrap(), host_id: a.host_id.clone(), server_key: a.server_key, next_seq: 1, prev: None, hostname: "x".into(), witnessed: None };
        let (s, body) = impostor.rotate(&server.api, SigningKey::generate().unwrap()).await.unwrap();
        assert_eq!(s, 403, "{}", String::from_utf8_lossy(&body));
        let (s, body) = a.rotate(&server.api, SigningKey::generate().unwrap()).await.unwrap();
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));

        // Every key change is in the host's history and in the evidence log, which verifies.
        let host = server.get(&format!("/v1/hosts/{}", a.host_id), admin).await.1;
        let events: Vec<&str> = host["history"]["key_events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(events, ["rotated", "rekeyed", "pending", "pending", "pending", "enrolled"], "{host}");
        let rotated = &host["history"]["key_events"][0];
        let idx = rotated["log_index"].as_u64().unwrap();
        let raw = server.api.http.get(format!("{}/v1/reports/{idx}", server.base)).bearer_auth(&server.admin).send().await.unwrap().bytes().await.unwrap();
        let entry: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!((entry["type"].as_str(), entry["event"].as_str()), (Some("key_event"), Some("rotated")), "{entry}");
        assert_eq!(entry["key_id"], a.key.key_id().as_str());
        assert!(entry["proof"]["signature_by_previous_key"].is_string(), "the rotation's signatures are kept: {entry}");
        let log = server.get("/v1/admin/log/verify", admin).await.1;
        assert_eq!(log["ok"], true, "{log}");

        // Enrollment attempts are rate-limited per secret (burst 8 in this configuration).
        let mut limited = None;
        for i in 0..12 {
            let body = serde_json::to_vec(&json!({"secret": fresh, "public_key": SigningKey::generate().unwrap().public_key_b64(), "agent_version": "1",
                "identity": {"machine_id": format!("flood-{i}"), "hostname": "flood"}})).unwrap();
            let resp = server.api.http.post(format!("{}/v1/enroll", server.base)).header("content-type", "application/json")
                .header("x-evidence-signature", signing_placeholder()).body(body).send().await.unwrap();
            if resp.status() == 429 {
                limited = Some(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(String::from));
                break;
            }
        }
        assert!(matches!(limited, Some(Some(_))), "429 with Retry-After within 12 attempts: {limited:?}");
    });
}

/// A well-formed signature that matches nothing: the attempts are refused, and counted.
fn signing_placeholder() -> String {
    evidence_protocol::signing::b64(&[7u8; 64])
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Runs the server binary with `args` to completion (it must stop by itself).
fn run_server(args: &[&str]) -> std::process::Output {
    Command::new(server_bin())
        .args(args)
        .output()
        .expect("run evidence-server")
}

#[test]
fn the_operator_is_protected_from_lost_keys_a_second_server_and_admin_lockout() {
    let (tmp, data) = temp_dir();
    let server = start_with_umask(&data, None, &[], Some("000"));
    let d = data.to_str().unwrap().to_string();
    // Modes, whatever the umask.
    assert_eq!(mode(&data), 0o700);
    for f in [
        "evidence.db",
        "server-key.pk8",
        "tls-key.pem",
        "admin-token",
        "lock",
    ] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    if data.join("evidence.db-wal").exists() {
        assert_eq!(mode(&data.join("evidence.db-wal")), 0o600, "WAL");
    }
    assert_eq!(
        std::fs::read_to_string(data.join("admin-token"))
            .unwrap()
            .trim(),
        server.admin,
        "the printed token is saved"
    );

    // A second server on the same directory refuses, naming the directory and the holder.
    let second = run_server(&["serve", "--listen", "127.0.0.1:0", "--data-dir", &d]);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(
        err.contains(&d) && err.contains(&format!("pid {}", server.child.id())),
        "{err}"
    );
    // A busy port stops the start before anything is created.
    let other = tmp.path().join("other");
    let addr = server.base.trim_start_matches("https://").to_string();
    let busy = run_server(&[
        "serve",
        "--listen",
        &addr,
        "--data-dir",
        other.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(!busy.status.success() && err.contains(&addr), "{err}");
    assert!(
        !other.exists(),
        "nothing was created for a server that could not listen"
    );
    // Values that would overflow are refused at start-up.
    let overflow = run_server(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        other.to_str().unwrap(),
        "--max-clock-skew-secs",
        "9223372036854775807",
    ]);
    let err = String::from_utf8_lossy(&overflow.stderr);
    assert!(
        !overflow.status.success() && err.contains("max_clock_skew_secs"),
        "{err}"
    );

    runtime().block_on(async {
        let m = metrics(&server).await;
        let expiry: f64 = m.lines().find_map(|l| l.strip_prefix("evidence_tls_certificate_expiry_seconds ")).unwrap().parse().unwrap();
        let days = expiry / 86_400.0;
        assert!((728.0..=731.0).contains(&days), "a generated certificate is valid for two years: {days} days");

        // Admin lockout: the last admin token cannot be revoked; a local command mints another.
        let first_id = server.admin.split('_').nth(1).unwrap().to_string();
        let (s, v) = server.send("DELETE", &format!("/v1/admin/tokens/{first_id}"), Some(&server.admin), None, vec![]).await;
        assert_eq!((s, v["error"].as_str()), (409, Some("last_admin_token")), "{v}");
        let minted = run_server(&["admin-token", "--data-dir", &d]);
        assert!(minted.status.success(), "{}", String::from_utf8_lossy(&minted.stderr));
        let recovery = String::from_utf8_lossy(&minted.stdout).trim().to_string();
        assert_eq!(server.get("/v1/hosts", Some(&recovery)).await.0, 200, "the running server accepts the minted token");
        let (s, _) = server.send("DELETE", &format!("/v1/admin/tokens/{first_id}"), Some(&recovery), None, vec![]).await;
        assert_eq!(s, 204, "with two admin tokens one may go");
        let (_, v) = server.send("PUT", "/v1/admin/policy", Some(&recovery), Some("application/json"),
            br#"{"applicability":{"8.22":{"applicable":false,"justification":"one flat network"}}}"#.to_vec()).await;
        assert_eq!(v["reevaluated_hosts"], 0, "{v}");

        // The audit trail: who changed what, and failed authentication counted.
        let recovery_id = recovery.split('_').nth(1).unwrap();
        let (s, audit) = server.get("/v1/admin/audit", Some(&recovery)).await;
        assert_eq!(s, 200, "{audit}");
        let events: Vec<(String, String, String)> = audit["events"].as_array().unwrap().iter()
            .map(|e| (e["event"].as_str().unwrap().into(), e["actor"].as_str().unwrap().into(), e["target"].as_str().unwrap().into())).collect();
        assert_eq!(events[0], ("policy_changed".into(), recovery_id.into(), "policy".into()), "{events:?}");
        assert_eq!(events[1], ("token_revoked".into(), recovery_id.into(), first_id.clone()), "{events:?}");
        assert_eq!(events[2], ("token_created".into(), "local admin-token command".into(), recovery_id.into()), "{events:?}");
        assert_eq!(events[3], ("token_created".into(), "server (first start)".into(), first_id.clone()), "{events:?}");
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!(server.get("/v1/hosts", Some(&server.admin)).await.0, 401, "the revoked token is refused");
        let m = server.api.http.get(format!("{}/metrics", server.base)).bearer_auth(&recovery).send().await.unwrap().text().await.unwrap();
        assert!(m.contains("evidence_security_events_total{event=\"authentication\",outcome=\"bad_token\"} 1"), "{m}");
    });
    drop(server);

    // A store holding data never regenerates a missing key.
    std::fs::rename(data.join("server-key.pk8"), tmp.path().join("key.bak")).unwrap();
    let out = run_server(&["serve", "--listen", "127.0.0.1:0", "--data-dir", &d]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("server-key.pk8") && err.contains("restore"),
        "{err}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("admin token"),
        "no new admin token"
    );
    assert!(
        !data.join("server-key.pk8").exists(),
        "no key was made in its place"
    );
    std::fs::rename(tmp.path().join("key.bak"), data.join("server-key.pk8")).unwrap();
    std::fs::rename(data.join("tls-key.pem"), tmp.path().join("tls.bak")).unwrap();
    let out = run_server(&["serve", "--listen", "127.0.0.1:0", "--data-dir", &d]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("tls-key.pem"));
    // A missing database beside its keys, a zero-byte or a foreign database file: refused.
    std::fs::rename(tmp.path().join("tls.bak"), data.join("tls-key.pem")).unwrap();
    for (name, content) in [
        ("empty", &b""[..]),
        ("foreign", &b"not a database at all, just text"[..]),
    ] {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("evidence.db"), content).unwrap();
        let out = run_server(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("evidence.db"),
            "{name}: {err}"
        );
        assert_eq!(
            std::fs::read(dir.join("evidence.db")).unwrap(),
            content,
            "{name}: left as it was"
        );
    }
    std::fs::rename(data.join("evidence.db"), tmp.path().join("db.bak")).unwrap();
    let out = run_server(&["serve", "--listen", "127.0.0.1:0", "--data-dir", &d]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("evidence.db is missing"),
        "{err}"
    );
    // verify-log on a directory without a store is an error, not "0 entries verified".
    let empty = tmp.path().join("nothing");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run_server(&["verify-log", "--data-dir", empty.to_str().unwrap()]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no evidence store"),
        "{out:?}"
    );
}
