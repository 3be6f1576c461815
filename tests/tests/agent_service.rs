//! End-to-end: `evidence-agent enroll` and `evidence-agent run` against a real
//! `evidence-server serve`, real processes over real TLS on loopback.
//!
//! Each test starts its own server (temporary data dir, free loopback port), creates an
//! enrollment secret through the admin API, enrolls an agent whose `--root` is a small temporary
//! tree (passwd, shadow, group, machine-id), runs it, and reads what reached the server through
//! the read API. Build the binaries first: `cargo build --workspace --bins`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// The server

struct Server {
    child: Child,
    data_dir: PathBuf,
    port: u16,
    token: String,
    fingerprint: String,
}

impl Server {
    /// Starts `evidence-server serve`; `token` is the admin token of an existing data dir
    /// (printed only on its first start).
    fn start(data_dir: &Path, port: u16, token: Option<&str>) -> Server {
        Server::start_with(data_dir, port, token, &[])
    }

    /// As [`Server::start`], with more `serve` arguments.
    fn start_with(data_dir: &Path, port: u16, token: Option<&str>, extra: &[&Path]) -> Server {
        let mut child = Command::new(evidence_tests::binary("evidence-server"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start evidence-server (cargo build --workspace --bins first)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut token = token.map(str::to_string);
        let mut fingerprint = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("server printed 'listening on' in time");
            if let Some(t) = line.split("store it now): ").nth(1) {
                token = Some(t.trim().to_string());
            }
            if let Some(f) = line.split("fingerprint: ").nth(1) {
                fingerprint = Some(f.trim().to_string());
            }
            if line.starts_with("listening on") {
                break;
            }
        }
        Server {
            child,
            data_dir: data_dir.to_path_buf(),
            port,
            token: token.expect("admin token"),
            fingerprint: fingerprint.expect("certificate fingerprint"),
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if self.child.try_wait().unwrap().is_none() {
            signal(self.child.id(), "TERM");
            let _ = self.child.wait();
        }
    }

    fn restart(&mut self) {
        self.stop();
        *self = Server::start(&self.data_dir.clone(), self.port, Some(&self.token.clone()));
    }

    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        http(method, &format!("{}{path}", self.url()), &self.token, body)
    }

    fn new_secret(&self) -> String {
        let (status, body) = self.api("POST", "/v1/admin/enrollment-secrets", Some(json!({})));
        assert_eq!(status, 201, "{body}");
        body["secret"].as_str().expect("secret").to_string()
    }

    fn host(&self, host_id: &str) -> Value {
        let (status, body) = self.api("GET", &format!("/v1/hosts/{host_id}"), None);
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The status of one check on a host, once it has one.
    fn finding(&self, host_id: &str, check: &str) -> Option<String> {
        let host = self.host(host_id);
        host["findings"]
            .as_array()?
            .iter()
            .find(|f| f["check"] == check)
            .and_then(|f| f["status"].as_str().map(str::to_string))
    }

    /// Sequence numbers of the host's stored reports, in log order.
    fn seqs(&self, host_id: &str) -> Vec<u64> {
        let host = self.host(host_id);
        let mut entries: Vec<(u64, u64)> = host["history"]["reports"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| (r["log_index"].as_u64().unwrap(), r["seq"].as_u64().unwrap()))
                    .collect()
            })
            .unwrap_or_default();
        entries.sort();
        entries.into_iter().map(|(_, seq)| seq).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(method: &str, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The test reads its own server; the agent under test is the one that pins.
        let client = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let mut request = client
            .request(method.parse().unwrap(), url)
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("server answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill -{name} {pid}")])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// The agent

struct Agent {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n";

impl Agent {
    /// A root tree and a configuration file.
    fn new(tuning: Tuning) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("root/etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("passwd"), PASSWD).unwrap();
        std::fs::write(
            etc.join("shadow"),
            "root:*:19000:0:99999:7:::\nalice:$y$j9T$salt$hash:19000:0:99999:7:::\n",
        )
        .unwrap();
        std::fs::set_permissions(etc.join("shadow"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::fs::write(etc.join("group"), "root:x:0:\nalice:x:1000:\n").unwrap();
        // A machine id of its own, so concurrent tests are different hosts.
        let machine_id = format!("{:032x}", rand_u128());
        std::fs::write(etc.join("machine-id"), format!("{machine_id}\n")).unwrap();
        std::fs::write(etc.join("hostname"), "agent-under-test\n").unwrap();
        let config = format!(
            "[schedule]\ninterval_secs = 3600\nsplay_secs = 0\nheartbeat_secs = {}\n\
             [watch]\ndebounce_ms = {}\n\
             [spool]\nmax_reports = {}\n\
             [ship]\nbackoff_initial_ms = 100\nbackoff_max_secs = 1\nrequest_timeout_secs = 5\n\
             [collectors]\nonly = [\"accounts\"]\ntimeout_secs = 10\n",
            tuning.heartbeat_secs, tuning.debounce_ms, tuning.max_reports
        );
        std::fs::write(dir.path().join("agent.toml"), config).unwrap();
        Agent { dir, child: None }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn command(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new(evidence_tests::binary("evidence-agent"));
        cmd.arg(subcommand)
            .arg("--config")
            .arg(self.dir.path().join("agent.toml"))
            .arg("--state-dir")
            .arg(self.state())
            .arg("--root")
            .arg(self.root())
            .env("RUST_BACKTRACE", "0");
        cmd
    }

    /// `evidence-agent enroll`; returns (success, stdout + stderr).
    fn enroll(&self, server: &Server, fingerprint: &str, secret: &str) -> (bool, String) {
        self.enroll_pinned(server, &["--server-fingerprint", fingerprint], secret)
    }

    /// `evidence-agent enroll` with the given pin arguments.
    fn enroll_pinned(&self, server: &Server, pin: &[&str], secret: &str) -> (bool, String) {
        let out = self
            .command("enroll")
            .args(["--server", &server.url(), "--token", secret])
            .args(pin)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn host_id(&self) -> String {
        let enrollment: Value =
            serde_json::from_slice(&std::fs::read(self.state().join("enrollment.json")).unwrap())
                .unwrap();
        enrollment["host_id"].as_str().unwrap().to_string()
    }

    fn start(&mut self) {
        self.start_with_env(&[]);
    }

    fn start_with_env(&mut self, env: &[(&str, &str)]) {
        let log = std::fs::File::create(self.dir.path().join("agent.log")).unwrap();
        let child = self
            .command("run")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGTERM and wait: a graceful stop.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "agent exits cleanly on SIGTERM: {status}\n{}",
                self.log()
            );
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            let _ = child.wait();
        }
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    fn status(&self) -> Value {
        let out = self.command("status").arg("--json").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn spool_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.state().join("spool"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn spool_depth(&self) -> usize {
        self.spool_files()
            .iter()
            .filter(|n| n.ends_with(".report"))
            .count()
    }

    fn next_seq(&self) -> u64 {
        let chain: Value =
            serde_json::from_slice(&std::fs::read(self.state().join("chain.json")).unwrap())
                .unwrap();
        chain["next_seq"].as_u64().unwrap()
    }

    /// Rewrites /etc/passwd the way shadow-utils does: a new file renamed over the old one.
    fn write_passwd(&self, content: &str) {
        let etc = self.root().join("etc");
        std::fs::write(etc.join("passwd+"), content).unwrap();
        std::fs::rename(etc.join("passwd+"), etc.join("passwd")).unwrap();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

fn rand_u128() -> u128 {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    u128::from_le_bytes(bytes)
}

/// The agent settings a test changes.
#[derive(Clone, Copy)]
struct Tuning {
    heartbeat_secs: u64,
    debounce_ms: u64,
    max_reports: u64,
}

const TUNING: Tuning = Tuning {
    heartbeat_secs: 3600,
    debounce_ms: 300,
    max_reports: 10_000,
};

/// A server, and an agent enrolled with it (not yet running).
fn enrolled(tuning: Tuning) -> (tempfile::TempDir, Server, Agent) {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&data.path().join("server"), free_port(), None);
    let agent = Agent::new(tuning);
    let secret = server.new_secret();
    let (ok, out) = agent.enroll(&server, &server.fingerprint, &secret);
    assert!(ok, "enroll failed: {out}");
    (data, server, agent)
}

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
    wait_until("the spool to drain", Duration::from_secs(30), || {
        (agent.spool_depth() == 0).then_some(())
    });
    agent.stop();
    let last = agent.next_seq() - 1;
    wait_until(
        "every report on the server",
        Duration::from_secs(10),
        || (server.seqs(&host_id).last() == Some(&last)).then_some(()),
    );
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
    wait_until("the spool to drain", Duration::from_secs(30), || {
        (agent.spool_depth() == 0).then_some(())
    });
    agent.stop();
    let last = agent.next_seq() - 1;
    wait_until(
        "the last report on the server",
        Duration::from_secs(10),
        || (server.seqs(&host_id).last() == Some(&last)).then_some(()),
    );
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

/// A CA certificate (PEM) and an issuer that signs with it.
fn make_ca(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), rcgen::Issuer::new(params, key))
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
