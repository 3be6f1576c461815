//! Every block device the kernel knows, read from sysfs (`/sys/class/block/<name>/...`), with
//! what is stacked under each one and whether it is a decrypting device-mapper mapping.
//!
//! Per device: `dev` (major:minor), `size` (512-byte sectors), `slaves/` and `holders/`,
//! `partition` (its disk is the `/sys/class/block/<disk>/<name>` parent), `dm/name` + `dm/uuid`
//! (cryptsetup's `CRYPT-LUKS2-...` prefixes), `loop/backing_file`, zram `backing_dev`; and the
//! LUKS header probed from the start of `/dev/<name>`. All reads go through the host root, so
//! tests point this at a recorded sysfs tree.

use std::collections::{BTreeMap, BTreeSet};

use evidence_protocol::facts::disk_encryption::{
    BlockDevice, CryptMapping, DeviceKind, HeaderProbe,
};

use super::luks_header;
use crate::{caps, Host, ReadError};

const SYS_BLOCK: &str = "/sys/class/block";

/// The device-mapper uuid prefixes cryptsetup gives mappings that decrypt, and their kind.
/// Others (`CRYPT-VERITY-`, `CRYPT-INTEGRITY-`, `CRYPT-SUBDEV-`, `LVM-`, `mpath-`) do not.
const CRYPT_UUID_PREFIXES: &[(&str, &str)] = &[
    ("CRYPT-LUKS1-", "luks1"),
    ("CRYPT-LUKS2-", "luks2"),
    ("CRYPT-PLAIN-", "plain"),
    ("CRYPT-LOOPAES-", "loopaes"),
    ("CRYPT-TCRYPT-", "tcrypt"),
    ("CRYPT-BITLK-", "bitlk"),
    ("CRYPT-FVAULT2-", "fvault2"),
];

/// The decrypting kind of a device-mapper uuid, if it is one.
pub fn crypt_kind_from_dm_uuid(uuid: &str) -> Option<&'static str> {
    CRYPT_UUID_PREFIXES
        .iter()
        .find(|(prefix, _)| uuid.starts_with(prefix))
        .map(|(_, kind)| *kind)
}

/// Reads every block device under the host root, keyed by kernel name. `crypttab_names` are
/// the mapping names `/etc/crypttab` declares: a device-mapper device of that name without a
/// uuid counts as decrypting.
pub fn read_all(
    host: &Host,
    crypttab_names: &BTreeSet<String>,
) -> Result<BTreeMap<String, BlockDevice>, ReadError> {
    let names = host.read_dir(SYS_BLOCK)?;
    let mut devices = BTreeMap::new();
    for name in &names {
        let device = read_one(host, name, &names, crypttab_names)?;
        devices.insert(name.clone(), device);
    }
    Ok(devices)
}

fn read_one(
    host: &Host,
    name: &str,
    all: &[String],
    crypttab_names: &BTreeSet<String>,
) -> Result<BlockDevice, ReadError> {
    let dir = format!("{SYS_BLOCK}/{name}");
    let exists = |rel: &str| host.exists(&format!("{dir}/{rel}"));
    let major_minor = host
        .read_to_string(&format!("{dir}/dev"), caps::KERNEL_TEXT)?
        .trim()
        .to_string();
    let size_text = host.read_to_string(&format!("{dir}/size"), caps::KERNEL_TEXT)?;
    let sectors: u64 = size_text.trim().parse().map_err(|_| ReadError::Io {
        path: host.path(&format!("{dir}/size")).display().to_string(),
        message: format!("not a sector count: {:?}", size_text.trim()),
    })?;
    let kind = if exists("dm") {
        DeviceKind::DeviceMapper
    } else if exists("loop") || is_loop_name(name) {
        // `loop/` exists only while a file is attached; an idle loopN is still a loop device.
        DeviceKind::Loop
    } else if exists("md") {
        DeviceKind::Md
    } else if name.starts_with("zram") {
        DeviceKind::Zram
    } else if exists("partition") {
        DeviceKind::Partition
    } else {
        DeviceKind::Disk
    };
    let mut lower = optional_dir(host, &format!("{dir}/slaves"))?;
    if kind == DeviceKind::Partition {
        // A partition's disk is the sysfs directory that holds it.
        lower.extend(
            all.iter()
                .filter(|disk| host.is_dir(&format!("{SYS_BLOCK}/{disk}/{name}")))
                .cloned(),
        );
    }
    if kind == DeviceKind::Zram {
        if let Some(backing) = optional_text(host, &format!("{dir}/backing_dev"))? {
            if let Some(dev) = backing.strip_prefix("/dev/") {
                lower.push(dev.replace('/', "!"));
            }
        }
    }
    let holders = optional_dir(host, &format!("{dir}/holders"))?;
    let dm_name = optional_text(host, &format!("{dir}/dm/name"))?;
    let dm_uuid = optional_text(host, &format!("{dir}/dm/uuid"))?.filter(|u| !u.is_empty());
    let crypt = match (&dm_uuid, &dm_name) {
        (Some(uuid), _) => crypt_kind_from_dm_uuid(uuid).map(|kind| CryptMapping {
            kind: kind.to_string(),
            evidence: "dm_uuid".to_string(),
        }),
        (None, Some(dm)) if crypttab_names.contains(dm) => Some(CryptMapping {
            kind: "crypttab".to_string(),
            evidence: "crypttab".to_string(),
        }),
        _ => None,
    };
    let loop_backing_file = optional_text(host, &format!("{dir}/loop/backing_file"))?;
    let header = if sectors == 0 {
        HeaderProbe::NoLuksHeader
    } else {
        // sysfs spells `/` in device names as `!` (cciss!c0d0 is /dev/cciss/c0d0).
        luks_header::read_device(host, &format!("/dev/{}", name.replace('!', "/")))
    };
    Ok(BlockDevice {
        name: name.to_string(),
        major_minor,
        kind,
        size_bytes: sectors.saturating_mul(512),
        lower,
        holders,
        dm_name,
        dm_uuid,
        crypt,
        loop_backing_file,
        header,
    })
}

fn is_loop_name(name: &str) -> bool {
    name.strip_prefix("loop")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A directory's entries, or none when it does not exist.
fn optional_dir(host: &Host, path: &str) -> Result<Vec<String>, ReadError> {
    match host.read_dir(path) {
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        other => other,
    }
}

/// A one-line sysfs attribute, trimmed, or `None` when it does not exist or reads `none`.
fn optional_text(host: &Host, path: &str) -> Result<Option<String>, ReadError> {
    match host.read_to_string(path, caps::KERNEL_TEXT) {
        Ok(text) => {
            let text = text.trim();
            Ok((!text.is_empty() && text != "none").then(|| text.to_string()))
        }
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn fixture(name: &str) -> Host {
        let root = format!(
            "{}/tests/data/disk_encryption/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        Host::new(root, Arc::new(crate::RecordedRunner::new()))
    }

    #[test]
    fn crypt_uuid_prefixes_name_the_kind_and_others_are_not_crypt() {
        let uuid = "CRYPT-LUKS2-3ab5dda2adf143198849c8f1b893528a-vda3_crypt";
        assert_eq!(crypt_kind_from_dm_uuid(uuid), Some("luks2"));
        assert_eq!(crypt_kind_from_dm_uuid("CRYPT-PLAIN-swap"), Some("plain"));
        assert_eq!(crypt_kind_from_dm_uuid("CRYPT-VERITY-abc-root"), None);
        assert_eq!(crypt_kind_from_dm_uuid("LVM-abcdef"), None);
    }

    #[test]
    fn this_vm_lists_disk_loops_and_zram_with_loop_backing_files() {
        let devices = read_all(&fixture("this_vm"), &BTreeSet::new()).unwrap();
        let vda = &devices["vda"];
        assert_eq!(
            (vda.kind, vda.major_minor.as_str()),
            (DeviceKind::Disk, "254:0")
        );
        assert!(vda.size_bytes > 0);
        // The recorded tree has no /dev/vda (this machine refuses to open it): an error entry.
        assert!(matches!(vda.header, HeaderProbe::Error { .. }));
        assert_eq!(devices["zram0"].kind, DeviceKind::Zram);
        let loop0 = &devices["loop0"];
        assert_eq!(loop0.kind, DeviceKind::Loop);
        assert_eq!(
            loop0.loop_backing_file.as_deref(),
            Some("/tmp/disktry/plain")
        );
        assert_eq!(loop0.header, HeaderProbe::NoLuksHeader);
        let HeaderProbe::Luks(header) = &devices["loop1"].header else {
            panic!("loop1 holds a LUKS2 header: {:?}", devices["loop1"].header);
        };
        assert_eq!(header.version, 2);
        assert!(
            devices["loop1"].holders.is_empty(),
            "a locked container has no holder"
        );
        assert_eq!(
            devices["loop5"].header,
            HeaderProbe::NoLuksHeader,
            "empty loop"
        );
    }

    #[test]
    fn luks_lvm_tree_resolves_dm_crypt_lvm_and_partitions() {
        let names = BTreeSet::from(["swap_plain".to_string()]);
        let devices = read_all(&fixture("luks_lvm"), &names).unwrap();
        let crypt = &devices["dm-0"];
        assert_eq!(crypt.kind, DeviceKind::DeviceMapper);
        assert_eq!(crypt.crypt.as_ref().unwrap().kind, "luks2");
        assert_eq!(crypt.lower, vec!["vda3"]);
        assert_eq!(crypt.holders, vec!["dm-1", "dm-2"]);
        assert_eq!(devices["dm-1"].crypt, None, "LVM is not encryption");
        assert_eq!(devices["vda3"].kind, DeviceKind::Partition);
        assert_eq!(devices["vda3"].lower, vec!["vda"]);
        let by_crypttab = devices["dm-3"].crypt.as_ref().unwrap();
        assert_eq!(by_crypttab.evidence, "crypttab");
    }

    #[test]
    fn missing_sysfs_is_an_error() {
        assert!(read_all(&fixture("does-not-exist"), &BTreeSet::new()).is_err());
    }
}
