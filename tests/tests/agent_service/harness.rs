//! The harness of `agent_service.rs`: a real `evidence-server serve` process (temporary data
//! dir, free loopback port, admin token and certificate fingerprint read from its output) and a
//! real `evidence-agent` (its own `--root` tree, state dir and configuration file).

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

pub struct Server {
    pub child: Child,
    pub data_dir: PathBuf,
    pub port: u16,
    pub token: String,
    pub fingerprint: String,
}

impl Server {
    /// Starts `evidence-server serve`; `token` is the admin token of an existing data dir
    /// (printed only on its first start).
    pub fn start(data_dir: &Path, port: u16, token: Option<&str>) -> Server {
        Server::start_with(data_dir, port, token, &[])
    }

    /// As [`Server::start`], with more `serve` arguments.
    pub fn start_with(data_dir: &Path, port: u16, token: Option<&str>, extra: &[&Path]) -> Server {
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

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if self.child.try_wait().unwrap().is_none() {
            signal(self.child.id(), "TERM");
            let _ = self.child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        *self = Server::start(&self.data_dir.clone(), self.port, Some(&self.token.clone()));
    }

    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        http(method, &format!("{}{path}", self.url()), &self.token, body)
    }

    pub fn new_secret(&self) -> String {
        let (status, body) = self.api("POST", "/v1/admin/enrollment-secrets", Some(json!({})));
        assert_eq!(status, 201, "{body}");
        body["secret"].as_str().expect("secret").to_string()
    }

    pub fn host(&self, host_id: &str) -> Value {
        let (status, body) = self.api("GET", &format!("/v1/hosts/{host_id}"), None);
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The status of one check on a host, once it has one.
    pub fn finding(&self, host_id: &str, check: &str) -> Option<String> {
        let host = self.host(host_id);
        host["findings"]
            .as_array()?
            .iter()
            .find(|f| f["check"] == check)
            .and_then(|f| f["status"].as_str().map(str::to_string))
    }

    /// Sequence numbers of the host's stored reports, in log order.
    pub fn seqs(&self, host_id: &str) -> Vec<u64> {
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

pub fn http(method: &str, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn signal(pid: u32, name: &str) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill -{name} {pid}")])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// Waits for the agent's spool to empty, stops the agent, and waits until the server holds its
/// last report; returns that report's seq.
pub fn drain_and_stop(agent: &mut Agent, server: &Server, host_id: &str) -> u64 {
    wait_until("the spool to drain", Duration::from_secs(30), || {
        (agent.spool_depth() == 0).then_some(())
    });
    agent.stop();
    let last = agent.next_seq() - 1;
    wait_until(
        "the last report on the server",
        Duration::from_secs(10),
        || (server.seqs(host_id).last() == Some(&last)).then_some(()),
    );
    last
}

pub fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
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

pub struct Agent {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
}

pub const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n";

impl Agent {
    /// A root tree and a configuration file.
    pub fn new(tuning: Tuning) -> Agent {
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

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn command(&self, subcommand: &str) -> Command {
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
    pub fn enroll(&self, server: &Server, fingerprint: &str, secret: &str) -> (bool, String) {
        self.enroll_pinned(server, &["--server-fingerprint", fingerprint], secret)
    }

    /// `evidence-agent enroll` with the given pin arguments.
    pub fn enroll_pinned(&self, server: &Server, pin: &[&str], secret: &str) -> (bool, String) {
        // The secret travels in a file, not in the process list.
        let secret_file = self.dir.path().join("enrollment-secret");
        std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
        let out = self
            .command("enroll")
            .args(["--server", &server.url(), "--token-file"])
            .arg(&secret_file)
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

    pub fn host_id(&self) -> String {
        let enrollment: Value =
            serde_json::from_slice(&std::fs::read(self.state().join("enrollment.json")).unwrap())
                .unwrap();
        enrollment["host_id"].as_str().unwrap().to_string()
    }

    pub fn start(&mut self) {
        self.start_with_env(&[]);
    }

    pub fn start_with_env(&mut self, env: &[(&str, &str)]) {
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
    pub fn stop(&mut self) {
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

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            let _ = child.wait();
        }
    }

    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    pub fn status(&self) -> Value {
        let out = self.command("status").arg("--json").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn spool_files(&self) -> Vec<String> {
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

    pub fn spool_depth(&self) -> usize {
        self.spool_files()
            .iter()
            .filter(|n| n.ends_with(".report"))
            .count()
    }

    pub fn next_seq(&self) -> u64 {
        let chain: Value =
            serde_json::from_slice(&std::fs::read(self.state().join("chain.json")).unwrap())
                .unwrap();
        chain["next_seq"].as_u64().unwrap()
    }

    /// Rewrites /etc/passwd the way shadow-utils does: a new file renamed over the old one.
    pub fn write_passwd(&self, content: &str) {
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

pub fn rand_u128() -> u128 {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    u128::from_le_bytes(bytes)
}

/// The agent settings a test changes.
#[derive(Clone, Copy)]
pub struct Tuning {
    pub heartbeat_secs: u64,
    pub debounce_ms: u64,
    pub max_reports: u64,
}

pub const TUNING: Tuning = Tuning {
    heartbeat_secs: 3600,
    debounce_ms: 300,
    max_reports: 10_000,
};

/// A server, and an agent enrolled with it (not yet running).
pub fn enrolled(tuning: Tuning) -> (tempfile::TempDir, Server, Agent) {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&data.path().join("server"), free_port(), None);
    let agent = Agent::new(tuning);
    let secret = server.new_secret();
    let (ok, out) = agent.enroll(&server, &server.fingerprint, &secret);
    assert!(ok, "enroll failed: {out}");
    (data, server, agent)
}

/// A CA certificate (PEM) and an issuer that signs with it.
pub fn make_ca(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
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
