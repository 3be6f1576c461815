//! `evidence-agent collect`: one collection, evaluated locally, printed as a table or JSON.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::Args;
use evidence_collectors::{CollectorName, Host, SystemRunner};
use evidence_controls::Finding;
use evidence_protocol::Facts;
use serde::Serialize;

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Print the whole report (facts and findings) as JSON.
    #[arg(long)]
    json: bool,
    /// Read a mounted image or chroot at DIR instead of `/`. Live kernel state (block devices,
    /// the running ruleset, the running kernel) is then reported as not applicable.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Run only this collector (repeatable).
    #[arg(long, value_name = "NAME", value_parser = collector_name())]
    only: Vec<CollectorName>,
    /// Policy file (TOML) with check thresholds; built-in defaults when absent.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Seconds each collector may run before it is reported as an error.
    #[arg(long, value_name = "SECONDS", default_value_t = evidence_collectors::DEFAULT_COLLECTOR_TIMEOUT.as_secs())]
    timeout: u64,
}

/// Parses a collector name; `--help` and errors list the names this build knows.
pub fn collector_name() -> impl TypedValueParser<Value = CollectorName> {
    clap::builder::PossibleValuesParser::new(CollectorName::ALL.iter().map(|n| n.as_str())).map(
        |name| {
            name.parse()
                .expect("every possible value is a collector name")
        },
    )
}

/// The JSON form of one local collection.
#[derive(Debug, Serialize)]
pub struct LocalReport {
    pub agent_version: &'static str,
    pub root: String,
    pub facts: Facts,
    pub findings: Vec<Finding>,
}

pub fn run(args: CollectArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.root.is_dir(),
        "--root {}: not a directory",
        args.root.display()
    );
    let policy = crate::cli::load_policy(args.policy.as_ref())?;
    let host = Host::new(&args.root, Arc::new(SystemRunner));
    let facts = evidence_collectors::collect(&host, &args.only, Duration::from_secs(args.timeout));
    let findings = evidence_controls::evaluate(&facts, &policy);
    let report = LocalReport {
        agent_version: env!("CARGO_PKG_VERSION"),
        root: args.root.display().to_string(),
        facts,
        findings,
    };
    let mut rendered = Vec::new();
    if args.json {
        serde_json::to_writer_pretty(&mut rendered, &report)?;
        rendered.push(b'\n');
    } else {
        crate::cli::render::table(&mut rendered, &report)?;
    }
    use std::io::Write;
    match std::io::stdout().lock().write_all(&rendered) {
        // A reader that stopped early (`| head`) is not an error of the agent.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
