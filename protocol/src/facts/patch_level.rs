//! Facts of the `patch_level` collector: the OS release, the package manager's installed
//! packages versus its indexes (pending updates, pending security updates), the running kernel
//! versus the newest installed kernel package, whether a reboot is pending, how old the package
//! indexes are, and whether automatic updates are configured.
//!
//! Filled in by `evidence-collectors::patch_level` (natively from dpkg's status file and apt's
//! lists on Debian-family hosts, from `rpm` and `dnf check-update` on RPM hosts); read by the
//! `patch_level.*` checks.

use serde::{Deserialize, Serialize};

use crate::Observation;

/// What the `patch_level` collector observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchLevelFacts {
    /// `/etc/os-release` (or `/usr/lib/os-release`).
    pub os_release: Observation<OsRelease>,
    /// Which package manager owns this tree.
    pub package_manager: PackageManager,
    /// Installed packages and the updates pending for them.
    pub updates: Observation<PendingUpdates>,
    /// The running kernel against the installed kernel packages. `NotApplicable` under `--root`
    /// (the running kernel belongs to the machine running the agent) and on hosts whose kernel
    /// is not installed from a package (containers).
    pub kernel: Observation<KernelFacts>,
    /// Whether the package manager asked for a reboot (`/run/reboot-required`). `NotApplicable`
    /// under `--root`.
    pub reboot: Observation<RebootFacts>,
    /// When the package indexes were last refreshed.
    pub index_refresh: Observation<IndexRefresh>,
    /// Whether updates are installed automatically (unattended-upgrades, dnf-automatic).
    pub automatic_updates: Observation<AutomaticUpdates>,
}

/// The operating system release, from os-release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`.
    pub id: String,
    /// `VERSION_ID`, e.g. `12`.
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`, e.g. `bookworm`.
    pub codename: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
}

/// The package manager whose database was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageManager {
    /// dpkg and apt (`/var/lib/dpkg/status`).
    Dpkg,
    /// rpm and dnf.
    Rpm,
    /// Neither was found.
    Unknown,
}

/// Installed packages and the pending updates, sorted by name then architecture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingUpdates {
    /// How many packages are installed.
    pub installed_count: u64,
    /// The package indexes read (apt lists, or the `dnf check-update` run), sorted.
    pub sources: Vec<String>,
    /// Every installed package whose candidate version is newer than the installed one.
    pub pending: Vec<PendingUpdate>,
}

impl PendingUpdates {
    /// How many of the pending updates come from a security archive.
    pub fn security_count(&self) -> usize {
        self.pending.iter().filter(|p| p.security).count()
    }
}

/// One installed package with a newer candidate version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingUpdate {
    pub name: String,
    pub arch: String,
    pub installed_version: String,
    pub candidate_version: String,
    /// The archives (apt `Suite`, e.g. `bookworm-security`; dnf repository id) offering the
    /// candidate, sorted.
    pub archives: Vec<String>,
    /// True when one of those archives is a security archive.
    pub security: bool,
}

/// The running kernel against the installed kernel packages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelFacts {
    /// The running kernel release (`uname -r`).
    pub running: String,
    /// The installed kernel releases, oldest first (by package version).
    pub installed: Vec<String>,
    /// The newest installed kernel release.
    pub newest_installed: String,
    /// True when `running` equals `newest_installed`.
    pub running_is_newest: bool,
}

/// The package manager's pending-reboot marker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebootFacts {
    pub required: bool,
    /// The packages that asked for it (`/run/reboot-required.pkgs`), sorted.
    pub packages: Vec<String>,
}

/// When the package indexes were last refreshed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexRefresh {
    /// Unix time of the last refresh.
    pub refreshed_at: i64,
    /// Seconds between that and the collection.
    pub age_seconds: i64,
    /// The file whose modification time gave it.
    pub source: String,
}

/// Whether updates are installed automatically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomaticUpdates {
    /// The tool looked for (`unattended-upgrades`, `dnf-automatic`).
    pub tool: String,
    /// True when that tool's package is installed.
    pub installed: bool,
    /// The setting that enables it, as configured (`APT::Periodic::Unattended-Upgrade`,
    /// `apply_updates`), or `None` when unset.
    pub setting: Option<String>,
    /// True when installed and the setting enables it.
    pub enabled: bool,
}
