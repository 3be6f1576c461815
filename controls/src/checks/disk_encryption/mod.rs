//! Checks over the `disk_encryption` collector's facts: the root volume, every other local data
//! volume, and swap are encrypted at rest.
//!
//! Facts come from `evidence_collectors::disk_encryption` (mount table, swaps, sysfs device
//! chains, LUKS headers); thresholds from the `[disk_encryption]` table of the policy file.
//! A volume whose chain could not be resolved is never counted as encrypted: it makes the check
//! `error`, unless an unencrypted volume already makes it fail. Evidence lists every volume
//! judged, with its device chain, and the offending ones.

use std::collections::BTreeMap;

use evidence_protocol::facts::disk_encryption::{
    Backing, BlockDevice, HeaderProbe, MountedVolume, Protection,
};
use evidence_protocol::facts::DiskEncryptionFacts;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Check, Evaluator};
use crate::{Outcome, Policy};

/// Thresholds for the `disk_encryption` checks; every field has a documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiskEncryptionPolicy {
    /// Mount points (exact) that `disk_encryption.data_volumes_encrypted` lets be unencrypted.
    /// Default `["/boot", "/boot/efi"]`: firmware and boot loader read them before any key is
    /// available (the EFI system partition cannot be encrypted), and they hold no user data.
    pub allowed_unencrypted_mount_points: Vec<String>,
    /// Filesystem types that are not data volumes. Default `["squashfs"]`: read-only images of
    /// distributed software (snap packages, live media).
    pub exempt_fs_types: Vec<String>,
}

impl Default for DiskEncryptionPolicy {
    fn default() -> Self {
        Self {
            allowed_unencrypted_mount_points: vec!["/boot".into(), "/boot/efi".into()],
            exempt_fs_types: vec!["squashfs".into()],
        }
    }
}

/// Where these checks' links to controls are (data, reviewed with its sources).
pub const MAPPINGS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/checks/disk_encryption.toml"
));

/// This collector's section of the policy.
pub type Settings = DiskEncryptionPolicy;

/// The `disk_encryption` checks.
pub const CHECKS: &[Check] = &[
    Check {
        id: "disk_encryption.root_volume_encrypted",
        title: "The root filesystem is encrypted at rest",
        evaluate: Evaluator::DiskEncryption(root_volume_encrypted),
    },
    Check {
        id: "disk_encryption.data_volumes_encrypted",
        title: "Every other local data volume is encrypted at rest",
        evaluate: Evaluator::DiskEncryption(data_volumes_encrypted),
    },
    Check {
        id: "disk_encryption.swap_encrypted",
        title: "Swap is encrypted or absent",
        evaluate: Evaluator::DiskEncryption(swap_encrypted),
    },
];

/// What the evidence shows of one backing: its top device, chain, verdict, and the LUKS headers
/// found on the devices of its chain (cipher, key size, hash, key slots and their PBKDF).
fn backing_evidence(backing: &Backing, devices: &[BlockDevice]) -> Value {
    let luks: Vec<Value> = backing
        .chain
        .iter()
        .filter_map(|link| {
            let device = devices.iter().find(|d| d.name == link.name)?;
            match &device.header {
                HeaderProbe::Luks(header) => Some(json!({ "device": link.name, "header": header })),
                HeaderProbe::Error { reason } => {
                    Some(json!({ "device": link.name, "error": reason }))
                }
                HeaderProbe::NoLuksHeader => None,
            }
        })
        .collect();
    json!({
        "device": backing.device,
        "chain": backing.chain,
        "protection": backing.protection,
        "luks_headers": luks,
    })
}

/// Pass/fail/error over judged items: any unencrypted one fails, else any unknown one errors.
fn verdict(judged: Vec<(Value, &Protection)>, what: &str, evidence_key: &str) -> Outcome {
    let offending: Vec<&Value> = judged
        .iter()
        .filter(|(_, p)| matches!(p, Protection::Unencrypted))
        .map(|(v, _)| v)
        .collect();
    let unknown: Vec<&Value> = judged
        .iter()
        .filter(|(_, p)| matches!(p, Protection::Unknown { .. }))
        .map(|(v, _)| v)
        .collect();
    let all: Vec<&Value> = judged.iter().map(|(v, _)| v).collect();
    let evidence = json!({ evidence_key: all, "offending": offending, "unresolved": unknown });
    if !offending.is_empty() {
        Outcome::fail(
            evidence,
            format!("{} {what} not encrypted", offending.len()),
        )
    } else if !unknown.is_empty() {
        Outcome {
            evidence,
            ..Outcome::error(format!(
                "{} {what} with an unresolved device chain",
                unknown.len()
            ))
        }
    } else {
        Outcome::pass(evidence)
    }
}

fn root_volume_encrypted(facts: &DiskEncryptionFacts, _policy: &Policy) -> Outcome {
    let mounts = need!(facts.mounts, "mount table");
    // The last "/" in mount order is the one mounted on top, the one in use.
    let Some(root) = mounts.volumes.iter().rfind(|v| v.mount_point == "/") else {
        return match mounts.skipped.iter().find(|s| s.mount_point == "/") {
            Some(s) => Outcome::not_applicable(format!(
                "the root filesystem is {} ({:?}), not stored on a local block device",
                s.fs_type, s.category
            )),
            None => Outcome::error("no root filesystem in the mount table"),
        };
    };
    let item = volume_evidence(&[root], block_devices(facts));
    verdict(
        vec![(item, &root.backing.protection)],
        "root volume",
        "root",
    )
}

/// The block devices, for header details in the evidence (none when they were not observed).
fn block_devices(facts: &DiskEncryptionFacts) -> &[BlockDevice] {
    facts
        .block_devices
        .observed()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn volume_evidence(volumes: &[&MountedVolume], devices: &[BlockDevice]) -> Value {
    let first = volumes[0];
    json!({
        "mount_points": volumes.iter().map(|v| v.mount_point.as_str()).collect::<Vec<_>>(),
        "fs_type": first.fs_type,
        "source": first.source,
        "backing": backing_evidence(&first.backing, devices),
    })
}

fn data_volumes_encrypted(facts: &DiskEncryptionFacts, policy: &Policy) -> Outcome {
    let policy = &policy.disk_encryption;
    let mounts = need!(facts.mounts, "mount table");
    let root_device = mounts
        .volumes
        .iter()
        .rfind(|v| v.mount_point == "/")
        .and_then(|v| v.backing.device.clone());
    let mut exempt = Vec::new();
    // One data volume per device, whatever number of places it is mounted on.
    let mut by_device: BTreeMap<String, Vec<&MountedVolume>> = BTreeMap::new();
    for volume in &mounts.volumes {
        if volume.mount_point == "/"
            || volume.backing.device.is_some() && volume.backing.device == root_device
        {
            continue;
        }
        if policy
            .allowed_unencrypted_mount_points
            .contains(&volume.mount_point)
            || policy.exempt_fs_types.contains(&volume.fs_type)
        {
            exempt.push(volume.mount_point.as_str());
            continue;
        }
        let key = volume
            .backing
            .device
            .clone()
            .unwrap_or_else(|| volume.mount_point.clone());
        by_device.entry(key).or_default().push(volume);
    }
    let judged = by_device
        .values()
        .map(|vols| {
            (
                volume_evidence(vols, block_devices(facts)),
                &vols[0].backing.protection,
            )
        })
        .collect();
    let mut outcome = verdict(judged, "data volume(s)", "volumes");
    outcome.evidence["exempt_by_policy"] = json!(exempt);
    outcome
}

fn swap_encrypted(facts: &DiskEncryptionFacts, _policy: &Policy) -> Outcome {
    let swaps = need!(facts.swaps, "/proc/swaps");
    let judged = swaps
        .iter()
        .map(|s| {
            let item = json!({
                "path": s.path,
                "kind": s.kind,
                "size_kib": s.size_kib,
                "on_mount": s.on_mount,
                "backing": backing_evidence(&s.backing, block_devices(facts)),
            });
            (item, &s.backing.protection)
        })
        .collect();
    verdict(judged, "swap area(s)", "swaps")
}

#[cfg(test)]
mod tests;
