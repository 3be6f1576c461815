//! evidence-server: enrollment, signed-report ingest, evidence store, control status API.
//! `evidence-server serve` runs with no flags (see `config.rs` for every default).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use evidence_server::config::Config;
use evidence_server::store::Store;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "evidence-server",
    version,
    about = "Collector server for signed compliance evidence"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API over HTTPS.
    Serve(ServeArgs),
    /// Start the server and one agent on this machine (enrolled, pinned) until Ctrl-C.
    Preview {
        /// Directory for the server's data, the agent's state and the admin token.
        #[arg(long, default_value = "evidence-preview")]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Agent report interval, seconds.
        #[arg(long, default_value_t = 60)]
        interval_secs: u64,
    },
    /// Verify the evidence log's hash chain and every stored report's digest, offline (with
    /// --deep, also the findings and control status derived from the signed facts).
    VerifyLog {
        /// Data directory (default ./evidence-data).
        #[arg(long, default_value = "evidence-data")]
        data_dir: PathBuf,
        /// Also recompute every host's findings, control status and last transitions from its
        /// latest signed full report under the policy in force, naming every difference from the
        /// stored ones (exit status 1 when any).
        #[arg(long)]
        deep: bool,
    },
    /// Write an evidence bundle (evidence-bundle-v1, a tar archive for evidence-verify) of the
    /// selected hosts, controls and period, signed with the server key. Runs beside a serving
    /// server.
    ExportBundle(ExportArgs),
    /// Print the server's log key as a C2SP verifier key (`name+id+key`): what an auditor
    /// obtains out of band and passes to `evidence-verify --server-key`.
    LogKey {
        /// Data directory (default ./evidence-data).
        #[arg(long, default_value = "evidence-data")]
        data_dir: PathBuf,
    },
    /// Recovery: mint a new admin token in an existing store (whoever can read the data
    /// directory can do this; a running server accepts the token within seconds).
    AdminToken {
        #[arg(long, default_value = "evidence-data")]
        data_dir: PathBuf,
        /// A name for the token in listings and the audit trail.
        #[arg(long, default_value = "recovery (admin-token command)")]
        name: String,
    },
}

#[derive(clap::Args)]
struct ExportArgs {
    /// The archive to write (through FILE.partial, renamed when complete).
    #[arg(long)]
    out: PathBuf,
    /// A host to include (repeat for several); none: every host.
    #[arg(long = "host")]
    hosts: Vec<String>,
    /// An ISO/IEC 27002:2022 control for the findings and status rows (repeat); none: all.
    #[arg(long = "control")]
    controls: Vec<String>,
    /// Start of the period: RFC 3339, or a date (its start, UTC) [default: the first entry].
    #[arg(long)]
    from: Option<String>,
    /// End of the period: RFC 3339, or a date (its end, UTC) [default: now].
    #[arg(long)]
    to: Option<String>,
    /// Data directory (default ./evidence-data).
    #[arg(long, default_value = "evidence-data")]
    data_dir: PathBuf,
    /// The server's TOML configuration, for the freshness bound of the status rows
    /// (report_interval_secs x stale_after_intervals) [default: the defaults].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Refuse a selection of more entries than this.
    #[arg(long, default_value_t = evidence_server::service::export::DEFAULT_MAX_ENTRIES)]
    max_entries: usize,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML configuration file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Listen address [default: 0.0.0.0:8443].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory [default: ./evidence-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// PEM certificate chain (with --tls-key) instead of the generated self-signed one.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Report interval told to agents, seconds [default: 3600].
    #[arg(long)]
    report_interval_secs: Option<u64>,
    /// Missed intervals before a host is stale [default: 3].
    #[arg(long)]
    stale_after_intervals: Option<u32>,
    /// Largest request body, bytes [default: 1048576].
    #[arg(long)]
    max_body_bytes: Option<usize>,
    /// Largest accepted clock skew into the future, seconds [default: 300].
    #[arg(long)]
    max_clock_skew_secs: Option<i64>,
    /// Most connections open at once [default: 4096].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Seconds for a request's headers to arrive; idle keep-alive connections close then [default: 10].
    #[arg(long)]
    header_read_timeout_secs: Option<u64>,
    /// Seconds for a request's body to arrive [default: 30].
    #[arg(long)]
    body_read_timeout_secs: Option<u64>,
    /// Seconds without traffic before a connection is closed [default: 60].
    #[arg(long)]
    idle_timeout_secs: Option<u64>,
    /// Most bytes of request bodies being read at once [default: 67108864].
    #[arg(long)]
    max_inflight_body_bytes: Option<usize>,
}

/// Flags override the configuration file, field by field.
macro_rules! override_from_flags {
    ($config:ident, $args:ident, $($field:ident),+) => {
        $(if let Some(v) = $args.$field { $config.$field = v; })+
    };
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: the journal and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Serve(a) => {
            let mut config = match &a.config {
                Some(p) => Config::from_toml(
                    &std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?,
                )
                .with_context(|| format!("parsing {}", p.display()))?,
                None => Config::default(),
            };
            override_from_flags!(
                config,
                a,
                listen,
                data_dir,
                report_interval_secs,
                stale_after_intervals,
                max_body_bytes,
                max_clock_skew_secs,
                max_connections,
                header_read_timeout_secs,
                body_read_timeout_secs,
                idle_timeout_secs,
                max_inflight_body_bytes
            );
            if let Some(v) = a.tls_cert {
                config.tls_cert = Some(v);
            }
            if let Some(v) = a.tls_key {
                config.tls_key = Some(v);
            }
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(evidence_server::serve::serve(config))
        }
        Command::Preview {
            dir,
            listen,
            interval_secs,
        } => evidence_server::preview::run(&dir, listen, interval_secs),
        Command::LogKey { data_dir } => {
            let key = evidence_server::datadir::existing_server_key(&data_dir)?;
            let origin = evidence_server::service::checkpoints::origin(&key);
            println!(
                "{}",
                evidence_protocol::checkpoint::note::verifier_key(&origin, &key.public_key())?
            );
            Ok(())
        }
        Command::VerifyLog { data_dir, deep } => {
            let store = evidence_server::datadir::existing_store(&data_dir)?;
            let rt = current_thread()?;
            let chain = match rt.block_on(store.verify_log())? {
                Ok((n, head)) => {
                    println!("evidence log verifies: {n} entries, head {head}");
                    // The latest signed checkpoint (the log's tail), checked with the server key.
                    if let Some(cp) = rt.block_on(store.latest_checkpoint())? {
                        let key = evidence_server::datadir::existing_server_key(&data_dir)?;
                        evidence_server::service::checkpoints::check_signature(&key, &cp)
                            .with_context(|| format!("the checkpoint of {} entries", cp.size))?;
                        println!(
                            "latest signed checkpoint: {} entries, root {}",
                            cp.size, cp.root
                        );
                    }
                    Ok(())
                }
                Err(b) => Err(anyhow::anyhow!(
                    "evidence log breaks at entry {}: {}",
                    b.log_index,
                    b.problem
                )),
            };
            if deep {
                if let Err(e) = &chain {
                    eprintln!("{e}");
                }
                deep_verify(&store, &rt)?;
            }
            chain
        }
        Command::ExportBundle(a) => export_bundle(a),
        Command::AdminToken { data_dir, name } => {
            let store = evidence_server::datadir::existing_store(&data_dir)?;
            let token = current_thread()?.block_on(evidence_server::serve::mint_admin_token(
                &store,
                &name,
                "local admin-token command",
            ))?;
            println!("{token}");
            Ok(())
        }
    }
}

/// `verify-log --deep`: prints the counts and every difference; an error when any.
fn deep_verify(
    store: &evidence_server::store::sqlite::SqliteStore,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let index = std::sync::Arc::new(evidence_server::domain::status::CheckIndex::new());
    let found = rt.block_on(evidence_server::service::verify::deep_verify(store, index))?;
    let c = &found.counts;
    println!(
        "deep verification: {} hosts ({} revoked), {} latest full reports evaluated again; \
         {} findings, {} control statuses, {} last transitions compared",
        c.hosts, c.revoked_hosts, c.reports_evaluated, c.findings, c.controls, c.transitions
    );
    for d in &found.differences {
        println!("{}", d.message);
    }
    if !found.ok {
        anyhow::bail!(
            "deep verification: {} differences between the derived tables and the signed facts",
            found.differences.len()
        );
    }
    println!("derived findings and control status agree with the signed facts");
    Ok(())
}

fn export_bundle(a: ExportArgs) -> anyhow::Result<()> {
    use evidence_server::service::export::parse_time;
    let config = match &a.config {
        Some(p) => Config::from_toml(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("parsing {}", p.display()))?,
        None => Config::default(),
    };
    let time = |v: &Option<String>, start| {
        v.as_deref()
            .map(|v| parse_time(v, start).map_err(|e| anyhow::anyhow!("{}", e.message)))
            .transpose()
    };
    let req = evidence_server::service::export::BundleRequest {
        hosts: a.hosts,
        controls: a.controls,
        from: time(&a.from, true)?,
        to: time(&a.to, false)?,
    };
    let started = std::time::Instant::now();
    let (entries, size) =
        current_thread()?.block_on(evidence_server::service::export::export_data_dir(
            &a.data_dir,
            &a.out,
            &req,
            (config.stale_after_us() / 1_000_000).max(0) as u64,
            a.max_entries,
        ))?;
    println!(
        "wrote {}: {entries} entries, final checkpoint of {size} entries, in {:.2} s",
        a.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A runtime for the one-shot commands (the store's calls are async).
fn current_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
