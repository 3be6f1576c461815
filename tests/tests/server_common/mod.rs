//! Shared by the `server_*` tests: start the real `evidence-server` binary on a free loopback
//! port with a temporary data directory, read what it prints (address, certificate
//! fingerprint, admin token), and talk to it over pinned HTTPS.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use evidence_loadgen::client::Api;

pub struct Server {
    pub child: Child,
    pub base: String,
    pub fingerprint: String,
    pub admin: String,
    pub api: Api,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server on `data_dir`. `admin` is the admin token when restarting on an existing
/// directory (it is printed only on first start).
pub fn start(data_dir: &Path, admin: Option<&str>, extra: &[&str]) -> Server {
    start_with_umask(data_dir, admin, extra, None)
}

/// The server binary, built for this test run.
pub fn server_bin() -> PathBuf {
    let bin = evidence_tests::binary("evidence-server");
    assert!(
        bin.exists(),
        "build the server first: cargo build -p evidence-server ({})",
        bin.display()
    );
    bin
}

/// [`start`], under the given umask (through `sh`) when one is given.
pub fn start_with_umask(
    data_dir: &Path,
    admin: Option<&str>,
    extra: &[&str],
    umask: Option<&str>,
) -> Server {
    let bin = server_bin();
    let mut command = match umask {
        Some(mask) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("umask {mask}; exec \"$0\" \"$@\""))
                .arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start evidence-server");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut base, mut fingerprint, mut token) = (None, None, admin.map(String::from));
    let deadline = Instant::now() + Duration::from_secs(30);
    while base.is_none() {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("server did not start in 30 s");
        if let Some(t) = line.strip_prefix("admin token (shown once, store it now): ") {
            token = Some(t.to_string());
        } else if let Some(f) = line.strip_prefix("tls certificate sha256 fingerprint: ") {
            fingerprint = Some(f.to_string());
        } else if let Some(a) = line.strip_prefix("listening on ") {
            base = Some(a.to_string());
        }
    }
    let base = base.unwrap();
    let fingerprint = fingerprint.expect("fingerprint printed");
    let api = Api::new(&base, &fingerprint).expect("client");
    Server {
        child,
        base,
        fingerprint,
        admin: token.expect("admin token printed on first start"),
        api,
    }
}

pub fn temp_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    (dir, data)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

impl Server {
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = self.api.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let body = resp.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .api
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let body = resp.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Everything a refused request must leave unchanged: the evidence log (entries and head),
    /// hosts with their sequence numbers and revocation, secrets, tokens, policy.
    pub async fn store_fingerprint(&self) -> serde_json::Value {
        let a = Some(self.admin.as_str());
        let log = self.get("/v1/admin/log/verify", a).await.1;
        let hosts = self.get("/v1/hosts", a).await.1;
        let secrets = self.get("/v1/admin/enrollment-secrets", a).await.1;
        let tokens = self.get("/v1/admin/tokens", a).await.1;
        let policy = self.get("/v1/admin/policy", a).await.1;
        let mut hosts = hosts["hosts"].clone();
        for h in hosts.as_array_mut().into_iter().flatten() {
            // Staleness depends on the clock, not the store.
            h.as_object_mut().unwrap().remove("stale");
        }
        serde_json::json!({ "log": log, "hosts": hosts, "secrets": secrets, "tokens": tokens, "policy": policy })
    }
}
