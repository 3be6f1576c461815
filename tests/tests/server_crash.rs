//! Crash safety: SIGKILL the real server while hosts are sending reports. After a restart on the
//! same data directory, every report the clients hold a receipt for is stored verbatim and its
//! receipt verifies, no report is partially stored (each host's stored reports are exactly
//! 1..=last_seq, and the sum matches the log), and the evidence log's hash chain verifies end to
//! end, through the API and offline (`evidence-server verify-log`).
//!
//! Needs the binary: `cargo build -p evidence-server && cargo test -p evidence-tests --test server_crash`.

mod server_common;

use std::time::{Duration, Instant};

use evidence_loadgen::client::{sample_facts, SimHost};
use evidence_protocol::{Receipt, Report, ReportKind, SignedReport};
use server_common::{runtime, start, temp_dir};

const HOSTS: usize = 16;

#[test]
fn sigkill_under_load_loses_no_acknowledged_report_and_the_log_still_verifies() {
    let (_tmp, data) = temp_dir();
    let mut server = start(&data, None, &[]);
    let admin = server.admin.clone();
    let rt = runtime();
    let api = server.api.clone();
    let secret = rt.block_on(api.create_secret(&admin)).unwrap();
    let hosts: Vec<SimHost> = rt.block_on(async {
        let mut v = Vec::new();
        for i in 0..HOSTS {
            v.push(
                SimHost::enroll(&api, &secret, &format!("crash-{i}"))
                    .await
                    .unwrap(),
            );
        }
        v
    });
    // Each host sends its chain as fast as it can until the server dies.
    let tasks: Vec<_> = hosts
        .into_iter()
        .map(|mut h| {
            let api = api.clone();
            rt.spawn(async move {
                let mut acked: Vec<(SignedReport, Receipt)> = Vec::new();
                loop {
                    let r = h.next_report(ReportKind::Full {
                        facts: sample_facts(&h.hostname),
                    });
                    match api.submit(&r).await {
                        Ok((200, body)) => {
                            let receipt = h.check_receipt(&r, &body).expect("receipt verifies");
                            acked.push((r, receipt));
                        }
                        Ok((status, body)) => {
                            panic!("refused {status}: {}", String::from_utf8_lossy(&body))
                        }
                        Err(_) => return (h, acked, r),
                    }
                }
            })
        })
        .collect();
    // Let the load run, then SIGKILL (Child::kill sends SIGKILL on Unix).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let metrics = rt.block_on(async {
            api.http
                .get(format!("{}/metrics", server.base))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
        let accepted: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("evidence_reports_accepted_total "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if accepted >= 300 || Instant::now() > deadline {
            assert!(accepted > 0, "no report was accepted before the kill");
            break;
        }
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    let mut results: Vec<_> = tasks
        .into_iter()
        .map(|t| rt.block_on(t).expect("sender task"))
        .collect();
    let acked: usize = results.iter().map(|r| r.1.len()).sum();
    assert!(acked > 0);

    // Restart on the same directory.
    let restarted = start(&data, Some(&admin), &[]);
    rt.block_on(async {
        let a = Some(admin.as_str());
        for (h, receipts, _) in &results {
            for (report, receipt) in receipts {
                let witnessed = Report::from_bytes(&report.bytes).unwrap().witnessed;
                receipt
                    .verify(&h.server_key, &report.bytes, witnessed.as_ref())
                    .expect("receipt still verifies");
                let url = format!("{}/v1/reports/{}", restarted.base, receipt.log_index);
                let stored = restarted
                    .api
                    .http
                    .get(url)
                    .bearer_auth(&admin)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    stored.status(),
                    200,
                    "acknowledged report at {} is stored",
                    receipt.log_index
                );
                assert_eq!(
                    stored.bytes().await.unwrap().as_ref(),
                    report.bytes.as_slice(),
                    "stored verbatim"
                );
            }
        }
        let log = restarted.get("/v1/admin/log/verify", a).await.1;
        assert_eq!(log["ok"], true, "{log}");
        let entries = log["entries"].as_u64().unwrap();
        assert!(
            entries as usize >= acked,
            "{entries} stored, {acked} acknowledged"
        );
        // No partial reports: each host's stored reports are exactly seq 1..=last_seq.
        let hosts = restarted.get("/v1/hosts", a).await.1;
        let mut sum = 0;
        for host in hosts["hosts"].as_array().unwrap() {
            let last_seq = host["last_seq"].as_u64().unwrap();
            let acked_here = results
                .iter()
                .find(|r| r.0.host_id == host["host_id"].as_str().unwrap())
                .map(|r| r.1.len())
                .unwrap();
            assert!(last_seq as usize >= acked_here);
            assert!(
                last_seq as usize <= acked_here + 1,
                "at most the one in-flight report is stored unacknowledged"
            );
            let detail = restarted
                .get(
                    &format!("/v1/hosts/{}", host["host_id"].as_str().unwrap()),
                    a,
                )
                .await
                .1;
            let seqs: Vec<u64> = detail["history"]["reports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["seq"].as_u64().unwrap())
                .collect();
            if last_seq <= 100 {
                let mut expected: Vec<u64> = (1..=last_seq).collect();
                expected.reverse();
                assert_eq!(seqs, expected, "host {} stored reports", host["host_id"]);
            }
            // Its reports, and its enrollment (a key event in the log).
            sum += last_seq + 1;
        }
        assert_eq!(
            sum, entries,
            "hosts' sequence numbers and enrollments account for every log entry"
        );
        // The agents carry on: the in-flight report is re-sent and acknowledged (stored or original receipt).
        for (h, _, in_flight) in &mut results {
            let (status, body) = restarted.api.submit(in_flight).await.unwrap();
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            h.check_receipt(in_flight, &body).unwrap();
        }
        let log = restarted.get("/v1/admin/log/verify", a).await.1;
        assert_eq!(log["ok"], true);
    });
    drop(restarted);
    let out = std::process::Command::new(evidence_tests::binary("evidence-server"))
        .args(["verify-log", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("evidence log verifies"));
    eprintln!("{acked} acknowledged reports survived SIGKILL");
}
