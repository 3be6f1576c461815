//! From a volume's top block device down to physical storage: the chain of devices under it and
//! whether every path down passes through a decrypting mapping.
//!
//! Pure over the block-device table from `block_devices` and the mounted volumes' devices (a
//! loop device is followed to the filesystem holding its backing file, so an image file on an
//! encrypted filesystem counts as encrypted at rest).

use std::collections::BTreeMap;

use evidence_protocol::facts::disk_encryption::{
    Backing, BlockDevice, ChainLink, DeviceKind, Protection,
};

use super::mounts::containing_mount;

/// Deeper stacks than this are treated as a cycle.
const MAX_DEPTH: u32 = 16;

/// Resolves chains over one snapshot of the block devices and mounts.
pub struct Resolver<'a> {
    devices: &'a BTreeMap<String, BlockDevice>,
    /// Mount point -> top device of each mount (`None` for mounts not on a block device).
    mount_devices: &'a BTreeMap<String, Option<String>>,
}

impl<'a> Resolver<'a> {
    pub fn new(
        devices: &'a BTreeMap<String, BlockDevice>,
        mount_devices: &'a BTreeMap<String, Option<String>>,
    ) -> Self {
        Self {
            devices,
            mount_devices,
        }
    }

    /// The chain and protection of the volume whose top device is `top`.
    pub fn backing(&self, top: &str) -> Backing {
        let mut chain = Vec::new();
        let mut stack = Vec::new();
        let protection = self.visit(top, 0, &mut chain, &mut stack);
        Backing {
            device: Some(top.to_string()),
            chain,
            protection,
        }
    }

    fn visit(
        &self,
        name: &str,
        depth: u32,
        chain: &mut Vec<ChainLink>,
        stack: &mut Vec<String>,
    ) -> Protection {
        if depth > MAX_DEPTH || stack.iter().any(|s| s == name) {
            return Protection::Unknown {
                reason: format!("device stack loops or is deeper than {MAX_DEPTH} at {name}"),
            };
        }
        let Some(device) = self.devices.get(name) else {
            return Protection::Unknown {
                reason: format!("device {name} is not in sysfs"),
            };
        };
        chain.push(ChainLink {
            depth,
            name: name.to_string(),
            kind: device.kind,
            crypt: device.crypt.clone(),
        });
        stack.push(name.to_string());
        let below: Vec<Protection> = self
            .lower_of(device)
            .iter()
            .map(|lower| self.visit(lower, depth + 1, chain, stack))
            .collect();
        stack.pop();
        if device.crypt.is_some() {
            return Protection::Encrypted {
                by: vec![name.to_string()],
            };
        }
        if below.is_empty() {
            return if device.kind == DeviceKind::Zram {
                Protection::RamBacked
            } else {
                Protection::Unencrypted
            };
        }
        combine(below)
    }

    /// Devices directly under `device`; for a loop device, the volume holding its backing file
    /// (none when that file is on a mount without a block device, e.g. tmpfs).
    fn lower_of(&self, device: &BlockDevice) -> Vec<String> {
        let mut lower = device.lower.clone();
        if let Some(file) = &device.loop_backing_file {
            let file = file.strip_suffix(" (deleted)").unwrap_or(file);
            let mount = containing_mount(file, self.mount_devices.keys().map(String::as_str));
            if let Some(Some(dev)) = mount.and_then(|mp| self.mount_devices.get(mp)) {
                lower.push(dev.clone());
            }
        }
        lower
    }
}

/// One verdict for several paths down: any unencrypted path wins, then any unknown one.
fn combine(paths: Vec<Protection>) -> Protection {
    let mut by = Vec::new();
    let mut unknown = None;
    let mut all_ram = true;
    for path in paths {
        match path {
            Protection::Unencrypted => return Protection::Unencrypted,
            Protection::Unknown { reason } => unknown = unknown.or(Some(reason)),
            Protection::Encrypted { by: layers } => {
                all_ram = false;
                by.extend(layers);
            }
            Protection::RamBacked => {}
        }
    }
    if let Some(reason) = unknown {
        return Protection::Unknown { reason };
    }
    if all_ram {
        return Protection::RamBacked;
    }
    by.sort();
    by.dedup();
    Protection::Encrypted { by }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evidence_protocol::facts::disk_encryption::{CryptMapping, HeaderProbe};

    fn dev(name: &str, kind: DeviceKind, lower: &[&str], crypt: bool) -> (String, BlockDevice) {
        let device = BlockDevice {
            name: name.into(),
            major_minor: "0:0".into(),
            kind,
            size_bytes: 1,
            lower: lower.iter().map(|s| s.to_string()).collect(),
            holders: vec![],
            dm_name: None,
            dm_uuid: None,
            crypt: crypt.then(|| CryptMapping {
                kind: "luks2".into(),
                evidence: "dm_uuid".into(),
            }),
            loop_backing_file: None,
            header: HeaderProbe::NoLuksHeader,
        };
        (name.to_string(), device)
    }

    fn table() -> BTreeMap<String, BlockDevice> {
        use DeviceKind::*;
        BTreeMap::from([
            dev("sda", Disk, &[], false),
            dev("sda1", Partition, &["sda"], false),
            dev("sda2", Partition, &["sda"], false),
            dev("sdb", Disk, &[], false),
            dev("dm-0", DeviceMapper, &["sda2"], true),
            dev("dm-1", DeviceMapper, &["dm-0"], false),
            dev("dm-2", DeviceMapper, &["dm-0", "sdb"], false),
            dev("zram0", Zram, &[], false),
            dev("dm-9", DeviceMapper, &["gone"], false),
        ])
    }

    #[test]
    fn lvm_on_luks_is_encrypted_by_the_crypt_mapping() {
        let devices = table();
        let mounts = BTreeMap::new();
        let backing = Resolver::new(&devices, &mounts).backing("dm-1");
        assert_eq!(
            backing.protection,
            Protection::Encrypted {
                by: vec!["dm-0".into()]
            }
        );
        let chain: Vec<_> = backing
            .chain
            .iter()
            .map(|l| (l.depth, l.name.as_str()))
            .collect();
        assert_eq!(
            chain,
            vec![(0, "dm-1"), (1, "dm-0"), (2, "sda2"), (3, "sda")]
        );
        assert!(backing.chain[1].crypt.is_some());
    }

    #[test]
    fn a_volume_spanning_an_unencrypted_disk_is_unencrypted() {
        let devices = table();
        let mounts = BTreeMap::new();
        let resolver = Resolver::new(&devices, &mounts);
        assert_eq!(resolver.backing("dm-2").protection, Protection::Unencrypted);
        assert_eq!(resolver.backing("sda1").protection, Protection::Unencrypted);
    }

    #[test]
    fn zram_is_ram_and_missing_devices_are_unknown() {
        let devices = table();
        let mounts = BTreeMap::new();
        let resolver = Resolver::new(&devices, &mounts);
        assert_eq!(resolver.backing("zram0").protection, Protection::RamBacked);
        assert!(matches!(
            resolver.backing("dm-9").protection,
            Protection::Unknown { .. }
        ));
        assert!(matches!(
            resolver.backing("nope").protection,
            Protection::Unknown { .. }
        ));
    }

    #[test]
    fn loop_devices_follow_their_backing_file_to_its_volume() {
        let mut devices = table();
        let (name, mut lo) = dev("loop0", DeviceKind::Loop, &[], false);
        lo.loop_backing_file = Some("/home/u/disk.img (deleted)".into());
        devices.insert(name, lo);
        let on_encrypted = BTreeMap::from([
            ("/".into(), Some("sda1".into())),
            ("/home".into(), Some("dm-1".into())),
        ]);
        let backing = Resolver::new(&devices, &on_encrypted).backing("loop0");
        assert_eq!(
            backing.protection,
            Protection::Encrypted {
                by: vec!["dm-0".into()]
            }
        );
        let on_plain = BTreeMap::from([("/".into(), Some("sda1".into()))]);
        let backing = Resolver::new(&devices, &on_plain).backing("loop0");
        assert_eq!(backing.protection, Protection::Unencrypted);
        assert_eq!(backing.chain[1].name, "sda1");
        // On a mount without a block device (tmpfs, nfs) the chain stops at the loop device.
        let on_tmpfs = BTreeMap::from([("/".into(), Some("sda1".into())), ("/home".into(), None)]);
        let backing = Resolver::new(&devices, &on_tmpfs).backing("loop0");
        assert_eq!(backing.protection, Protection::Unencrypted);
        assert_eq!(backing.chain.len(), 1);
    }

    #[test]
    fn cycles_are_unknown_not_a_hang() {
        use DeviceKind::*;
        let devices = BTreeMap::from([
            dev("dm-0", DeviceMapper, &["dm-1"], false),
            dev("dm-1", DeviceMapper, &["dm-0"], false),
        ]);
        let mounts = BTreeMap::new();
        let backing = Resolver::new(&devices, &mounts).backing("dm-0");
        assert!(matches!(backing.protection, Protection::Unknown { .. }));
    }
}
