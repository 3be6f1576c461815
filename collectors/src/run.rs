//! Runs the selected collectors in parallel, each under a timeout, and gathers their facts.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use evidence_protocol::{CollectorName, Facts};

use crate::Host;

/// How long one collector may run before its facts become an error.
pub const DEFAULT_COLLECTOR_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `only` (every collector when empty) against `host`, each on its own thread and under
/// `timeout`. A collector that panics or outlives the timeout yields `Observation::Error`.
pub fn collect(host: &Host, only: &[CollectorName], timeout: Duration) -> Facts {
    let selected: Vec<CollectorName> = if only.is_empty() {
        CollectorName::ALL.to_vec()
    } else {
        let mut names = only.to_vec();
        names.sort();
        names.dedup();
        names
    };
    let (tx, rx) = mpsc::channel();
    for &name in &selected {
        let tx = tx.clone();
        let host = host.clone();
        std::thread::Builder::new()
            .name(format!("collector-{name}"))
            .spawn(move || {
                let collector = crate::collector(name);
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    collector.collect(&host)
                }))
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".to_string());
                    Facts::all_failed(
                        &[name],
                        &format!("collector {name} failed internally: {message}"),
                    )
                });
                let _ = tx.send((name, result));
            })
            .expect("spawn collector thread");
    }
    drop(tx);

    let deadline = Instant::now() + timeout;
    let mut pending = selected.clone();
    let mut facts = Facts::default();
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((name, result)) => {
                pending.retain(|n| *n != name);
                facts.overlay(result);
            }
            Err(_) => break,
        }
    }
    for name in pending {
        facts.overlay(Facts::all_failed(
            &[name],
            &format!(
                "collector {name} did not finish within {}s",
                timeout.as_secs()
            ),
        ));
    }
    facts
}
