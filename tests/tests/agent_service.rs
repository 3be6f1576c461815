//! End-to-end: `evidence-agent enroll` and `evidence-agent run` against a real
//! `evidence-server serve`, real processes over real TLS on loopback.
//!
//! Each test starts its own server (temporary data dir, free loopback port), creates an
//! enrollment secret through the admin API, enrolls an agent whose `--root` is a small temporary
//! tree (passwd, shadow, group, machine-id), runs it, and reads what reached the server through
//! the read API. Build the binaries first: `cargo build --workspace --bins`.

#[path = "agent_service/harness.rs"]
mod harness;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use harness::*;
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn an_enrolled_agent_reports_with_findings_and_keeps_its_key_private() {
    let (_data, server, mut agent) = enrolled(TUNING);
    let mode = std::fs::metadata(agent.state().join("agent.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the host key is readable by its owner only"
    );
    let host_id = agent.host_id();
    agent.start();
    let status = wait_until(
        "the first report's findings on the server",
        Duration::from_secs(20),
        || server.finding(&host_id, "accounts.no_extra_uid0"),
    );
    assert_eq!(status, "pass", "only root has uid 0 in the test tree");
    let host = server.host(&host_id);
    assert_eq!(host["host"]["hostname"], "agent-under-test", "{host}");
    wait_until(
        "status shows the verified receipt",
        Duration::from_secs(10),
        || {
            let status = agent.status();
            (status["run"]["last_receipt"]["seq"] == 1 && status["spool_depth"] == 0).then_some(())
        },
    );
    let status = agent.status();
    assert_eq!(status["enrolled"], true);
    assert_eq!(status["service_running"], true);
    assert_eq!(status["host_id"], host_id.as_str());
    agent.stop();
    assert_eq!(agent.status()["service_running"], false);
}

#[test]
fn a_new_uid0_account_is_failing_on_the_server_within_five_seconds() {
    let (_data, server, mut agent) = enrolled(TUNING);
    let host_id = agent.host_id();
    agent.start();
    wait_until("the first report", Duration::from_secs(20), || {
        server
            .finding(&host_id, "accounts.no_extra_uid0")
            .filter(|s| s == "pass")
    });
    let changed = Instant::now();
    agent.write_passwd(&format!("{PASSWD}toor:x:0:0:backdoor:/root:/bin/sh\n"));
    wait_until("the failing finding", Duration::from_secs(5), || {
        server
            .finding(&host_id, "accounts.no_extra_uid0")
            .filter(|s| s == "fail")
    });
    let elapsed = changed.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    eprintln!("uid-0 account to failing finding on the server: {elapsed:?}");
    let status = agent.status();
    assert_eq!(
        status["run"]["last_report"]["trigger"], "change: accounts",
        "{status}"
    );
    agent.stop();
}

#[test]
fn reports_made_while_the_server_is_down_all_arrive_once_and_in_order() {
    let tuning = Tuning {
        heartbeat_secs: 1,
        ..TUNING
    };
    let (_data, mut server, mut agent) = enrolled(tuning);
    let host_id = agent.host_id();
    agent.start();
    wait_until("the first report", Duration::from_secs(20), || {
        (!server.seqs(&host_id).is_empty()).then_some(())
    });
    server.stop();
    // Changes and heartbeats while the server is down all go to the spool.
    for i in 0..3 {
        agent.write_passwd(&format!(
            "{PASSWD}user{i}:x:{}:100::/home/u:/bin/sh\n",
            2000 + i
        ));
        std::thread::sleep(Duration::from_millis(700));
    }
    wait_until(
        "at least 5 reports spooled",
        Duration::from_secs(20),
        || (agent.spool_depth() >= 5).then_some(()),
    );
    assert!(
        agent.running(),
        "the agent keeps running through the outage"
    );
    let status = agent.status();
    assert!(
        status["run"]["last_error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("cannot reach"),
        "{status}"
    );

    server.restart();
    let last = drain_and_stop(&mut agent, &server, &host_id);
    let seqs = server.seqs(&host_id);
    assert_eq!(
        seqs,
        (1..=last).collect::<Vec<_>>(),
        "each report once, in order, none missing"
    );
    let host = server.host(&host_id);
    assert_eq!(host["history"]["gaps"], json!([]), "no gap: {host}");
    let kinds: Vec<&str> = host["history"]["reports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"attestation"),
        "quiet heartbeats are signed attestations: {kinds:?}"
    );
}

#[test]
fn a_full_spool_drops_the_oldest_and_the_server_records_the_counted_gap() {
    let tuning = Tuning {
        heartbeat_secs: 1,
        max_reports: 3,
        ..TUNING
    };
    let (_data, mut server, mut agent) = enrolled(tuning);
    let host_id = agent.host_id();
    agent.start();
    wait_until("the first report", Duration::from_secs(20), || {
        (!server.seqs(&host_id).is_empty()).then_some(())
    });
    server.stop();
    let before = agent.next_seq();
    wait_until(
        "7 heartbeats made during the outage",
        Duration::from_secs(20),
        || (agent.next_seq() >= before + 7).then_some(()),
    );
    assert_eq!(agent.spool_depth(), 3, "the spool keeps only the newest 3");
    server.restart();
    let last = drain_and_stop(&mut agent, &server, &host_id);
    let seqs = server.seqs(&host_id);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    let missing = last - seqs.len() as u64;
    assert!(missing >= 4, "reports were dropped: {seqs:?}");
    let host = server.host(&host_id);
    let counted: u64 = host["history"]["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["kind"] == "dropped_reports")
        .map(|g| g["dropped"].as_u64().unwrap())
        .sum();
    assert_eq!(
        counted, missing,
        "every dropped report is counted: {}",
        host["history"]["gaps"]
    );
}

#[test]
fn after_sigkill_while_writing_the_spool_is_intact_and_delivery_continues() {
    // A change every 20 ms with a 10 ms debounce keeps the agent writing reports.
    let tuning = Tuning {
        debounce_ms: 10,
        ..TUNING
    };
    let (_data, mut server, mut agent) = enrolled(tuning);
    let host_id = agent.host_id();
    server.stop();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let root = agent.root();
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let etc = root.join("etc");
                let content = format!("{PASSWD}churn:x:{}:100::/:/bin/sh\n", 3000 + i % 50);
                std::fs::write(etc.join("passwd+"), content).unwrap();
                std::fs::rename(etc.join("passwd+"), etc.join("passwd")).unwrap();
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    for round in 0..8 {
        agent.start();
        let wait = 400 + 150 * round;
        std::thread::sleep(Duration::from_millis(wait));
        agent.kill();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    let spooled = agent.spool_depth();
    assert!(
        spooled >= 8,
        "reports were being written when killed: {:?}",
        agent.spool_files()
    );
    let torn = agent
        .spool_files()
        .iter()
        .filter(|n| n.ends_with(".tmp"))
        .count();
    eprintln!("after 8 SIGKILLs: {spooled} reports spooled, {torn} half-written temporary file(s)");

    server.restart();
    agent.start();
    wait_until(
        "the spool to drain after the kills",
        Duration::from_secs(60),
        || (agent.spool_depth() == 0).then_some(()),
    );
    agent.stop();
    assert!(
        !agent.state().join("spool/corrupt").exists(),
        "no torn entry: {:?}",
        agent.spool_files()
    );
    assert!(
        agent.spool_files().iter().all(|n| !n.ends_with(".tmp")),
        "{:?}",
        agent.spool_files()
    );
    let last = agent.next_seq() - 1;
    let seqs = server.seqs(&host_id);
    // The server lists a host's latest 100 reports; each names its predecessor's digest, so a
    // missing or reordered report would be a recorded gap.
    assert_eq!(seqs.len() as u64, last.min(100), "{seqs:?}");
    assert_eq!(seqs.last(), Some(&last));
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "contiguous, in order: {seqs:?}"
    );
    let host = server.host(&host_id);
    assert_eq!(
        host["history"]["gaps"],
        json!([]),
        "no gap: {}",
        host["history"]
    );
}

#[test]
fn an_agent_refuses_the_receipt_of_a_server_that_rewrote_the_history_it_witnessed() {
    let (_data, mut server, mut agent) = enrolled(TUNING);
    agent.start();
    wait_until("a verified receipt", Duration::from_secs(20), || {
        (agent.status()["run"]["last_receipt"]["seq"] == 1).then_some(())
    });
    let witness: serde_json::Value =
        serde_json::from_slice(&std::fs::read(agent.state().join("witness.json")).unwrap())
            .unwrap();
    assert!(witness["size"].as_u64().unwrap() >= 2, "{witness}");
    server.stop();
    let db = server.data_dir.join("evidence.db");
    rewrite_first_log_entry(&db, false);
    // The server itself refuses to sign over a tree that does not extend its last checkpoint.
    let refused = std::process::Command::new(evidence_tests::binary("evidence-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("does not extend the checkpoint"),
        "{stderr}"
    );
    // A server that also forgets what it signed starts, and only the witnesses can tell.
    rewrite_first_log_entry(&db, true);
    server.restart();
    agent.write_passwd(&format!("{PASSWD}late:x:4000:100::/:/bin/sh\n"));
    let refused = wait_until("the refusal in status", Duration::from_secs(20), || {
        agent.status()["run"]["delivery_refused"]
            .as_str()
            .map(str::to_string)
    });
    assert!(
        refused.contains("rewrote or forked history"),
        "the agent says why: {refused}"
    );
    assert!(agent.spool_depth() >= 1, "the report stays in the spool");
    assert!(agent.running(), "the agent keeps running and collecting");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(
            &std::fs::read(agent.state().join("witness.json")).unwrap()
        )
        .unwrap(),
        witness,
        "the witnessed checkpoint is not replaced by the rewritten log's"
    );
    agent.stop();
}

/// Replaces the evidence log's first leaf and recomputes every stored interior node (and
/// forgets the checkpoints it signed), as a server rewriting its history coherently would: the
/// tree is valid, but not the one signed before.
fn rewrite_first_log_entry(db: &Path, forget_checkpoints: bool) {
    use evidence_protocol::merkle::{leaf_hash, node_hash};
    use evidence_protocol::Digest;
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut level: Vec<Digest> = conn
        .prepare("SELECT hash FROM merkle_nodes WHERE level = 0 ORDER BY idx")
        .unwrap()
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|h| Digest(h.unwrap().try_into().unwrap()))
        .collect();
    level[0] = leaf_hash(b"a history the agent never saw");
    if forget_checkpoints {
        conn.execute("DELETE FROM checkpoints", []).unwrap();
    }
    let mut depth = 0;
    while !level.is_empty() {
        for (idx, hash) in level.iter().enumerate() {
            conn.execute(
                "UPDATE merkle_nodes SET hash = ?1 WHERE level = ?2 AND idx = ?3",
                rusqlite::params![hash.as_bytes().as_slice(), depth, idx as i64],
            )
            .unwrap();
        }
        level = level
            .chunks_exact(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
        depth += 1;
    }
}

#[test]
fn the_agent_refuses_a_server_with_another_certificate() {
    let (data, mut server, mut agent) = enrolled(TUNING);
    let host_id = agent.host_id();
    let port = server.port;
    server.stop();
    // Another server (its own self-signed certificate) on the same address.
    let impostor = Server::start(&data.path().join("impostor"), port, None);
    assert_ne!(impostor.fingerprint, server.fingerprint);

    // Enrolling with the first server's fingerprint sends nothing to it.
    let other = Agent::new(TUNING);
    let (ok, out) = other.enroll(&impostor, &server.fingerprint, &impostor.new_secret());
    assert!(!ok, "enroll must fail against another certificate: {out}");
    assert!(out.contains("not the pinned one"), "clear error: {out}");

    agent.start();
    wait_until(
        "a delivery attempt refused by the pin",
        Duration::from_secs(20),
        || {
            let status = agent.status();
            let error = status["run"]["last_error"]["message"]
                .as_str()
                .unwrap_or("")
                .to_string();
            error.contains("not the pinned one").then_some(())
        },
    );
    let (status, hosts) = impostor.api("GET", "/v1/hosts", None);
    assert_eq!(status, 200);
    assert_eq!(hosts["hosts"], json!([]), "the impostor received nothing");
    assert!(agent.spool_depth() >= 1, "the report waits in the spool");
    assert!(agent.running());
    agent.stop();
    let _ = host_id;
}

#[test]
fn a_revoked_host_gets_a_clear_error_and_loses_nothing_locally() {
    let (_data, server, mut agent) = enrolled(TUNING);
    let host_id = agent.host_id();
    agent.start();
    wait_until("the first report", Duration::from_secs(20), || {
        (!server.seqs(&host_id).is_empty()).then_some(())
    });
    let (status, body) = server.api(
        "POST",
        &format!("/v1/admin/hosts/{host_id}/revoke"),
        Some(json!({})),
    );
    assert!((200..300).contains(&status), "revoke: {status} {body}");
    agent.write_passwd(&format!("{PASSWD}late:x:4000:100::/:/bin/sh\n"));
    let refused = wait_until("the refusal in status", Duration::from_secs(10), || {
        agent.status()["run"]["delivery_refused"]
            .as_str()
            .map(str::to_string)
    });
    assert!(refused.contains("host_revoked"), "{refused}");
    assert!(
        agent.spool_depth() >= 1,
        "the report made after revocation stays in the spool"
    );
    assert!(agent.running(), "the agent keeps running and collecting");
    let out = agent.command("status").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("DELIVERY REFUSED") && text.contains("host_revoked"),
        "{text}"
    );
    agent.stop();
}

#[test]
fn under_systemd_the_agent_reports_ready_pings_the_watchdog_and_says_stopping() {
    let (_data, _server, mut agent) = enrolled(TUNING);
    let socket_path = agent.dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let socket_env = socket_path.to_str().unwrap().to_string();
    // A 2 s watchdog: the agent must ping at least every second.
    agent.start_with_env(&[("NOTIFY_SOCKET", &socket_env), ("WATCHDOG_USEC", "2000000")]);
    let mut seen = Vec::new();
    let mut buffer = [0u8; 512];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(seen.iter().any(|m: &String| m.contains("READY=1"))
        && seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2)
    {
        assert!(Instant::now() < deadline, "notifications so far: {seen:?}");
        let n = socket
            .recv(&mut buffer)
            .expect("a notification within 10 s");
        seen.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
    agent.stop();
    let mut rest = Vec::new();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while let Ok(n) = socket.recv(&mut buffer) {
        rest.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
    assert!(
        rest.iter().any(|m| m.contains("STOPPING=1")),
        "after SIGTERM: {rest:?}"
    );
}

#[test]
fn an_agent_pinned_to_a_ca_reports_and_refuses_a_server_from_another_ca() {
    let data = tempfile::tempdir().unwrap();
    let (ca_pem, ca) = make_ca("evidence test CA");
    let (other_ca_pem, _) = make_ca("some other CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = params.signed_by(&key, &ca).unwrap();
    let cert_file = data.path().join("server.pem");
    let key_file = data.path().join("server-key.pem");
    std::fs::write(&cert_file, leaf.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let ca_file = data.path().join("ca.pem");
    let other_ca_file = data.path().join("other-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    std::fs::write(&other_ca_file, other_ca_pem).unwrap();
    let server = Server::start_with(
        &data.path().join("server"),
        free_port(),
        None,
        &[
            Path::new("--tls-cert"),
            &cert_file,
            Path::new("--tls-key"),
            &key_file,
        ],
    );

    let stranger = Agent::new(TUNING);
    let pin = ["--ca", other_ca_file.to_str().unwrap()];
    let (ok, out) = stranger.enroll_pinned(&server, &pin, &server.new_secret());
    assert!(!ok, "a server certified by another CA is refused: {out}");
    assert!(
        out.to_lowercase().contains("unknown issuer") || out.contains("UnknownIssuer"),
        "clear error: {out}"
    );

    let mut agent = Agent::new(TUNING);
    let pin = ["--ca", ca_file.to_str().unwrap()];
    let (ok, out) = agent.enroll_pinned(&server, &pin, &server.new_secret());
    assert!(ok, "enroll with the CA: {out}");
    let host_id = agent.host_id();
    agent.start();
    wait_until(
        "the first report over CA-validated TLS",
        Duration::from_secs(20),
        || server.finding(&host_id, "accounts.no_extra_uid0"),
    );
    agent.stop();
    let (_, hosts) = server.api("GET", "/v1/hosts", None);
    let count = hosts["hosts"].as_array().map(Vec::len);
    assert_eq!(count, Some(1), "only the CA-pinned agent: {hosts}");
}
