//! `evidence-server preview`: the server and one agent on this machine with one command, in
//! the spirit of `fleetctl preview`. Starts `evidence-server serve` (a child process), creates
//! an enrollment secret, enrolls the `evidence-agent` found next to this binary (pinning the
//! certificate fingerprint) and runs it, until Ctrl-C.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(data_dir: &Path, listen: SocketAddr, interval_secs: u64) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let agent = exe.with_file_name("evidence-agent");
    if !agent.exists() {
        bail!(
            "{} not found: build it first (cargo build -p evidence-agent)",
            agent.display()
        );
    }
    std::fs::create_dir_all(data_dir)?;
    let mut server = Command::new(&exe)
        .args([
            "serve",
            "--listen",
            &listen.to_string(),
            "--report-interval-secs",
            &interval_secs.to_string(),
            "--data-dir",
        ])
        .arg(data_dir.join("server"))
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = server.stdout.take().context("server stdout")?;
    let server = Kill(server);
    let token_file = data_dir.join("admin-token");
    let (mut url, mut fingerprint) = (None, None);
    let mut lines = BufReader::new(stdout).lines();
    while url.is_none() {
        let line = lines.next().context("the server exited")??;
        println!("server: {line}");
        if let Some(t) = line.strip_prefix("admin token (shown once, store it now): ") {
            crate::serve::write_private(&token_file, t.as_bytes())?;
        } else if let Some(f) = line.strip_prefix("tls certificate sha256 fingerprint: ") {
            fingerprint = Some(f.to_string());
        } else if let Some(u) = line.strip_prefix("listening on ") {
            url = Some(u.to_string());
        }
    }
    std::thread::spawn(move || lines.for_each(|l| println!("server: {}", l.unwrap_or_default())));
    let (url, fingerprint) = (url.unwrap(), fingerprint.context("fingerprint")?);
    let admin = std::fs::read_to_string(&token_file)
        .with_context(|| format!("reading {}", token_file.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let api = crate::client::Api::new(&url, &fingerprint)?;
    let secret = rt.block_on(api.create_secret(admin.trim()))?;
    let state: PathBuf = data_dir.join("agent");
    let status = Command::new(&agent)
        .args([
            "enroll",
            "--server",
            &url,
            "--token",
            &secret,
            "--server-fingerprint",
            &fingerprint,
            "--state-dir",
        ])
        .arg(&state)
        .status()?;
    if !status.success() {
        bail!("evidence-agent enroll failed ({status})");
    }
    let agent_run = Kill(
        Command::new(&agent)
            .args(["run", "--state-dir"])
            .arg(&state)
            .spawn()?,
    );
    println!(
        "\npreview running: server {url}, agent state {}",
        state.display()
    );
    println!("admin token in {} ; try:", token_file.display());
    println!(
        "  curl -sk -H \"Authorization: Bearer $(cat {})\" {url}/v1/snapshot",
        token_file.display()
    );
    println!("Ctrl-C stops both.");
    rt.block_on(async { tokio::signal::ctrl_c().await })?;
    drop(agent_run);
    drop(server);
    Ok(())
}
