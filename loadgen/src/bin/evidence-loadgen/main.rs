//! evidence-loadgen: simulates N enrolled hosts with real Ed25519 keys sending realistic signed
//! reports (the four collectors' facts of a recorded Debian 12 host, ~6 KB) to a running
//! evidence-server over keep-alive HTTPS, and prints throughput and latency percentiles.
//!
//! All reports are built and signed before the clock starts. Each host's reports are sent in
//! sequence order by one worker (a host never races itself); workers run concurrently.
//!
//! `populate` and `snapshot-bench` measure fleet size instead (see `fleet.rs`).
//!
//! ```text
//! evidence-loadgen ingest --url https://127.0.0.1:8443 --fingerprint <hex> --admin-token <evt_...> \
//!     --hosts 200 --reports 20000 --concurrency 64 [--rate 1000] [--verify-receipts]
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use evidence_loadgen::client::{sample_facts, Api, SimHost};
use evidence_protocol::{Checkpoint, Receipt, ReportKind, Witnessed};

mod fleet;

#[derive(Parser)]
#[command(
    name = "evidence-loadgen",
    about = "Load generator and fleet benchmarks for evidence-server"
)]
enum Cmd {
    /// Enroll N hosts and send pre-signed reports over keep-alive HTTPS.
    Ingest(Args),
    /// Write N enrolled hosts with one evaluated full report each into a data directory.
    Populate {
        #[arg(long)]
        data_dir: std::path::PathBuf,
        #[arg(long, default_value_t = 100_000)]
        hosts: usize,
    },
    /// Time inclusion and consistency proofs from a SQLite store whose tree has N leaves.
    ProofBench {
        #[arg(long, default_value_t = 10_000_000)]
        entries: u64,
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
    },
    /// Time the fleet snapshot in-process over N hosts with C checks each.
    SnapshotBench {
        #[arg(long, default_value_t = 100_000)]
        hosts: usize,
        #[arg(long, default_value_t = 40)]
        checks: usize,
        #[arg(long, default_value_t = 7)]
        rounds: usize,
    },
}

#[derive(clap::Args)]
struct Args {
    #[arg(long)]
    url: String,
    /// SHA-256 fingerprint of the server certificate (printed by `evidence-server serve`).
    #[arg(long)]
    fingerprint: String,
    #[arg(long)]
    admin_token: String,
    /// Simulated hosts.
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    /// Reports in total (spread evenly over the hosts).
    #[arg(long, default_value_t = 10_000)]
    reports: usize,
    /// Concurrent connections (workers).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Target reports per second overall; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Verify every receipt's signature (costs client CPU on the same cores).
    #[arg(long)]
    verify_receipts: bool,
    /// Tokio worker threads for the client.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = match Cmd::parse() {
        Cmd::Ingest(a) => a,
        Cmd::Populate { data_dir, hosts } => return fleet::populate(&data_dir, hosts),
        Cmd::ProofBench { entries, queries } => return fleet::proof_bench(entries, queries),
        Cmd::SnapshotBench {
            hosts,
            checks,
            rounds,
        } => {
            fleet::snapshot_bench(hosts, checks, rounds);
            return Ok(());
        }
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let api = Api::new(&args.url, &args.fingerprint)?;
    let secret = api.create_secret(&args.admin_token).await?;
    let t = Instant::now();
    let mut hosts = Vec::with_capacity(args.hosts);
    for chunk in (0..args.hosts).collect::<Vec<_>>().chunks(32) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|i| {
                let (api, secret, name) = (api.clone(), secret.clone(), format!("loadgen-{i:06}"));
                tokio::spawn(async move { SimHost::enroll(&api, &secret, &name).await })
            })
            .collect();
        for h in handles {
            hosts.push(h.await??);
        }
    }
    eprintln!(
        "enrolled {} hosts in {:.1}s",
        hosts.len(),
        t.elapsed().as_secs_f64()
    );
    let per_host = args.reports.div_ceil(args.hosts.max(1));
    let t = Instant::now();
    let mut work: Vec<Vec<(usize, evidence_protocol::SignedReport)>> =
        vec![Vec::new(); args.concurrency.max(1)];
    let total_bytes: usize;
    let workers = work.len();
    {
        let mut bytes = 0;
        let mut plans: Vec<Vec<evidence_protocol::SignedReport>> = hosts
            .iter_mut()
            .map(|h| {
                let facts = sample_facts(&h.hostname);
                (0..per_host)
                    .map(|_| {
                        h.next_report(ReportKind::Full {
                            facts: facts.clone(),
                        })
                    })
                    .collect()
            })
            .collect();
        // Interleave hosts so every worker spreads over its hosts.
        for round in 0..per_host {
            for (hi, plan) in plans.iter_mut().enumerate() {
                let r = std::mem::replace(&mut plan[round], empty());
                bytes += r.bytes.len();
                let w = hi % workers;
                work[w].push((hi, r));
            }
        }
        total_bytes = bytes;
    }
    let n: usize = work.iter().map(Vec::len).sum();
    eprintln!(
        "signed {n} reports (avg {} bytes) in {:.1}s",
        total_bytes / n.max(1),
        t.elapsed().as_secs_f64()
    );
    let hosts = Arc::new(hosts);
    // With a target rate, the whole run lasts n / rate seconds; each worker spreads its own
    // reports evenly over that time (workers may hold different numbers of reports).
    let run_secs = (args.rate > 0).then(|| n as f64 / args.rate as f64);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for list in work {
        let api = api.clone();
        let hosts = hosts.clone();
        let verify = args.verify_receipts;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(list.len());
            let mut errors: Vec<String> = Vec::new();
            // Each host is one worker's: the last checkpoint it saw, sent with its next report
            // so the server proves consistency from it, as for a real agent.
            let mut witnessed: HashMap<usize, Witnessed> = HashMap::new();
            let begin = Instant::now();
            let interval =
                run_secs.map(|secs| Duration::from_secs_f64(secs / list.len().max(1) as f64));
            for (i, (hi, report)) in list.into_iter().enumerate() {
                if let Some(iv) = interval {
                    tokio::time::sleep_until((begin + iv * i as u32).into()).await;
                }
                let t = Instant::now();
                let seen = witnessed.get(&hi).copied();
                match api.submit_witnessed(&report, seen.map(|w| w.size)).await {
                    Ok((200, body)) => {
                        lat.push(t.elapsed());
                        let checkpoint = if verify {
                            hosts[hi]
                                .verify_receipt(&report, &body, seen.as_ref())
                                .map(|(_, checkpoint)| checkpoint)
                        } else {
                            unverified_checkpoint(&body)
                        };
                        match checkpoint {
                            Ok(checkpoint) => {
                                witnessed.insert(hi, checkpoint);
                            }
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                    Ok((status, body)) => {
                        errors.push(format!("{status} {}", String::from_utf8_lossy(&body)))
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        let (l, e) = t.await.context("worker")?;
        lat.extend(l);
        errors.extend(e);
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(0.0)
    };
    println!(
        "reports_ok={} errors={} seconds={secs:.2} throughput={:.0}/s p50_ms={:.2} p99_ms={:.2} max_ms={:.2} target_rate={}",
        lat.len(),
        errors.len(),
        lat.len() as f64 / secs,
        pct(0.50),
        pct(0.99),
        pct(1.0),
        if args.rate == 0 { "max".to_string() } else { args.rate.to_string() }
    );
    for e in errors.iter().take(5) {
        eprintln!("error: {e}");
    }
    if !errors.is_empty() {
        anyhow::bail!("{} reports failed", errors.len());
    }
    Ok(())
}

fn empty() -> evidence_protocol::SignedReport {
    evidence_protocol::SignedReport {
        bytes: Vec::new(),
        signature: String::new(),
        key_id: String::new(),
    }
}

/// The checkpoint a receipt names, read without verifying anything (`--verify-receipts` off:
/// the client's CPU goes to load, not checks).
fn unverified_checkpoint(body: &[u8]) -> anyhow::Result<Witnessed> {
    let receipt: Receipt = serde_json::from_slice(body)?;
    let (text, _) = receipt
        .checkpoint
        .split_once("\n\n")
        .context("a checkpoint note has a blank line before its signatures")?;
    let checkpoint = Checkpoint::parse(&format!("{text}\n"))?;
    Ok(Witnessed {
        size: checkpoint.size,
        root: checkpoint.root,
    })
}
