//! `evidence-server preview` keeps its host fresh: the real preview (server and agent as child
//! processes) with a 3 s report interval, watched over pinned HTTPS for four intervals after the
//! first report. The server calls a host stale after 3 intervals (9 s) without a report, so an
//! agent that ignores the server's schedule (hourly collection, 15 min heartbeat) goes stale
//! inside the window.
//!
//! Needs root and the binaries:
//! `cargo build -p evidence-server -p evidence-agent && cargo test -p evidence-tests --test preview_fresh`.

mod server_common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use evidence_loadgen::client::Api;
use serde_json::Value;

const INTERVAL_SECS: u64 = 3;
/// Four intervals: past the 3-interval staleness threshold of an agent that reported once.
const WATCH_FOR: Duration = Duration::from_secs(4 * INTERVAL_SECS);

/// The running preview in its own process group (the preview, its server and its agent).
struct Preview {
    child: Child,
    lines: Receiver<String>,
}

impl Preview {
    fn start(dir: &Path) -> Preview {
        let bin = evidence_tests::binary("evidence-server");
        assert!(
            bin.exists() && evidence_tests::binary("evidence-agent").exists(),
            "build first: cargo build -p evidence-server -p evidence-agent ({})",
            bin.display()
        );
        let mut child = Command::new(&bin)
            .args(["preview", "--listen", "127.0.0.1:0", "--interval-secs"])
            .arg(INTERVAL_SECS.to_string())
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .expect("start evidence-server preview");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("preview: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Preview { child, lines }
    }

    /// The rest of the first line starting with `prefix`.
    fn wait_for_line(&self, prefix: &str, deadline: Instant) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("the preview printed no line starting {prefix:?}"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_string();
            }
        }
    }

    fn process_group_is_empty(&self) -> bool {
        // `kill -0 -PGID` succeeds while any process of the group is alive.
        !Command::new("kill")
            .args(["-0", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status()
            .expect("run kill")
            .success()
    }

    /// Ctrl-C, as an operator stops it; the preview's exit status.
    fn interrupt_and_wait(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -INT failed");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the preview") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the preview did not stop within 15 s of SIGINT"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Preview {
    fn drop(&mut self) {
        // Whatever happened, nothing of the group outlives the test.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// The one host of `GET /v1/hosts`.
async fn the_host(api: &Api, admin: &str) -> Value {
    let hosts: Value = api
        .http
        .get(format!("{}/v1/hosts", api.base))
        .bearer_auth(admin)
        .send()
        .await
        .expect("GET /v1/hosts")
        .error_for_status()
        .expect("GET /v1/hosts status")
        .json()
        .await
        .expect("hosts JSON");
    let hosts = hosts["hosts"].as_array().expect("hosts array");
    assert_eq!(hosts.len(), 1, "the preview enrolls one host: {hosts:?}");
    hosts[0].clone()
}

#[test]
fn the_preview_host_stays_fresh_across_intervals() {
    if !evidence_tests::require("the_preview_host_stays_fresh_across_intervals", true, &[]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("preview");
    let mut preview = Preview::start(&dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    let fingerprint =
        preview.wait_for_line("server: tls certificate sha256 fingerprint: ", deadline);
    let running = preview.wait_for_line("preview running: server ", deadline);
    let url = running
        .split(',')
        .next()
        .expect("url in the preview running line")
        .to_string();
    let admin = std::fs::read_to_string(dir.join("admin-token")).expect("admin token file");
    let admin = admin.trim();
    let api = Api::new(&url, &fingerprint).expect("pinned client");

    server_common::runtime().block_on(async {
        let first_report_deadline = Instant::now() + Duration::from_secs(30);
        let first = loop {
            let host = the_host(&api, admin).await;
            if host["last_seq"].as_u64().unwrap_or(0) > 0 {
                break host;
            }
            assert!(
                Instant::now() < first_report_deadline,
                "no report arrived within 30 s: {host}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let watch_until = Instant::now() + WATCH_FOR;
        let mut checks = 0;
        let mut last = first.clone();
        while Instant::now() < watch_until {
            tokio::time::sleep(Duration::from_secs(1)).await;
            last = the_host(&api, admin).await;
            checks += 1;
            assert_eq!(
                last["stale"],
                Value::Bool(false),
                "stale {checks} s after the first report ({first}): {last}"
            );
        }
        assert!(checks >= 10, "only {checks} checks in {WATCH_FOR:?}");
        assert!(
            last["last_seq"].as_u64() > first["last_seq"].as_u64(),
            "the agent kept reporting: first {first}, last {last}"
        );
    });

    assert!(
        !dir.join("enrollment-secret").exists(),
        "the enrollment secret file is deleted after enrollment"
    );
    let status = preview.interrupt_and_wait();
    assert!(
        status.success(),
        "the preview exits cleanly on SIGINT: {status}"
    );
    assert!(
        preview.process_group_is_empty(),
        "the preview's server and agent stopped with it"
    );
}
