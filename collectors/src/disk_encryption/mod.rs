//! The `disk_encryption` collector: for every mounted local filesystem and every active swap area,
//! the chain of block devices under it and whether it is encrypted at rest; every block device
//! with its LUKS header (so locked containers show); and `/etc/crypttab` + `/etc/fstab`.
//!
//! Sources: `/proc/self/mountinfo` and `/proc/swaps` ([`mounts`]), sysfs ([`block_devices`]),
//! the devices' first bytes ([`luks_header`]), `/etc/crypttab` and `/etc/fstab` ([`crypttab`]);
//! [`chain`] puts them together. With `--root` other than `/`, the live kernel state is not
//! applicable (it belongs to the machine running the agent) while the tree's files are read.
//!
//! Decisions: skipped mounts (see [`mounts`]) are pseudo filesystems, tmpfs (RAM), network shares
//! and overlay (its writable layer is on another mounted filesystem, which is listed itself). A
//! loop device is followed to the volume holding its backing file; zram without a writeback
//! device is RAM. A device-mapper device decrypts when its uuid has a `CRYPT-` encryption prefix
//! (or, without a uuid, when crypttab names it); a LUKS header on a device says what it *could*
//! decrypt, not that it is in use, so headers are reported but never make a volume encrypted.
//! Only the primary LUKS2 header is read: a corrupt one is reported even if the secondary copy
//! would repair it.

pub mod block_devices;
pub mod chain;
pub mod crypttab;
pub mod luks_header;
pub mod mounts;

use std::collections::{BTreeMap, BTreeSet};

use evidence_protocol::facts::disk_encryption::{
    Backing, BlockDevice, CrypttabEntry, DiskEncryptionFacts, MountedVolume, Mounts, Protection,
    SkipCategory, SkippedMount, SwapArea,
};
use evidence_protocol::facts::DiskEncryptionFacts as Facts;
use evidence_protocol::{Observation, Platform};

use crate::{caps, Host, Source};
use mounts::{MountEntry, SwapEntry};

pub const PLATFORMS: &[Platform] = &[Platform::Linux];

/// What the collector reads: the tables, and the live kernel's mounts, swaps, block devices
/// and the devices' first bytes (their LUKS headers).
pub const READS: &[Source] = &[
    Source::Watched("/etc/crypttab"),
    Source::Watched("/etc/fstab"),
    Source::Polled("/proc/self/mountinfo"),
    Source::Polled("/proc/swaps"),
    Source::Polled("/sys/class/block"),
    Source::Polled("/dev"),
];

/// Observes the host's disk encryption.
pub fn collect(host: &Host) -> Observation<DiskEncryptionFacts> {
    Observation::Observed(match host.not_live_reason() {
        None => collect_as_live(host),
        Some(reason) => {
            let (crypttab, fstab) = read_config(host);
            Facts {
                mounts: Observation::not_applicable(reason.clone()),
                swaps: Observation::not_applicable(reason.clone()),
                block_devices: Observation::not_applicable(reason),
                crypttab,
                fstab,
            }
        }
    })
}

/// Reads everything, treating `/proc` and `/sys` under the host root as the running kernel's.
/// [`collect`] calls it for `/`; tests call it on recorded trees.
pub fn collect_as_live(host: &Host) -> DiskEncryptionFacts {
    let (crypttab, fstab) = read_config(host);
    let names: BTreeSet<String> = crypttab
        .observed()
        .map(|entries| entries.iter().map(|e| e.name.clone()).collect())
        .unwrap_or_default();
    let devices = block_devices::read_all(host, &names).map_err(|e| e.to_string());
    let mountinfo = host
        .read_to_string("/proc/self/mountinfo", caps::KERNEL_TEXT)
        .map_err(|e| e.to_string())
        .and_then(|text| mounts::parse_mountinfo(&text).map_err(|e| e.to_string()));
    let swaps = host
        .read_to_string("/proc/swaps", caps::KERNEL_TEXT)
        .map_err(|e| e.to_string())
        .and_then(|text| mounts::parse_swaps(&text).map_err(|e| e.to_string()));

    let empty = BTreeMap::new();
    let table = devices.as_ref().unwrap_or(&empty);
    let mounts = mountinfo.map(|entries| classify_mounts(host, &entries, table));
    let mount_devices: BTreeMap<String, Option<String>> = mounts
        .as_ref()
        .map(|(volumes, skipped)| {
            let local = volumes
                .iter()
                .map(|(e, dev)| (e.mount_point.clone(), dev.clone()));
            let other = skipped.iter().map(|s| (s.mount_point.clone(), None));
            other.chain(local).collect()
        })
        .unwrap_or_default();
    let resolver = chain::Resolver::new(table, &mount_devices);
    let backing = |device: Option<&String>| match (&devices, device) {
        (Err(e), _) => unknown(format!("block devices unreadable: {e}")),
        (Ok(_), Some(dev)) => resolver.backing(dev),
        (Ok(_), None) => unknown("the mount source is not a known block device".into()),
    };
    let mounts = mounts.map(|(volumes, skipped)| {
        let mut volumes: Vec<MountedVolume> = volumes
            .into_iter()
            .map(|(entry, device)| MountedVolume {
                backing: backing(device.as_ref()),
                mount_point: entry.mount_point,
                fs_type: entry.fs_type,
                source: entry.source,
                major_minor: entry.major_minor,
            })
            .collect();
        volumes.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
        Mounts { volumes, skipped }
    });
    let swaps = swaps.map(|entries| {
        entries
            .into_iter()
            .map(|swap| swap_area(host, swap, table, &mounts, &backing))
            .collect()
    });
    Facts {
        mounts: mounts.into(),
        swaps: swaps.into(),
        block_devices: devices.map(|d| d.into_values().collect()).into(),
        crypttab,
        fstab,
    }
}

fn unknown(reason: String) -> Backing {
    Backing {
        device: None,
        chain: Vec::new(),
        protection: Protection::Unknown { reason },
    }
}

/// Splits mounts into local volumes (with their top device, when known) and skipped ones.
#[allow(clippy::type_complexity)]
fn classify_mounts(
    host: &Host,
    entries: &[MountEntry],
    devices: &BTreeMap<String, BlockDevice>,
) -> (Vec<(MountEntry, Option<String>)>, Vec<SkippedMount>) {
    let by_number: BTreeMap<&str, &str> = devices
        .values()
        .map(|d| (d.major_minor.as_str(), d.name.as_str()))
        .collect();
    let mut volumes = Vec::new();
    let mut skipped = Vec::new();
    for entry in entries {
        let device = if entry.major != 0 {
            Some(
                by_number
                    .get(entry.major_minor.as_str())
                    .map(|n| n.to_string()),
            )
        } else if let Some(category) = mounts::known_skip_category(&entry.fs_type) {
            skipped.push(skip(entry, category));
            None
        } else if let Some(dev) = device_for_path(host, &entry.source, devices) {
            // btrfs and the like: an anonymous device number, a real block device source.
            Some(Some(dev))
        } else {
            skipped.push(skip(entry, SkipCategory::NoBlockDevice));
            None
        };
        if let Some(device) = device {
            volumes.push((entry.clone(), device));
        }
    }
    skipped.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    (volumes, skipped)
}

fn skip(entry: &MountEntry, category: SkipCategory) -> SkippedMount {
    SkippedMount {
        mount_point: entry.mount_point.clone(),
        fs_type: entry.fs_type.clone(),
        source: entry.source.clone(),
        category,
    }
}

/// The kernel name of the block device at `/dev/...` `path`: `/dev/mapper/<dm name>`,
/// `/dev/<name>`, or whatever the node resolves to under the host root.
fn device_for_path(
    host: &Host,
    path: &str,
    devices: &BTreeMap<String, BlockDevice>,
) -> Option<String> {
    let rel = path.strip_prefix("/dev/")?;
    if let Some(dm) = rel.strip_prefix("mapper/") {
        if let Some(d) = devices.values().find(|d| d.dm_name.as_deref() == Some(dm)) {
            return Some(d.name.clone());
        }
    }
    let sysfs_name = rel.replace('/', "!");
    if devices.contains_key(&sysfs_name) {
        return Some(sysfs_name);
    }
    let resolved = host.canonical(path).ok()?;
    let name = resolved.rsplit('/').next()?.to_string();
    devices.contains_key(&name).then_some(name)
}

fn swap_area(
    host: &Host,
    swap: SwapEntry,
    devices: &BTreeMap<String, BlockDevice>,
    mounts: &Result<Mounts, String>,
    backing: &dyn Fn(Option<&String>) -> Backing,
) -> SwapArea {
    let (on_mount, backing) = if swap.kind == "file" {
        match mounts {
            Err(e) => (None, unknown(format!("mount table unreadable: {e}"))),
            Ok(m) => {
                let all = m.volumes.iter().map(|v| v.mount_point.as_str());
                let all = all.chain(m.skipped.iter().map(|s| s.mount_point.as_str()));
                let mp = mounts::containing_mount(&swap.path, all);
                let volume = mp.and_then(|mp| m.volumes.iter().find(|v| v.mount_point == mp));
                match (mp, volume) {
                    (_, Some(v)) => (Some(v.mount_point.clone()), v.backing.clone()),
                    (Some(mp), None) => (
                        Some(mp.to_string()),
                        unknown(format!(
                            "swap file on {mp}, which is not on a local block device"
                        )),
                    ),
                    (None, None) => (None, unknown("no mount holds this swap file".into())),
                }
            }
        }
    } else {
        (
            None,
            backing(device_for_path(host, &swap.path, devices).as_ref()),
        )
    };
    SwapArea {
        path: swap.path,
        kind: swap.kind,
        size_kib: swap.size_kib,
        on_mount,
        backing,
    }
}

/// `/etc/crypttab` and `/etc/fstab` of the tree; a missing file is an empty table.
fn read_config(
    host: &Host,
) -> (
    Observation<Vec<CrypttabEntry>>,
    Observation<Vec<evidence_protocol::facts::disk_encryption::FstabEntry>>,
) {
    let read = |path: &str| match host.read_to_string(path, caps::CONFIG) {
        Err(e) if e.is_not_found() => Ok(String::new()),
        other => other.map_err(|e| e.to_string()),
    };
    let crypttab =
        read("/etc/crypttab").and_then(|t| crypttab::parse_crypttab(&t).map_err(|e| e.to_string()));
    let fstab = read("/etc/fstab").and_then(|t| {
        let known = crypttab.as_deref().unwrap_or_default();
        crypttab::parse_fstab(&t, known).map_err(|e| e.to_string())
    });
    (crypttab.into(), fstab.into())
}

#[cfg(test)]
mod tests;
