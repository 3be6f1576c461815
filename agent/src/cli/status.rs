//! `evidence-agent status`, and the `status.json` the running service keeps for it.
//!
//! The service rewrites `<state_dir>/status.json` when something worth knowing happens (a report
//! made, a receipt verified, an error, the next run planned); `status` combines it with the
//! enrollment, the chain and a fresh count of the spool directory, and says whether a service
//! is running (it holds the state directory's lock).

use std::path::Path;

use chrono::{DateTime, Utc};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::cli::enroll::CommonArgs;
use crate::state::{Pin, StateDir};

pub const STATUS_FILE: &str = "status.json";
pub const LOCK_FILE: &str = "run.lock";

/// What the running service last did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunStatus {
    pub pid: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub last_report: Option<ReportMade>,
    pub last_receipt: Option<ReceiptSeen>,
    pub last_error: Option<ErrorSeen>,
    /// Set while the server refuses this host (revoked, unknown key): delivery is paused.
    pub delivery_refused: Option<String>,
    pub next_full_at: Option<DateTime<Utc>>,
    pub next_heartbeat_at: Option<DateTime<Utc>>,
    pub spool_depth: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportMade {
    pub seq: u64,
    /// `full` or `attestation`.
    pub kind: String,
    /// Why: `start`, `schedule`, `change: accounts`, `heartbeat`.
    pub trigger: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptSeen {
    pub seq: u64,
    pub received_at: DateTime<Utc>,
    pub log_index: u64,
    pub verified_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorSeen {
    pub at: DateTime<Utc>,
    pub message: String,
}

impl RunStatus {
    /// Replaces status.json (atomic rename; not fsynced: it is informational and rewritten often).
    pub fn save(&self, state_dir: &Path) {
        let path = state_dir.join(STATUS_FILE);
        let tmp = state_dir.join(".status.json.tmp");
        let result = serde_json::to_vec_pretty(self)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(err) = result {
            tracing::warn!(path = %path.display(), error = %err, "cannot write status");
        }
    }

    pub fn load(state_dir: &Path) -> Option<RunStatus> {
        let bytes = std::fs::read(state_dir.join(STATUS_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: CommonArgs,
}

/// Everything `status` reports.
#[derive(Debug, Serialize)]
struct StatusReport {
    state_dir: String,
    enrolled: bool,
    server: Option<String>,
    pin: Option<String>,
    host_id: Option<String>,
    key_id: Option<String>,
    service_running: bool,
    next_seq: u64,
    spool_depth: u64,
    run: Option<RunStatus>,
}

pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let config = args.common.config()?;
    let state = StateDir::open(&config.state_dir)?;
    let enrollment = state.load_enrollment()?;
    let chain = state.load_chain()?;
    let report = StatusReport {
        state_dir: state.path().display().to_string(),
        enrolled: enrollment.is_some(),
        server: enrollment.as_ref().map(|e| e.server_url.clone()),
        pin: enrollment.as_ref().map(|e| match &e.pin {
            Pin::Fingerprint(hex) => format!("sha256 {hex}"),
            Pin::CaPem(_) => "CA certificate".to_string(),
        }),
        host_id: enrollment.as_ref().map(|e| e.host_id.clone()),
        key_id: enrollment.as_ref().map(|e| e.key_id.clone()),
        service_running: service_running(state.path()),
        next_seq: chain.next_seq,
        spool_depth: count_spool(&state.spool_dir()),
        run: RunStatus::load(state.path()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print_text(&report);
    Ok(())
}

fn print_text(r: &StatusReport) {
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!("state dir:      {}", r.state_dir);
    if r.enrolled {
        println!(
            "enrolled:       yes, host {} key {}",
            or_none(&r.host_id),
            or_none(&r.key_id)
        );
        println!(
            "server:         {} (pinned by {})",
            or_none(&r.server),
            or_none(&r.pin)
        );
    } else {
        println!("enrolled:       no (run `evidence-agent enroll`)");
    }
    println!(
        "service:        {}",
        if r.service_running {
            "running"
        } else {
            "not running"
        }
    );
    println!("spool depth:    {} report(s) waiting", r.spool_depth);
    println!("next sequence:  {}", r.next_seq);
    let Some(run) = &r.run else {
        println!("last report:    none yet");
        return;
    };
    match &run.last_report {
        Some(m) => println!(
            "last report:    #{} {} ({}) at {}",
            m.seq, m.kind, m.trigger, m.at
        ),
        None => println!("last report:    none yet"),
    }
    match &run.last_receipt {
        Some(rc) => println!(
            "last receipt:   #{} stored at {} (log index {}), verified {}",
            rc.seq, rc.received_at, rc.log_index, rc.verified_at
        ),
        None => println!("last receipt:   none yet"),
    }
    if let Some(reason) = &run.delivery_refused {
        println!("DELIVERY REFUSED by the server: {reason}");
    }
    match &run.last_error {
        Some(e) => println!("last error:     {} at {}", e.message, e.at),
        None => println!("last error:     none"),
    }
    let time = |t: &Option<DateTime<Utc>>| t.map_or("-".to_string(), |t| t.to_rfc3339());
    println!("next full run:  {}", time(&run.next_full_at));
    println!("next heartbeat: {}", time(&run.next_heartbeat_at));
}

/// True when some process holds the state directory's run lock.
pub fn service_running(state_dir: &Path) -> bool {
    let Ok(file) = std::fs::File::open(state_dir.join(LOCK_FILE)) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => false,
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(_)) => false,
    }
}

fn count_spool(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|items| {
            items
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".report"))
                .count() as u64
        })
        .unwrap_or(0)
}
