//! `evidence-agent enroll`: create (or reuse) the host key, present it to the server with an
//! enrollment secret over pinned TLS, and store what the server answered.
//!
//! The key is generated locally and only its public half leaves the host. The server's
//! certificate is pinned from the first byte (by fingerprint or by a CA file), so the secret is
//! never sent to an impostor. Enrolling again with the same key returns the same host id.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use evidence_collectors::{Host, SystemRunner};
use evidence_protocol::api::{EnrollRequest, HostIdentity};
use evidence_protocol::signing;

use crate::config::Config;
use crate::delivery::ship::Client;
use crate::state::{Enrollment, Pin, StateDir};

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Server base URL, e.g. https://evidence.example:8443
    #[arg(long, value_name = "URL")]
    server: String,
    /// Enrollment secret created by an administrator on the server. Visible to other local
    /// users in the process list while `enroll` runs: prefer `--token-file` on shared hosts.
    #[arg(
        long,
        value_name = "SECRET",
        conflicts_with = "token_file",
        required_unless_present = "token_file"
    )]
    token: Option<String>,
    /// File holding the enrollment secret (surrounding white space ignored), `-` for stdin.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// SHA-256 fingerprint of the server's certificate (as printed by `evidence-server`).
    #[arg(
        long,
        value_name = "SHA256",
        conflicts_with = "ca",
        required_unless_present = "ca"
    )]
    server_fingerprint: Option<String>,
    /// CA certificate (PEM) that signed the server's certificate.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

/// Options shared by `enroll`, `run` and `status`.
#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// Configuration file (TOML). Default: /etc/evidence-agent/agent.toml if it exists.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// State directory (host key, enrollment, spool); overrides `state_dir` in the config.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Observe the file system at DIR instead of `/`; overrides `root` in the config.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

impl CommonArgs {
    /// The configuration with the command-line overrides applied.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(dir) = &self.state_dir {
            config.state_dir = dir.clone();
        }
        if let Some(root) = &self.root {
            config.root = root.clone();
        }
        Ok(config)
    }
}

/// The secret from `--token`, or read from `--token-file` (`-` is standard input).
fn enrollment_secret(args: &EnrollArgs) -> anyhow::Result<String> {
    let text = match (&args.token, &args.token_file) {
        (Some(token), _) => token.clone(),
        (None, Some(path)) if path.as_os_str() == "-" => {
            std::io::read_to_string(std::io::stdin()).context("reading the secret from stdin")?
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the secret from {}", path.display()))?,
        (None, None) => anyhow::bail!("--token or --token-file is required"),
    };
    let secret = text.trim().to_string();
    anyhow::ensure!(!secret.is_empty(), "the enrollment secret is empty");
    Ok(secret)
}

pub fn run(args: EnrollArgs) -> anyhow::Result<()> {
    let config = args.common.config()?;
    let pin = match (&args.server_fingerprint, &args.ca) {
        (Some(fp), _) => Pin::Fingerprint(crate::delivery::tls::parse_fingerprint(fp)?),
        (None, Some(path)) => Pin::CaPem(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading CA file {}", path.display()))?,
        ),
        (None, None) => anyhow::bail!("give --server-fingerprint or --ca"),
    };
    let state = StateDir::open(&config.state_dir)?;
    let key = state.load_or_create_key()?;
    let identity = identity(&config)?;
    let request = EnrollRequest {
        secret: enrollment_secret(&args)?,
        public_key: key.public_key_b64(),
        identity,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let client = Client::new(
        &args.server,
        &pin,
        Duration::from_secs(config.ship.request_timeout_secs),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let response = runtime.block_on(client.enroll(&key, &request))?;
    anyhow::ensure!(
        response.key_id == key.key_id(),
        "server enrolled key {} but this host's key is {}",
        response.key_id,
        key.key_id()
    );
    signing::decode_public_key(&response.server_public_key)
        .context("the server's public key in the enrollment answer")?;

    let enrollment = Enrollment {
        server_url: args.server.trim_end_matches('/').to_string(),
        pin,
        host_id: response.host_id.clone(),
        key_id: response.key_id.clone(),
        server_public_key: response.server_public_key.clone(),
        enrolled_at: chrono::Utc::now(),
        report_interval_secs: response.report_interval_secs,
        stale_after_intervals: Some(response.stale_after_intervals),
    };
    // The chain continues above whatever the server already holds for this host.
    let mut chain = state.load_chain()?;
    if chain.next_seq <= response.last_seq {
        chain.next_seq = response.last_seq + 1;
        chain.last_digest = response.last_digest;
    }
    state.save_chain(&chain)?;
    state.save_enrollment(&enrollment)?;
    println!(
        "enrolled with {} as host {} (key {})",
        enrollment.server_url, enrollment.host_id, enrollment.key_id
    );
    println!(
        "the server expects a report every {} s (stale after {} missed intervals)",
        enrollment.report_interval_secs, response.stale_after_intervals
    );
    println!("state stored in {}", state.path().display());
    Ok(())
}

/// Who this host is, from the observed root (machine id, host name, hardware serial).
fn identity(config: &Config) -> anyhow::Result<HostIdentity> {
    let host = Host::new(&config.root, Arc::new(SystemRunner));
    let facts = evidence_collectors::host::collect(&host);
    let facts = facts
        .observed()
        .with_context(|| format!("cannot identify the host under {}", config.root.display()))?;
    let machine_id = facts
        .machine_id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .with_context(|| {
            format!(
                "no machine id under {} (etc/machine-id): the server needs it to recognise this host",
                config.root.display()
            )
        })?;
    Ok(HostIdentity {
        machine_id,
        hostname: facts.hostname.clone().unwrap_or_else(|| "unknown".into()),
        hardware_serial: facts.hardware_serial.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        enroll: EnrollArgs,
    }

    fn parse(args: &[&str]) -> Result<EnrollArgs, clap::Error> {
        let base = [
            "enroll",
            "--server",
            "https://s:8443",
            "--server-fingerprint",
            "ab",
        ];
        Cli::try_parse_from(base.iter().chain(args)).map(|cli| cli.enroll)
    }

    #[test]
    fn the_secret_comes_from_the_flag_or_a_file_trimmed_and_never_empty() {
        assert_eq!(
            enrollment_secret(&parse(&["--token", "ens_1"]).unwrap()).unwrap(),
            "ens_1"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "  ens_2\n").unwrap();
        let args = parse(&["--token-file", file.to_str().unwrap()]).unwrap();
        assert_eq!(enrollment_secret(&args).unwrap(), "ens_2");
        std::fs::write(&file, "\n").unwrap();
        assert!(enrollment_secret(&args).is_err());
    }

    #[test]
    fn a_secret_is_required_once() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--token", "a", "--token-file", "b"]).is_err());
    }
}
