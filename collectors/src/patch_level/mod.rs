//! The `patch_level` collector: OS release, pending (security) updates, running versus newest
//! kernel, pending reboot, package-index age and automatic updates.
//!
//! On dpkg trees everything is computed natively from files (dpkg's status, apt's lists,
//! preferences and configuration) so the counts equal `apt list --upgradable` without running
//! apt; RPM hosts (no dpkg status, an rpm database present) are read through `rpm` and `dnf`.
//! Pure parsers live in the sub-modules; `dpkg_host` and `rpm_host` wire them to the [`Host`].

pub mod apt_conf;
pub mod apt_indexes;
pub mod apt_policy;
pub mod apt_release;
pub mod apt_sources;
pub mod control;
pub mod deb_version;
pub mod dpkg_host;
pub mod dpkg_status;
pub mod kernel;
pub mod os_release;
pub mod rpm;
pub mod rpm_host;
pub mod unattended;

use std::time::{SystemTime, UNIX_EPOCH};

use evidence_protocol::facts::patch_level::{IndexRefresh, OsRelease, PackageManager};
use evidence_protocol::facts::PatchLevelFacts;
use evidence_protocol::{Observation, Platform};

use crate::{caps, Host, Source};

pub const PLATFORMS: &[Platform] = &[Platform::Linux];

/// What the collector reads: dpkg's and apt's files on dpkg hosts; on RPM hosts the rpm
/// database's presence, dnf's cache stamps and dnf-automatic's configuration (the packages
/// themselves come from `rpm` and `dnf`); and the running kernel and pending reboot.
pub const READS: &[Source] = &[
    Source::Watched("/etc/os-release"),
    Source::Watched("/usr/lib/os-release"),
    Source::Watched(dpkg_host::STATUS),
    Source::Watched(dpkg_host::LISTS),
    Source::Watched("/etc/apt/apt.conf"),
    Source::Watched("/etc/apt/apt.conf.d"),
    Source::Watched("/etc/apt/preferences"),
    Source::Watched("/etc/apt/preferences.d"),
    Source::Watched("/etc/apt/sources.list"),
    Source::Watched("/etc/apt/sources.list.d"),
    Source::Watched("/var/lib/apt/periodic/update-success-stamp"),
    Source::Watched("/var/lib/rpm"),
    Source::Watched("/usr/lib/sysimage/rpm"),
    Source::Watched("/usr/bin/rpm"),
    Source::Watched("/var/cache/dnf/last_makecache"),
    Source::Watched("/var/cache/dnf/expired_repos.json"),
    Source::Watched("/etc/dnf/automatic.conf"),
    Source::Watched("/etc/systemd/system/timers.target.wants/dnf-automatic.timer"),
    Source::Watched("/etc/systemd/system/timers.target.wants/dnf-automatic-install.timer"),
    Source::Polled("/proc/sys/kernel/osrelease"),
    Source::Polled("/run/reboot-required"),
    Source::Polled("/run/reboot-required.pkgs"),
];

/// Observes the host's `patch_level` state.
pub fn collect(host: &Host) -> Observation<PatchLevelFacts> {
    let os_release = read_os_release(host);
    match host.read(dpkg_host::STATUS, caps::DPKG_STATUS) {
        Ok(bytes) => collect_dpkg(host, os_release, &bytes),
        Err(e) if e.is_not_found() => {
            // An rpm database, or the rpm tool itself.
            let rpmdb = ["/var/lib/rpm", "/usr/lib/sysimage/rpm"]
                .iter()
                .any(|p| host.is_dir(p))
                || host.metadata("/usr/bin/rpm").is_ok_and(|m| m.is_file());
            if rpmdb {
                collect_rpm(host, os_release)
            } else {
                Observation::error(format!(
                    "no package database: neither {} nor an rpm database under {}",
                    host.path(dpkg_host::STATUS).display(),
                    host.root().display()
                ))
            }
        }
        Err(e) => Observation::error(format!("dpkg status: {e}")),
    }
}

fn collect_dpkg(
    host: &Host,
    os_release: Observation<OsRelease>,
    bytes: &[u8],
) -> Observation<PatchLevelFacts> {
    let status = match dpkg_status::parse(bytes) {
        Ok(status) => status,
        Err(e) => {
            return Observation::error(format!("{}: {e}", host.path(dpkg_host::STATUS).display()))
        }
    };
    let conf = dpkg_host::read_apt_conf(host);
    Observation::Observed(PatchLevelFacts {
        os_release,
        package_manager: PackageManager::Dpkg,
        updates: dpkg_host::pending(host, &status, &conf).into(),
        kernel: dpkg_host::kernel(host, &status),
        reboot: dpkg_host::reboot(host),
        index_refresh: dpkg_host::index_refresh(host),
        automatic_updates: Observation::Observed(dpkg_host::automatic_updates(&status, &conf)),
    })
}

fn collect_rpm(host: &Host, os_release: Observation<OsRelease>) -> Observation<PatchLevelFacts> {
    let packages = match rpm_host::installed(host) {
        Ok(packages) => packages,
        Err(e) => return Observation::error(format!("rpm -qa: {e}")),
    };
    Observation::Observed(PatchLevelFacts {
        os_release,
        package_manager: PackageManager::Rpm,
        updates: rpm_host::pending(host, &packages).into(),
        kernel: rpm_host::kernel(host, &packages),
        reboot: rpm_host::reboot(host),
        index_refresh: rpm_host::index_refresh(host),
        automatic_updates: Observation::Observed(rpm_host::automatic_updates(host, &packages)),
    })
}

fn read_os_release(host: &Host) -> Observation<OsRelease> {
    let mut last_error = None;
    for path in ["/etc/os-release", "/usr/lib/os-release"] {
        match host.read_to_string(path, caps::CONFIG) {
            Ok(text) => {
                return os_release::parse(&text).map_or_else(
                    || Observation::error(format!("{}: no ID line", host.path(path).display())),
                    Observation::Observed,
                )
            }
            Err(e) => last_error = Some(e.to_string()),
        }
    }
    Observation::error(last_error.unwrap_or_default())
}

/// The newest modification time among `paths` (missing ones skipped), with its age now.
pub(crate) fn newest_mtime(host: &Host, paths: &[String]) -> Option<IndexRefresh> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    paths
        .iter()
        .filter_map(|p| {
            let modified = host.metadata(p).ok()?.modified().ok()?;
            let secs = match modified.duration_since(UNIX_EPOCH) {
                Ok(d) => d.as_secs() as i64,
                Err(e) => -(e.duration().as_secs() as i64),
            };
            Some((secs, p))
        })
        .max()
        .map(|(secs, p)| IndexRefresh {
            refreshed_at: secs,
            age_seconds: (now - secs).max(0),
            source: p.clone(),
        })
}
