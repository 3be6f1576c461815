//! `evidence-agent`: the host agent.
//!
//! `collect` runs the collectors on this host (or on a tree given with `--root`), evaluates the
//! facts with the controls crate and prints the findings grouped by ISO/IEC 27002:2022 control,
//! or the whole report as JSON.
//!
//! `enroll` creates the host key and enrolls it with a server over pinned TLS; `run` is the
//! service (scheduled and file-triggered collection, signed reports in a durable spool, delivery
//! with verified receipts); `status` shows where it stands.
//!
//! The crate, by concern:
//! - [`cli`]: the command line. This file (parsing, logs), the `collect` command and its table
//!   ([`cli::collect`], [`cli::render`]), `enroll` ([`cli::enroll`]), `status` and the status
//!   file the service keeps for it ([`cli::status`]), the hidden spool benchmark ([`cli::bench`]).
//! - [`service`]: `run`, the service loop ([`service`]), when things happen
//!   ([`service::schedule`]), which files trigger which collectors ([`service::watch`], derived
//!   from each collector's `READS`), signals and the systemd watchdog ([`service::lifecycle`]).
//! - [`delivery`]: from facts to a receipt. Signed, chained reports ([`delivery::outbox`]) in a
//!   durable spool ([`delivery::spool`], [`delivery::durable`]), shipped in order
//!   ([`delivery::shipper`]) over the pinned HTTPS client ([`delivery::ship`], [`delivery::tls`]).
//! - Shared: the configuration file ([`config`]) and the state directory ([`state`]).

mod cli;
mod config;
mod delivery;
mod service;
mod state;

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
    Collect(cli::collect::CollectArgs),
    /// Generate this host's key and enroll it with a server (pinned TLS).
    Enroll(cli::enroll::EnrollArgs),
    /// Run as a service: scheduled and file-triggered collection, signed reports, durable
    /// spool, delivery to the enrolled server.
    Run(service::RunArgs),
    /// Show enrollment, server, last report and receipt, spool depth, last error, next run.
    Status(cli::status::StatusArgs),
    /// Fill the spool with signed reports (drain benchmark).
    #[command(hide = true)]
    BenchSpool(cli::bench::BenchSpoolArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Collect(args) => cli::collect::run(args),
        Command::Enroll(args) => {
            init_logs();
            cli::enroll::run(args)
        }
        Command::Run(args) => {
            init_logs();
            service::run(args)
        }
        Command::Status(args) => cli::status::run(args),
        Command::BenchSpool(args) => cli::bench::run(args),
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
