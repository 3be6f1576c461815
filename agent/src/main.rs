//! `evidence-agent`: the host agent.
//!
//! `collect` runs the collectors on this host (or on a tree given with `--root`), evaluates the
//! facts with the controls crate and prints the findings grouped by ISO/IEC 27002:2022 control,
//! or the whole report as JSON.
//!
//! `enroll` creates the host key and enrolls it with a server over pinned TLS; `run` is the
//! service (scheduled and file-triggered collection, signed reports in a durable spool, delivery
//! with verified receipts; see `service.rs`); `status` shows where it stands.

mod bench;
mod collect;
mod config;
mod durable;
mod enroll;
mod lifecycle;
mod outbox;
mod render;
mod schedule;
mod service;
mod ship;
mod shipper;
mod spool;
mod state;
mod status;
mod tls;
mod watch;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "evidence-agent",
    version,
    about = "Endpoint compliance evidence agent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Observe this host once and print the findings grouped by ISO/IEC 27002:2022 control.
    Collect(collect::CollectArgs),
    /// Generate this host's key and enroll it with a server (pinned TLS).
    Enroll(enroll::EnrollArgs),
    /// Run as a service: scheduled and file-triggered collection, signed reports, durable
    /// spool, delivery to the enrolled server.
    Run(service::RunArgs),
    /// Show enrollment, server, last report and receipt, spool depth, last error, next run.
    Status(status::StatusArgs),
    /// Fill the spool with signed reports (drain benchmark).
    #[command(hide = true)]
    BenchSpool(bench::BenchSpoolArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Collect(args) => collect::run(args),
        Command::Enroll(args) => {
            init_logs();
            enroll::run(args)
        }
        Command::Run(args) => {
            init_logs();
            service::run(args)
        }
        Command::Status(args) => status::run(args),
        Command::BenchSpool(args) => bench::run(args),
    }
}

/// Structured logs on stderr (the journal under systemd); `RUST_LOG` filters, `info` by default.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: the journal and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Reads a policy file, or the built-in defaults when none is given.
pub(crate) fn load_policy(path: Option<&PathBuf>) -> anyhow::Result<evidence_controls::Policy> {
    use anyhow::Context;
    match path {
        None => Ok(evidence_controls::Policy::default()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading policy file {}", path.display()))?;
            evidence_controls::Policy::from_toml(&text)
                .with_context(|| format!("in policy file {}", path.display()))
        }
    }
}
