//! `evidence-agent`: the host agent.
//!
//! `collect` runs the collectors on this host (or on a tree given with `--root`), evaluates the
//! facts with the controls crate and prints the findings grouped by ISO/IEC 27002:2022 control,
//! or the whole report as JSON.

mod collect;
mod render;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "evidence-agent", version, about = "Endpoint compliance evidence agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Observe this host once and print the findings grouped by ISO/IEC 27002:2022 control.
    Collect(collect::CollectArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Collect(args) => collect::run(args),
    }
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
