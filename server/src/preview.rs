//! `evidence-server preview`: the server and one agent on this machine with one command, in
//! the spirit of `fleetctl preview`. Creates a single-use enrollment secret directly in the
//! server's store (taking the data directory as `serve` does, then releasing it), starts
//! `evidence-server serve` (a child process), enrolls the `evidence-agent` found next to this
//! binary (pinning the certificate fingerprint `serve` prints) and runs it, until Ctrl-C
//! (SIGINT) or SIGTERM. No HTTP client is involved: the server binary has none.
//!
//! The agent follows the report interval the server gives it at enrollment (`--interval-secs`),
//! so the host stays fresh for as long as the preview runs. The enrollment secret reaches the
//! agent in a mode 0600 file (never on a command line, which every local user can read),
//! deleted once enrollment is over.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};
use tokio::signal::unix::{signal, SignalKind};

use crate::config::Config;
use crate::store::{SecretRecord, Store};

/// Lifetime of the preview's enrollment secret: it is used at once, by the agent enrolling.
const SECRET_LIFETIME_SECS: i64 = 600;

/// Creates a single-use fleet enrollment secret in `store` (hashed like one made through the
/// admin API: `auth::generate`), recorded in the audit trail with `actor`; returns the secret
/// to hand to the agent.
async fn mint_enrollment_secret(
    store: &dyn Store,
    note: &str,
    actor: &str,
) -> anyhow::Result<String> {
    let cred = crate::auth::generate("ens");
    let now = crate::time::now_us();
    let secret = SecretRecord::issued(
        cred.id.clone(),
        cred.hash,
        now,
        SECRET_LIFETIME_SECS,
        true,
        note.into(),
        None,
    );
    store.create_secret(&secret).await?;
    crate::audit::change(store, None, "secret_created", actor, &cred.id, "fleet").await?;
    Ok(cred.value)
}

/// Takes the server's data directory as `serve` does (creating the store, keys and
/// certificate on first use), creates the enrollment secret there, and releases the
/// directory (lock and store) for the `serve` child.
fn prepare_secret(
    rt: &tokio::runtime::Runtime,
    server_dir: &Path,
    listen: SocketAddr,
) -> anyhow::Result<String> {
    let config = Config {
        data_dir: server_dir.to_path_buf(),
        listen,
        ..Config::default()
    };
    let prepared = crate::serve::prepare(&config)?;
    let secret = rt.block_on(mint_enrollment_secret(
        &prepared.store,
        "preview",
        "local preview command",
    ))?;
    drop(prepared);
    Ok(secret)
}

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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Listening from the start: a stop asked for while starting up is seen once started, and
    // the children are still stopped (a signal's default action would leave them running).
    let (mut interrupt, mut terminate) = {
        let _runtime = rt.enter();
        (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        )
    };
    // As `serve` does, a busy port stops the start before the data directory is touched.
    drop(TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?);
    let server_dir = data_dir.join("server");
    let secret = prepare_secret(&rt, &server_dir, listen)?;
    let mut server = Command::new(&exe)
        .args([
            "serve",
            "--listen",
            &listen.to_string(),
            "--report-interval-secs",
            &interval_secs.to_string(),
            "--data-dir",
        ])
        .arg(&server_dir)
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
    let state: PathBuf = data_dir.join("agent");
    let secret_file = data_dir.join("enrollment-secret");
    // A leftover file may have another mode; write_private sets 0600 only on creation.
    let _ = std::fs::remove_file(&secret_file);
    crate::serve::write_private(&secret_file, secret.as_bytes())
        .with_context(|| format!("writing {}", secret_file.display()))?;
    let enrolled = Command::new(&agent)
        .args(["enroll", "--server", &url, "--token-file"])
        .arg(&secret_file)
        .args(["--server-fingerprint", &fingerprint, "--state-dir"])
        .arg(&state)
        .status();
    std::fs::remove_file(&secret_file)
        .with_context(|| format!("deleting {}", secret_file.display()))?;
    let status = enrolled?;
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
        "\npreview running: server {url}, agent state {}, agent reports every {interval_secs} s",
        state.display()
    );
    println!("admin token in {} ; try:", token_file.display());
    println!(
        "  curl -sk -H \"Authorization: Bearer $(cat {})\" {url}/v1/snapshot",
        token_file.display()
    );
    println!("Ctrl-C stops both.");
    rt.block_on(async {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    });
    drop(agent_run);
    drop(server);
    Ok(())
}
