//! Runs the selected collectors in parallel, each under a timeout, and gathers their facts.

use std::str::FromStr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use evidence_protocol::{Facts, Observation};

use crate::Host;

/// How long one collector may run before its facts become an error.
pub const DEFAULT_COLLECTOR_TIMEOUT: Duration = Duration::from_secs(30);

/// The collectors this build knows, by their stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CollectorName {
    Host,
    DiskEncryption,
    PatchLevel,
    Firewall,
    Accounts,
}

impl CollectorName {
    pub const ALL: [CollectorName; 5] = [
        CollectorName::Host,
        CollectorName::DiskEncryption,
        CollectorName::PatchLevel,
        CollectorName::Firewall,
        CollectorName::Accounts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CollectorName::Host => "host",
            CollectorName::DiskEncryption => "disk_encryption",
            CollectorName::PatchLevel => "patch_level",
            CollectorName::Firewall => "firewall",
            CollectorName::Accounts => "accounts",
        }
    }
}

impl std::fmt::Display for CollectorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown collector {0:?}; known: host, disk_encryption, patch_level, firewall, accounts")]
pub struct UnknownCollector(pub String);

impl FromStr for CollectorName {
    type Err = UnknownCollector;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CollectorName::ALL
            .into_iter()
            .find(|name| name.as_str() == s)
            .ok_or_else(|| UnknownCollector(s.to_string()))
    }
}

/// One collector's result, before it is slotted into [`Facts`].
enum Collected {
    Host(Observation<evidence_protocol::facts::HostFacts>),
    DiskEncryption(Observation<evidence_protocol::facts::DiskEncryptionFacts>),
    PatchLevel(Observation<evidence_protocol::facts::PatchLevelFacts>),
    Firewall(Observation<evidence_protocol::facts::FirewallFacts>),
    Accounts(Observation<evidence_protocol::facts::AccountsFacts>),
}

fn run_one(name: CollectorName, host: &Host) -> Collected {
    match name {
        CollectorName::Host => Collected::Host(crate::host_info::collect(host)),
        CollectorName::DiskEncryption => {
            Collected::DiskEncryption(crate::disk_encryption::collect(host))
        }
        CollectorName::PatchLevel => Collected::PatchLevel(crate::patch_level::collect(host)),
        CollectorName::Firewall => Collected::Firewall(crate::firewall::collect(host)),
        CollectorName::Accounts => Collected::Accounts(crate::accounts::collect(host)),
    }
}

fn failed(name: CollectorName, reason: String) -> Collected {
    match name {
        CollectorName::Host => Collected::Host(Observation::error(reason)),
        CollectorName::DiskEncryption => Collected::DiskEncryption(Observation::error(reason)),
        CollectorName::PatchLevel => Collected::PatchLevel(Observation::error(reason)),
        CollectorName::Firewall => Collected::Firewall(Observation::error(reason)),
        CollectorName::Accounts => Collected::Accounts(Observation::error(reason)),
    }
}

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
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_one(name, &host)))
                        .unwrap_or_else(|panic| {
                            let message = panic
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "unknown panic".to_string());
                            failed(
                                name,
                                format!("collector {name} failed internally: {message}"),
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
                slot(&mut facts, result);
            }
            Err(_) => break,
        }
    }
    for name in pending {
        slot(
            &mut facts,
            failed(
                name,
                format!(
                    "collector {name} did not finish within {}s",
                    timeout.as_secs()
                ),
            ),
        );
    }
    facts
}

fn slot(facts: &mut Facts, result: Collected) {
    match result {
        Collected::Host(o) => facts.host = Some(o),
        Collected::DiskEncryption(o) => facts.disk_encryption = Some(o),
        Collected::PatchLevel(o) => facts.patch_level = Some(o),
        Collected::Firewall(o) => facts.firewall = Some(o),
        Collected::Accounts(o) => facts.accounts = Some(o),
    }
}
