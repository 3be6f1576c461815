//! The patch level of a dpkg/apt tree: reads dpkg's status file, apt's lists, preferences and
//! configuration through the [`Host`] seam and computes what `apt list --upgradable` reports
//! (installed packages whose policy candidate is newer), natively and without apt's cache.

use std::collections::{BTreeMap, HashMap, HashSet};

use evidence_protocol::facts::patch_level::{
    AutomaticUpdates, IndexRefresh, KernelFacts, PendingUpdate, PendingUpdates, RebootFacts,
};
use evidence_protocol::Observation;

use super::apt_conf::{self, AptConf};
use super::apt_indexes::{self, Compression};
use super::apt_policy::{self, Offer, PackageFile, Policy};
use super::apt_release::{self, Release};
use super::apt_sources::{self, Source};
use super::dpkg_status::DpkgStatus;
use super::{deb_version, kernel, newest_mtime, unattended};
use crate::{caps, Host};

pub const STATUS: &str = "/var/lib/dpkg/status";
pub const LISTS: &str = "/var/lib/apt/lists";

/// apt's configuration: `/etc/apt/apt.conf.d/*` then `/etc/apt/apt.conf`.
pub fn read_apt_conf(host: &Host) -> AptConf {
    let mut conf = AptConf::new();
    let mut paths: Vec<String> = host
        .read_dir("/etc/apt/apt.conf.d")
        .unwrap_or_default()
        .into_iter()
        .filter(|n| apt_conf::apt_reads_part(n, "conf"))
        .map(|n| format!("/etc/apt/apt.conf.d/{n}"))
        .collect();
    paths.push("/etc/apt/apt.conf".to_string());
    for path in paths {
        if let Ok(bytes) = host.read(&path, caps::CONFIG) {
            apt_conf::parse_into(&String::from_utf8_lossy(&bytes), &mut conf);
        }
    }
    conf
}

/// apt's pins, in the order apt reads them.
fn read_pins(host: &Host) -> Result<Vec<apt_policy::Pin>, String> {
    let mut paths = vec!["/etc/apt/preferences".to_string()];
    match host.read_dir("/etc/apt/preferences.d") {
        Ok(names) => paths.extend(
            names
                .into_iter()
                .filter(|n| apt_conf::apt_reads_part(n, "pref"))
                .map(|n| format!("/etc/apt/preferences.d/{n}")),
        ),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.to_string()),
    }
    let mut pins = Vec::new();
    for path in paths {
        match host.read(&path, caps::CONFIG) {
            Ok(bytes) => pins.extend(
                apt_policy::parse_preferences(&bytes)
                    .map_err(|e| format!("{}: {e}", host.path(&path).display()))?,
            ),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(pins)
}

/// apt's `deb` sources: `/etc/apt/sources.list` and `sources.list.d/*.list` / `*.sources`.
fn read_sources(host: &Host) -> Result<Vec<Source>, String> {
    let mut files = vec!["/etc/apt/sources.list".to_string()];
    match host.read_dir("/etc/apt/sources.list.d") {
        Ok(names) => files.extend(
            names
                .into_iter()
                .filter(|n| {
                    n.contains('.')
                        && (apt_conf::apt_reads_part(n, "list")
                            || apt_conf::apt_reads_part(n, "sources"))
                })
                .map(|n| format!("/etc/apt/sources.list.d/{n}")),
        ),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.to_string()),
    }
    let mut sources = Vec::new();
    for path in files {
        let bytes = match host.read(&path, caps::CONFIG) {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.to_string()),
        };
        if path.ends_with(".sources") {
            sources.extend(
                apt_sources::parse_deb822(&bytes)
                    .map_err(|e| format!("{}: {e}", host.path(&path).display()))?,
            );
        } else {
            sources.extend(apt_sources::parse_one_line(&String::from_utf8_lossy(
                &bytes,
            )));
        }
    }
    Ok(sources)
}

/// Installed packages against apt's indexes: the pending updates.
pub fn pending(host: &Host, status: &DpkgStatus, conf: &AptConf) -> Result<PendingUpdates, String> {
    let listing = match host.read_dir(LISTS) {
        Ok(names) => names,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e.to_string()),
    };
    let sources = read_sources(host)?;
    if sources.is_empty() {
        return Err("no apt source is configured (sources.list, sources.list.d): pending updates are unknown".into());
    }
    let prefixes: Vec<String> = sources.iter().flat_map(Source::list_prefixes).collect();
    // apt reads only the lists of configured sources; leftovers of removed ones do not count.
    let indexes: Vec<_> = apt_indexes::index_files(&listing)
        .into_iter()
        .filter(|i| prefixes.iter().any(|p| i.file_name.starts_with(p.as_str())))
        .collect();
    if indexes.is_empty() {
        return Err(format!(
            "no package index of the configured apt sources in {}: run apt-get update; pending updates are unknown",
            host.path(LISTS).display()
        ));
    }
    let pins = read_pins(host)?;
    let names: HashSet<&str> = status.installed.iter().map(|p| p.name.as_str()).collect();
    let installed: HashSet<(&str, &str)> = status
        .installed
        .iter()
        .map(|p| (p.name.as_str(), p.arch.as_str()))
        .collect();
    let mut files = vec![PackageFile {
        is_status: true,
        ..PackageFile::default()
    }];
    let mut releases: BTreeMap<String, Release> = BTreeMap::new();
    let mut offers: HashMap<(String, String), Vec<Offer>> = HashMap::new();
    let wanted = |name: &str| names.contains(name);
    for index in &indexes {
        let path = format!("{LISTS}/{}", index.file_name);
        let full = host.path(&path);
        let context = |e: &dyn std::fmt::Display| format!("{}: {e}", full.display());
        let release = match &index.release_file {
            Some(name) => Some(match releases.get(name) {
                Some(r) => r.clone(),
                None => {
                    let rpath = format!("{LISTS}/{name}");
                    let bytes = host
                        .read(&rpath, caps::APT_RELEASE)
                        .map_err(|e| e.to_string())?;
                    let r = apt_release::parse(&bytes)
                        .map_err(|e| format!("{}: {e}", host.path(&rpath).display()))?;
                    releases.insert(name.clone(), r.clone());
                    r
                }
            }),
            None => None,
        };
        let compression = Compression::of(&index.file_name).map_err(|e| context(&e))?;
        let file = host
            .open_capped(&path, caps::APT_INDEX)
            .map_err(|e| e.to_string())?;
        let (entries, _stanzas) = apt_indexes::scan(file, compression, &wanted, caps::APT_INDEX)
            .map_err(|e| context(&e))?;
        let arch = index
            .file_name
            .split("_binary-")
            .nth(1)
            .and_then(|r| r.split('_').next())
            .unwrap_or("")
            .to_string();
        let id = files.len();
        files.push(PackageFile {
            release,
            component: index.component.clone(),
            site: index.site.clone(),
            arch,
            is_status: false,
        });
        for entry in entries {
            let arch = if entry.arch == "all" {
                status.native_arch.clone()
            } else {
                entry.arch
            };
            if !installed.contains(&(entry.name.as_str(), arch.as_str())) {
                continue;
            }
            add_offer(
                offers.entry((entry.name, arch)).or_default(),
                entry.version,
                id,
            );
        }
    }
    let policy = Policy::new(
        &files,
        &pins,
        conf.get("apt::default-release").map(String::as_str),
    );
    let mut pending = Vec::new();
    for package in &status.installed {
        let list = offers
            .entry((package.name.clone(), package.arch.clone()))
            .or_default();
        add_offer(list, package.version.clone(), 0);
        let Some(candidate) = apt_policy::candidate(
            &policy,
            &package.name,
            &package.arch,
            &package.version,
            list,
            &files,
        ) else {
            continue;
        };
        if deb_version::compare(&candidate.version, &package.version) != std::cmp::Ordering::Greater
        {
            continue;
        }
        let mut archives: Vec<String> = candidate
            .files
            .iter()
            .filter_map(|&f| files[f].release.as_ref())
            .map(|r| {
                r.suite
                    .clone()
                    .or_else(|| r.codename.clone())
                    .unwrap_or_else(|| "unknown".into())
            })
            .collect();
        archives.sort();
        archives.dedup();
        let security = candidate
            .files
            .iter()
            .filter_map(|&f| files[f].release.as_ref())
            .any(|r| {
                [&r.suite, &r.codename]
                    .iter()
                    .any(|v| v.as_deref().is_some_and(|v| v.contains("-security")))
            });
        pending.push(PendingUpdate {
            name: package.name.clone(),
            arch: package.arch.clone(),
            installed_version: package.version.clone(),
            candidate_version: candidate.version.clone(),
            archives,
            security,
        });
    }
    pending.sort();
    Ok(PendingUpdates {
        installed_count: status.installed.len() as u64,
        sources: indexes.iter().map(|i| i.file_name.clone()).collect(),
        pending,
    })
}

/// Adds `file` to the offer of `version`, creating it when new.
fn add_offer(list: &mut Vec<Offer>, version: String, file: usize) {
    match list.iter_mut().find(|o| o.version == version) {
        Some(offer) => offer.files.push(file),
        None => list.push(Offer {
            version,
            files: vec![file],
        }),
    }
}

/// The running kernel against the `linux-image-*` packages (live hosts only).
pub fn kernel(host: &Host, status: &DpkgStatus) -> Observation<KernelFacts> {
    if let Some(reason) = host.not_live_reason() {
        return Observation::not_applicable(reason);
    }
    let running = match host.read_to_string("/proc/sys/kernel/osrelease", caps::KERNEL_TEXT) {
        Ok(text) => text.trim().to_string(),
        Err(e) => return Observation::error(format!("running kernel: {e}")),
    };
    let installed = status
        .installed
        .iter()
        .filter_map(|p| {
            kernel::debian_kernel_release(&p.name).map(|release| kernel::InstalledKernel {
                release: release.to_string(),
                package_version: p.version.clone(),
            })
        })
        .collect();
    match kernel::compare(&running, installed, deb_version::compare) {
        Some(facts) => Observation::Observed(facts),
        None => Observation::not_applicable(format!(
            "no linux-image-* package is installed: the running kernel {running} is not managed by dpkg (a container, or a kernel supplied from outside)"
        )),
    }
}

/// `/run/reboot-required` (live hosts only).
pub fn reboot(host: &Host) -> Observation<RebootFacts> {
    if let Some(reason) = host.not_live_reason() {
        return Observation::not_applicable(reason);
    }
    match host.read("/run/reboot-required", caps::CONFIG) {
        Ok(_) => match host.read_to_string("/run/reboot-required.pkgs", caps::CONFIG) {
            Ok(text) => Observation::Observed(kernel::parse_reboot_packages(&text)),
            Err(e) if e.is_not_found() => Observation::Observed(RebootFacts {
                required: true,
                packages: vec![],
            }),
            Err(e) => Observation::error(e.to_string()),
        },
        Err(e) if e.is_not_found() => Observation::Observed(RebootFacts::default()),
        Err(e) => Observation::error(e.to_string()),
    }
}

/// The last `apt-get update`: the newest of `lists/partial`, the lists' Release files and
/// APT::Periodic's stamp.
pub fn index_refresh(host: &Host) -> Observation<IndexRefresh> {
    let mut paths: Vec<String> = host
        .read_dir(LISTS)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.ends_with("_InRelease") || n.ends_with("_Release"))
        .map(|n| format!("{LISTS}/{n}"))
        .collect();
    // apt sets a downloaded file's mtime to the mirror's Last-Modified, and leaves it alone on
    // an unchanged mirror; `partial/` is touched by every `apt-get update`.
    paths.push(format!("{LISTS}/partial"));
    paths.push("/var/lib/apt/periodic/update-success-stamp".to_string());
    match newest_mtime(host, &paths) {
        Some(refresh) => Observation::Observed(refresh),
        None => Observation::error(format!(
            "no Release file in {} and no update-success-stamp: the package indexes were never refreshed",
            host.path(LISTS).display()
        )),
    }
}

/// unattended-upgrades.
pub fn automatic_updates(status: &DpkgStatus, conf: &AptConf) -> AutomaticUpdates {
    let installed = status
        .installed
        .iter()
        .any(|p| p.name == "unattended-upgrades");
    unattended::apt(installed, conf)
}
