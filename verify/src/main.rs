//! `evidence-verify BUNDLE --server-key KEY [--json]`: checks an evidence bundle offline and
//! prints what an auditor needs: what was verified, or every failure found.
//!
//! KEY is a C2SP verifier key (`name+keyid+base64`), a file holding one, or the server's raw
//! base64 Ed25519 public key (then the manifest's origin names it). Exit status: 0 verified,
//! 1 any failure (an unreadable bundle included), 2 usage (clap's, and an unusable key).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use evidence_protocol::bundle::Bundle;
use evidence_protocol::checkpoint::parse_verifier_key;
use evidence_protocol::signing::decode_public_key;
use evidence_verify::{verify, ServerKey, Verification};

#[derive(Parser)]
#[command(
    name = "evidence-verify",
    version,
    about = "Verify an evidence bundle offline"
)]
struct Args {
    /// The bundle (an `evidence-bundle-v1` tar archive).
    bundle: PathBuf,
    /// The server's key: a verifier key `name+keyid+base64`, a file holding one, or the raw
    /// base64 Ed25519 public key.
    #[arg(long)]
    server_key: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Parses KEY (or the contents of the file it names).
fn server_key(arg: &str) -> Result<ServerKey> {
    let path = std::path::Path::new(arg);
    let text = if path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("reading key file {arg}"))?
    } else {
        arg.to_string()
    };
    let text = text.trim();
    if let Ok((name, public_key)) = parse_verifier_key(text) {
        return Ok(ServerKey {
            name: Some(name),
            public_key,
        });
    }
    let public_key = decode_public_key(text).map_err(|_| {
        anyhow::anyhow!(
            "the server key is neither a verifier key `name+keyid+base64` nor a base64 Ed25519 public key"
        )
    })?;
    Ok(ServerKey {
        name: None,
        public_key,
    })
}

fn print_text(v: &Verification) {
    let s = &v.summary;
    if v.verified {
        println!("evidence bundle VERIFIED");
    } else {
        println!("evidence bundle FAILED: {} failure(s)", v.failures.len());
    }
    println!("  log:        {}", s.origin);
    println!(
        "  checkpoint: size {}, root {}",
        s.checkpoint_size, s.checkpoint_root
    );
    println!("  period:     {} to {}", s.period_from, s.period_to);
    println!("  catalog:    {} ({})", s.catalog_version, s.catalog_digest);
    println!(
        "  hosts:      {}; reports {} ({} full, {} attestations); key events {}; policy versions {}",
        s.hosts, s.reports, s.full_reports, s.attestations, s.key_events, s.policy_versions
    );
    println!(
        "  controls:   {} passing, {} failing, {} unknown, {} not applicable (host x control)",
        s.controls.passing, s.controls.failing, s.controls.unknown, s.controls.not_applicable
    );
    let mut controls: Vec<_> = s.per_control.iter().collect();
    controls.sort_by(|a, b| evidence_controls::catalog::compare_control_ids(a.0, b.0));
    for (control, c) in controls {
        println!(
            "    {control:<6} pass {:>4}  fail {:>4}  unknown {:>4}  n/a {:>4}",
            c.passing, c.failing, c.unknown, c.not_applicable
        );
    }
    if !v.failures.is_empty() {
        println!("failures:");
        for failure in &v.failures {
            println!("  [{}] {}", failure.check, failure.message);
        }
    }
}

fn run(args: &Args, key: &ServerKey) -> Result<Verification> {
    let file = std::fs::File::open(&args.bundle)
        .with_context(|| format!("opening {}", args.bundle.display()))?;
    let bundle = Bundle::read(std::io::BufReader::new(file))
        .with_context(|| format!("reading the bundle {}", args.bundle.display()))?;
    Ok(verify(&bundle, key))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let key = match server_key(&args.server_key) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("evidence-verify: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(&args, &key) {
        Ok(v) => {
            if args.json {
                match serde_json::to_string_pretty(&v) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("evidence-verify: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else {
                print_text(&v);
            }
            if v.verified {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            if args.json {
                let v = serde_json::json!({
                    "verified": false,
                    "failures": [{"check": "bundle", "message": format!("{e:#}")}],
                });
                println!("{v:#}");
            } else {
                println!("evidence bundle FAILED: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}
