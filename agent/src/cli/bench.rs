//! `evidence-agent bench-spool --count N` (hidden): fills the spool with N real signed reports
//! for the drain benchmark (BENCHMARKS.md, "Agent service").
//!
//! The reports are made exactly as `run` makes them (one collection, then N full reports of
//! those facts through the same outbox: chained, signed, fsynced), so draining them exercises
//! the real delivery path. It refuses to run while a service holds the state directory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use evidence_collectors::{Host, SystemRunner};
use evidence_protocol::ReportKind;

use crate::cli::enroll::CommonArgs;
use crate::delivery::outbox::Outbox;
use crate::state::StateDir;

#[derive(Debug, Args)]
pub struct BenchSpoolArgs {
    /// How many reports to spool.
    #[arg(long)]
    count: u64,
    #[command(flatten)]
    common: CommonArgs,
}

pub fn run(args: BenchSpoolArgs) -> anyhow::Result<()> {
    let config = args.common.config()?;
    let state = StateDir::open(&config.state_dir)?;
    anyhow::ensure!(
        !crate::cli::status::service_running(state.path()),
        "a service is running with this state directory"
    );
    let enrollment = state.load_enrollment()?.context("not enrolled")?;
    let key = state.load_key()?.context("no host key")?;
    let names = config.collector_names()?;
    let mut outbox = Outbox::open(
        state,
        &key,
        &enrollment,
        config.spool.max_reports.max(args.count + 1),
        config.spool.max_bytes,
    )?;
    let host = Host::new(&config.root, Arc::new(SystemRunner));
    let facts = evidence_collectors::collect(&host, &names, config.collector_timeout());
    let versions: BTreeMap<String, String> = names
        .iter()
        .map(|n| {
            (
                n.as_str().to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )
        })
        .collect();
    let started = Instant::now();
    for _ in 0..args.count {
        let kind = ReportKind::Full {
            facts: facts.clone(),
        };
        outbox.append(&key, kind, versions.clone(), chrono::Utc::now())?;
    }
    println!(
        "spooled {} reports in {:.1} s; spool depth {}",
        args.count,
        started.elapsed().as_secs_f64(),
        outbox.depth()
    );
    Ok(())
}
