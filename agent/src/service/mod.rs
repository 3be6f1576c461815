//! `evidence-agent run`: the long-running service.
//!
//! One current-thread tokio runtime drives three futures: the collection loop (a full
//! collection at start and every interval plus splay; the affected collectors re-run after a
//! watched file changes and the debounce quiet time passes; a signed attestation when nothing
//! was reported for a heartbeat interval), the [`Shipper`] draining the spool, and the systemd
//! watchdog. The interval and heartbeat follow the report interval the server gave at
//! enrollment unless the configuration sets them ([`Schedule::choose`]); a configured schedule
//! that would let the server see the host stale is logged as a warning at start. Collectors
//! run on a blocking thread under their timeout. SIGTERM or SIGINT stops
//! all three promptly; whatever is spooled stays spooled. Everything sleeps on timers or
//! kernel events, so an idle agent uses no CPU.

pub mod lifecycle;
pub mod schedule;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use evidence_collectors::{CollectorName, Host, SystemRunner};
use evidence_protocol::signing::{self, SigningKey};
use evidence_protocol::{Facts, ReportKind};
use sd_notify::NotifyState;
use tokio::sync::Notify;

use crate::cli::enroll::CommonArgs;
use crate::cli::status::{ReportMade, RunStatus, LOCK_FILE};
use crate::config::Config;
use crate::delivery::outbox::Outbox;
use crate::delivery::ship::Client;
use crate::delivery::shipper::{Shipper, StatusHandle};
use crate::state::StateDir;
use schedule::{Backoff, Schedule, ServerExpectation};
use watch::{Pending, Watch};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
}

/// Longest wait for more changes once a first change was seen (a long package upgrade still
/// reports every few seconds).
const DEBOUNCE_MAX_FACTOR: u32 = 4;

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = args.common.config()?;
    let names = config.collector_names()?;
    anyhow::ensure!(
        config.root.is_dir(),
        "root {}: not a directory",
        config.root.display()
    );
    let state = StateDir::open(&config.state_dir)?;
    let _lock = lock(&state)?;
    let enrollment = state
        .load_enrollment()?
        .context("this host is not enrolled: run `evidence-agent enroll` first")?;
    let key = state
        .load_key()?
        .context("the host key is missing from the state directory")?;
    anyhow::ensure!(
        key.key_id() == enrollment.key_id,
        "the host key ({}) is not the enrolled key ({}): enroll again",
        key.key_id(),
        enrollment.key_id
    );
    let server_key = signing::decode_public_key(&enrollment.server_public_key)
        .context("server public key in enrollment.json")?;
    let client = Client::new(
        &enrollment.server_url,
        &enrollment.pin,
        Duration::from_secs(config.ship.request_timeout_secs),
    )?;
    let outbox = Outbox::open(
        state.clone(),
        &key,
        &enrollment,
        config.spool.max_reports,
        config.spool.max_bytes,
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(2)
        .build()?;
    let server_expects = ServerExpectation::from_enrollment(&enrollment);
    let schedule = Schedule::choose(&config.schedule, server_expects.as_ref());
    tracing::info!(
        server = %enrollment.server_url,
        host_id = %enrollment.host_id,
        spooled = outbox.depth(),
        collectors = ?names.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
        interval_secs = schedule.interval.as_secs_f64(),
        heartbeat_secs = schedule.heartbeat.map(|h| h.as_secs_f64()),
        splay_secs = schedule.splay.as_secs_f64(),
        server_report_interval_secs = enrollment.report_interval_secs,
        "evidence-agent starting"
    );
    if let Some(warning) = server_expects.and_then(|server| schedule.stale_warning(&server)) {
        tracing::warn!(%warning, "the configured schedule lets this host go stale on the server");
    }
    let status = StatusHandle::new(
        state.path().to_path_buf(),
        RunStatus {
            pid: std::process::id(),
            started_at: Some(Utc::now()),
            spool_depth: outbox.depth(),
            // What the last run knew about delivery is still worth showing.
            ..RunStatus::load(state.path()).unwrap_or_default()
        },
    );
    let service = Service {
        host: Host::new(&config.root, Arc::new(SystemRunner)),
        names,
        key,
        outbox: Mutex::new(outbox),
        status,
        wake: Notify::new(),
        schedule,
        config,
    };
    let result = runtime.block_on(service.main(client, server_key));
    // A collector still running on its blocking thread is abandoned, not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Holds the state directory's lock for the life of the service: one agent per state dir.
fn lock(state: &StateDir) -> anyhow::Result<File> {
    let path = state.path().join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another evidence-agent is already running with state directory {}",
            state.path().display()
        ),
        Err(std::fs::TryLockError::Error(err)) => Err(err).context("locking the state directory"),
    }
}

struct Service {
    config: Config,
    /// Chosen from the configuration and the server's expectation ([`Schedule::choose`]).
    schedule: Schedule,
    host: Host,
    names: Vec<CollectorName>,
    key: SigningKey,
    outbox: Mutex<Outbox>,
    status: StatusHandle,
    wake: Notify,
}

impl Service {
    async fn main(self, client: Client, server_key: [u8; 32]) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let shipper = Shipper {
            client,
            key_id: self.key.key_id(),
            server_key,
            outbox: &self.outbox,
            status: &self.status,
            wake: &self.wake,
            backoff: Backoff::new(
                Duration::from_millis(self.config.ship.backoff_initial_ms),
                Duration::from_secs(self.config.ship.backoff_max_secs),
            ),
        };
        let signals = async move {
            lifecycle::wait_for_signal().await;
            tracing::info!("stopping");
            let _ = sd_notify::notify(&[NotifyState::Stopping]);
            let _ = stop_tx.send(true);
        };
        let background = async {
            tokio::join!(
                shipper.run(stop_rx.clone()),
                lifecycle::watchdog(stop_rx.clone())
            );
        };
        let result = tokio::select! {
            result = self.collect_loop(stop_rx.clone()) => result,
            () = background => Ok(()),
            () = signals => Ok(()),
        };
        let mut final_status = self.status.snapshot();
        final_status.pid = 0;
        final_status.spool_depth = self.outbox.lock().expect("outbox lock").depth();
        final_status.save(&self.config.state_dir);
        result
    }

    async fn collect_loop(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let schedule = &self.schedule;
        let debounce = Duration::from_millis(self.config.watch.debounce_ms);
        let pending = Arc::new(Pending::default());
        let mut watch = if self.config.watch.enabled {
            match Watch::start(&self.config.root, &self.names, pending.clone()) {
                Ok(watch) => {
                    tracing::info!(watched = ?watch.watched(), "watching the collectors' files");
                    Some(watch)
                }
                Err(err) => {
                    // Scheduled collections still run; the status shows why changes are late.
                    let message =
                        format!("cannot watch files, changes wait for the schedule: {err}");
                    tracing::error!(%message);
                    self.status.error(message);
                    None
                }
            }
        } else {
            None
        };
        let _ = sd_notify::notify(&[NotifyState::Ready]);

        let mut last_facts: Option<Facts> = None;
        let mut next_full = Instant::now();
        let mut next_heartbeat: Option<Instant> = None;
        let mut changed: BTreeSet<CollectorName> = BTreeSet::new();
        let mut quiet_until: Option<Instant> = None;
        let mut first_change: Option<Instant> = None;
        let mut trigger = "start";
        loop {
            let mut wake_at = next_full;
            for t in [next_heartbeat, quiet_until].into_iter().flatten() {
                wake_at = wake_at.min(t);
            }
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                _ = tokio::time::sleep_until(wake_at.into()) => {}
                _ = pending.notify.notified() => {
                    changed.extend(pending.take());
                    if !changed.is_empty() {
                        let now = Instant::now();
                        let first = *first_change.get_or_insert(now);
                        quiet_until = Some((now + debounce).min(first + debounce * DEBOUNCE_MAX_FACTOR));
                    }
                    continue;
                }
            }
            let now = Instant::now();
            if now >= next_full {
                let facts = self.collect(&self.names).await;
                self.spool(
                    ReportKind::Full {
                        facts: facts.clone(),
                    },
                    trigger,
                )?;
                last_facts = Some(facts);
                trigger = "schedule";
                next_full = schedule.next_full(Instant::now());
                next_heartbeat = schedule.next_heartbeat(Instant::now());
                // The full collection saw every change made before it started.
                changed.clear();
                (quiet_until, first_change) = (None, None);
            } else if quiet_until.is_some_and(|t| now >= t) {
                (quiet_until, first_change) = (None, None);
                changed.extend(pending.take());
                let rerun: Vec<CollectorName> = std::mem::take(&mut changed).into_iter().collect();
                if let Some(watch) = watch.as_mut() {
                    watch.refresh();
                }
                let mut merged = last_facts.clone().unwrap_or_default();
                merged.overlay(self.collect(&rerun).await);
                if last_facts.as_ref() == Some(&merged) {
                    tracing::debug!(?rerun, "watched files changed but the facts did not");
                } else {
                    let names: Vec<&str> = rerun.iter().map(|n| n.as_str()).collect();
                    let why = format!("change: {}", names.join(","));
                    self.spool(
                        ReportKind::Full {
                            facts: merged.clone(),
                        },
                        &why,
                    )?;
                    last_facts = Some(merged);
                    next_heartbeat = schedule.next_heartbeat(Instant::now());
                }
            } else if next_heartbeat.is_some_and(|t| now >= t) {
                let still_holds = self
                    .outbox
                    .lock()
                    .expect("outbox lock")
                    .chain()
                    .last_full_digest;
                match still_holds {
                    Some(digest) => self.spool(
                        ReportKind::Attestation {
                            still_holds: digest,
                        },
                        "heartbeat",
                    )?,
                    None => next_full = now,
                }
                next_heartbeat = schedule.next_heartbeat(Instant::now());
            }
            let (full_in, hb_in) = (
                next_full.saturating_duration_since(Instant::now()),
                next_heartbeat.map(|t| t.saturating_duration_since(Instant::now())),
            );
            self.status.update(true, |s| {
                s.next_full_at = Some(Utc::now() + full_in);
                s.next_heartbeat_at = hb_in.map(|d| Utc::now() + d);
            });
        }
    }

    /// Runs `names` on a blocking thread under the configured timeout.
    async fn collect(&self, names: &[CollectorName]) -> Facts {
        let host = self.host.clone();
        let timeout = self.config.collector_timeout();
        let started = Instant::now();
        let facts = collect_on_thread(names, move |names| {
            evidence_collectors::collect(&host, names, timeout)
        })
        .await;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "collected"
        );
        facts
    }

    /// Signs and spools a report, then wakes the shipper.
    fn spool(&self, kind: ReportKind, trigger: &str) -> anyhow::Result<()> {
        let kind_name = match kind {
            ReportKind::Full { .. } => "full",
            ReportKind::Attestation { .. } => "attestation",
        };
        let versions: BTreeMap<String, String> = self
            .names
            .iter()
            .map(|n| {
                (
                    n.as_str().to_string(),
                    env!("CARGO_PKG_VERSION").to_string(),
                )
            })
            .collect();
        let (seq, depth) = {
            let mut outbox = self.outbox.lock().expect("outbox lock");
            let (seq, _) = outbox
                .append(&self.key, kind, versions, Utc::now())
                .context("making a report")?;
            (seq, outbox.depth())
        };
        tracing::info!(
            seq,
            kind = kind_name,
            trigger,
            spooled = depth,
            "report spooled"
        );
        self.status.update(true, |s| {
            s.last_report = Some(ReportMade {
                seq,
                kind: kind_name.to_string(),
                trigger: trigger.to_string(),
                at: Utc::now(),
            });
            s.spool_depth = depth;
        });
        self.wake.notify_one();
        Ok(())
    }
}

/// Runs `collect` over `names` on a blocking thread. A collection that fails outright (the
/// thread panics or is cancelled) yields an error observation for every requested collector,
/// never empty facts that would be signed as a full report.
async fn collect_on_thread(
    names: &[CollectorName],
    collect: impl FnOnce(&[CollectorName]) -> Facts + Send + 'static,
) -> Facts {
    let requested = names.to_vec();
    let names = requested.clone();
    tokio::task::spawn_blocking(move || collect(&names))
        .await
        .unwrap_or_else(|err| {
            tracing::error!(error = %err, "collection thread failed");
            Facts::all_failed(&requested, &format!("the collection failed: {err}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use evidence_protocol::Observation;

    #[tokio::test(flavor = "current_thread")]
    async fn a_collection_that_fails_outright_reports_an_error_for_every_requested_collector() {
        let names = [CollectorName::ALL[1], CollectorName::ALL[3]];
        let facts = collect_on_thread(&names, |_| panic!("collector thread died")).await;
        assert_eq!(facts.collectors(), names);
        let value = serde_json::to_value(&facts).unwrap();
        for name in names {
            let reason = value[name.as_str()]["error"]["reason"].as_str().unwrap();
            assert!(reason.starts_with("the collection failed: "), "{reason}");
        }
        assert_ne!(facts, Facts::default());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_collection_that_runs_returns_its_facts() {
        let names = [CollectorName::ALL[0]];
        let facts = collect_on_thread(&names, |names| Facts::all_failed(names, "ran")).await;
        assert_eq!(facts.host, Some(Observation::error("ran")));
    }
}
