//! The delivery loop of `evidence-agent run`: ships the spool's oldest report, in order, until
//! the spool is empty, then sleeps until a new report is spooled.
//!
//! A report leaves the spool only after the server's receipt verified against the server key
//! stored at enrollment and named exactly that report's bytes. Failures back off exponentially
//! with jitter (or as long as the server's Retry-After asks); a refusal (revoked host, unknown
//! key) pauses delivery without deleting anything and is shown by `status`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use evidence_protocol::signing::PUBLIC_KEY_LEN;
use tokio::sync::{watch, Notify};

use crate::cli::status::{ErrorSeen, ReceiptSeen, RunStatus};
use crate::delivery::outbox::Outbox;
use crate::delivery::ship::{Client, Delivery};
use crate::service::schedule::Backoff;

/// What the shipper needs from the service.
pub struct Shipper<'a> {
    pub client: Client,
    pub key_id: String,
    pub server_key: [u8; PUBLIC_KEY_LEN],
    pub outbox: &'a Mutex<Outbox>,
    pub status: &'a StatusHandle,
    /// Woken when a report is spooled.
    pub wake: &'a Notify,
    pub backoff: Backoff,
}

impl Shipper<'_> {
    /// Runs until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let next = self.outbox.lock().expect("outbox lock").next_to_ship();
            let entry = match next {
                Ok(Some(entry)) => entry,
                Ok(None) => {
                    self.status.update(true, |s| s.spool_depth = 0);
                    tokio::select! {
                        _ = self.wake.notified() => continue,
                        _ = shutdown.changed() => return,
                    }
                }
                Err(err) => {
                    let message = format!("reading the spool: {err:#}");
                    tracing::error!(%message);
                    self.status.error(message);
                    let delay = self.backoff.next_delay();
                    if sleep_or_shutdown(delay, &mut shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            let witness = self.outbox.lock().expect("outbox lock").witness();
            let witnessed = match witness {
                Ok(witnessed) => witnessed,
                Err(err) => {
                    // Never guess: a lost witness would let a rewritten log pass unseen.
                    let message = format!("reading the witnessed checkpoint: {err:#}");
                    tracing::error!(%message);
                    self.status.error(message);
                    if sleep_or_shutdown(self.backoff.next_delay(), &mut shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            let delivery = tokio::select! {
                delivery = self.client.deliver(&entry, &self.key_id, &self.server_key, witnessed.as_ref()) => delivery,
                _ = shutdown.changed() => return,
            };
            let delay = match delivery {
                Delivery::Accepted(receipt, checkpoint) => {
                    let removed = {
                        let mut outbox = self.outbox.lock().expect("outbox lock");
                        outbox
                            .witnessed(&checkpoint)
                            .and_then(|()| outbox.delivered(entry.seq))
                    };
                    if let Err(err) = removed {
                        // Sent again later, the server answers with the same receipt.
                        self.status
                            .error(format!("removing delivered report: {err:#}"));
                    }
                    self.backoff.reset();
                    tracing::info!(
                        seq = entry.seq,
                        log_index = receipt.log_index,
                        checkpoint_size = checkpoint.size,
                        "report delivered, receipt verified"
                    );
                    let depth = self.outbox.lock().expect("outbox lock").depth();
                    self.status.update(depth == 0, |s| {
                        s.last_receipt = Some(ReceiptSeen {
                            seq: receipt.seq,
                            received_at: receipt.received_at,
                            log_index: receipt.log_index,
                            verified_at: Utc::now(),
                        });
                        s.delivery_refused = None;
                        s.spool_depth = depth;
                    });
                    continue;
                }
                Delivery::Retry { reason, after } => {
                    let delay = match after {
                        Some(asked) => self.backoff.retry_after(asked),
                        None => self.backoff.next_delay(),
                    };
                    tracing::warn!(seq = entry.seq, %reason, retry_in_ms = delay.as_millis() as u64, "delivery failed");
                    self.status.error(reason);
                    delay
                }
                Delivery::Rejected { reason } => {
                    tracing::error!(seq = entry.seq, %reason, "server will never accept this report; dropped and counted");
                    if let Err(err) = self.outbox.lock().expect("outbox lock").rejected(entry.seq) {
                        self.status
                            .error(format!("dropping rejected report: {err:#}"));
                    }
                    self.status
                        .error(format!("report {} rejected: {reason}", entry.seq));
                    continue;
                }
                Delivery::Refused { reason } => {
                    tracing::error!(%reason, "server refuses this host; delivery paused, spool kept");
                    self.status.update(true, |s| {
                        s.delivery_refused = Some(reason.clone());
                        s.last_error = Some(ErrorSeen {
                            at: Utc::now(),
                            message: reason.clone(),
                        });
                    });
                    // Retry rarely: an administrator may lift the refusal.
                    self.backoff.retry_after(Duration::MAX)
                }
            };
            if sleep_or_shutdown(delay, &mut shutdown).await {
                return;
            }
        }
    }
}

/// Sleeps; true when shutdown was asked for meanwhile.
async fn sleep_or_shutdown(delay: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

/// The service's status, saved to `status.json` on important changes and at most once a
/// second otherwise (a draining spool must not fsync twice per report).
pub struct StatusHandle {
    state_dir: std::path::PathBuf,
    inner: Mutex<(RunStatus, Option<Instant>)>,
}

impl StatusHandle {
    pub fn new(state_dir: std::path::PathBuf, status: RunStatus) -> StatusHandle {
        StatusHandle {
            state_dir,
            inner: Mutex::new((status, None)),
        }
    }

    /// Changes the status; saves now when `important`, else when the last save is 1 s old.
    pub fn update(&self, important: bool, change: impl FnOnce(&mut RunStatus)) {
        let mut guard = self.inner.lock().expect("status lock");
        change(&mut guard.0);
        let due = guard
            .1
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
        if important || due {
            guard.0.save(&self.state_dir);
            guard.1 = Some(Instant::now());
        }
    }

    pub fn error(&self, message: String) {
        self.update(true, |s| {
            s.last_error = Some(ErrorSeen {
                at: Utc::now(),
                message,
            })
        });
    }

    pub fn snapshot(&self) -> RunStatus {
        self.inner.lock().expect("status lock").0.clone()
    }
}
