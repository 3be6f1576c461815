//! The whole collector over recorded trees (`collectors/tests/data/disk_encryption/`).

use std::sync::Arc;

use evidence_protocol::facts::disk_encryption::{DeviceKind, HeaderProbe, SkipCategory};

use super::*;
use crate::RecordedRunner;

fn fixture(name: &str) -> Host {
    let root = format!(
        "{}/tests/data/disk_encryption/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    Host::new(root, Arc::new(RecordedRunner::new()))
}

fn volume<'a>(facts: &'a DiskEncryptionFacts, mount_point: &str) -> &'a MountedVolume {
    let mounts = facts.mounts.observed().expect("mounts observed");
    mounts
        .volumes
        .iter()
        .find(|v| v.mount_point == mount_point)
        .unwrap_or_else(|| panic!("no volume {mount_point}"))
}

fn encrypted_by(names: &[&str]) -> Protection {
    Protection::Encrypted {
        by: names.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn lvm_on_luks_root_and_home_are_encrypted_through_the_crypt_mapping() {
    let facts = collect_as_live(&fixture("luks_lvm"));
    let root = volume(&facts, "/");
    assert_eq!(root.backing.protection, encrypted_by(&["dm-0"]));
    let chain: Vec<_> = root.backing.chain.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(chain, vec!["dm-1", "dm-0", "vda3", "vda"]);
    assert_eq!(root.backing.chain[1].crypt.as_ref().unwrap().kind, "luks2");
    assert_eq!(
        volume(&facts, "/home").backing.protection,
        encrypted_by(&["dm-0"])
    );
    assert_eq!(
        volume(&facts, "/srv/bound").backing.device.as_deref(),
        Some("dm-2")
    );
}

#[test]
fn plain_partitions_btrfs_and_loop_images_get_their_own_verdicts() {
    let facts = collect_as_live(&fixture("luks_lvm"));
    assert_eq!(
        volume(&facts, "/boot").backing.protection,
        Protection::Unencrypted
    );
    assert_eq!(
        volume(&facts, "/srv/data").backing.protection,
        Protection::Unencrypted
    );
    let btr = volume(&facts, "/srv/btr");
    assert_eq!(
        (btr.major_minor.as_str(), btr.backing.device.as_deref()),
        ("0:45", Some("vde"))
    );
    assert_eq!(btr.backing.protection, Protection::Unencrypted);
    // /mnt/img is a loop device whose image file lives on the encrypted /home.
    let img = volume(&facts, "/mnt/img");
    assert_eq!(img.backing.protection, encrypted_by(&["dm-0"]));
    assert_eq!(img.backing.chain[1].name, "dm-2");
}

#[test]
fn pseudo_ram_network_and_overlay_mounts_are_skipped_with_their_category() {
    let facts = collect_as_live(&fixture("luks_lvm"));
    let skipped = &facts.mounts.observed().unwrap().skipped;
    let category = |mp: &str| {
        skipped
            .iter()
            .find(|s| s.mount_point == mp)
            .map(|s| s.category)
    };
    assert_eq!(category("/proc"), Some(SkipCategory::Pseudo));
    assert_eq!(category("/run"), Some(SkipCategory::Ram));
    assert_eq!(category("/mnt/share"), Some(SkipCategory::Network));
    assert_eq!(
        category("/var/lib/docker/overlay2/abc/merged"),
        Some(SkipCategory::Layered)
    );
    assert_eq!(category("/"), None);
}

#[test]
fn swaps_on_plain_crypt_on_a_file_and_on_zram_are_resolved() {
    let facts = collect_as_live(&fixture("luks_lvm"));
    let swaps = facts.swaps.observed().unwrap();
    let find = |path: &str| swaps.iter().find(|s| s.path == path).unwrap();
    let plain = find("/dev/dm-3");
    assert_eq!(plain.backing.protection, encrypted_by(&["dm-3"]));
    assert_eq!(
        plain.backing.chain[0].crypt.as_ref().unwrap().evidence,
        "crypttab"
    );
    let file = find("/swapfile");
    assert_eq!(file.on_mount.as_deref(), Some("/"));
    assert_eq!(file.backing.protection, encrypted_by(&["dm-0"]));
    assert_eq!(find("/dev/zram0").backing.protection, Protection::RamBacked);
}

#[test]
fn locked_and_corrupt_luks_devices_are_listed() {
    let facts = collect_as_live(&fixture("luks_lvm"));
    let devices = facts.block_devices.observed().unwrap();
    let find = |name: &str| devices.iter().find(|d| d.name == name).unwrap();
    let HeaderProbe::Luks(locked) = &find("vdc").header else {
        panic!("vdc is a locked LUKS1 container");
    };
    assert_eq!((locked.version, locked.keyslots.len()), (1, 2));
    assert!(find("vdc").holders.is_empty());
    let HeaderProbe::Error { reason } = &find("vdd").header else {
        panic!("vdd's header is corrupt");
    };
    assert!(reason.contains("checksum"), "{reason}");
    assert!(find("vdd").crypt.is_none());
    let HeaderProbe::Luks(vda3) = &find("vda3").header else {
        panic!("vda3 holds the LUKS2 header dm-0 was opened from");
    };
    // cryptsetup names the mapping after the header: CRYPT-LUKS2-<uuid without dashes>-<name>.
    let dm_uuid = find("dm-0").dm_uuid.clone().unwrap();
    assert!(dm_uuid.contains(&vda3.uuid.replace('-', "")), "{dm_uuid}");
    assert_eq!(find("loop1").header, HeaderProbe::NoLuksHeader);
}

#[test]
fn this_vm_root_and_loop_mount_are_unencrypted() {
    let facts = collect_as_live(&fixture("this_vm"));
    assert_eq!(
        volume(&facts, "/").backing.protection,
        Protection::Unencrypted
    );
    let lo = volume(&facts, "/tmp/disktry/m");
    assert_eq!(lo.backing.chain[0].kind, DeviceKind::Loop);
    assert_eq!(
        lo.backing.chain[1].name, "vda",
        "followed to the file's filesystem"
    );
    assert_eq!(lo.backing.protection, Protection::Unencrypted);
    assert_eq!(facts.swaps, Observation::Observed(vec![]));
}

#[test]
fn a_tree_that_is_not_live_reports_kernel_state_not_applicable_but_reads_crypttab() {
    let facts = collect(&fixture("luks_lvm"));
    let facts = facts.observed().unwrap();
    assert!(
        matches!(&facts.mounts, Observation::NotApplicable { reason } if reason.contains("live"))
    );
    assert!(matches!(facts.swaps, Observation::NotApplicable { .. }));
    assert!(matches!(
        facts.block_devices,
        Observation::NotApplicable { .. }
    ));
    assert_eq!(facts.crypttab.observed().unwrap().len(), 3);
    assert_eq!(facts.fstab.observed().unwrap().len(), 7);
}

#[test]
fn unreadable_sources_are_errors_not_passes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
    std::fs::write(
        dir.path().join("proc/self/mountinfo"),
        "27 1 8:1 / / rw - ext4 /dev/sda1 rw\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("etc/crypttab"), "broken\n").unwrap();
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
    let facts = collect_as_live(&host);
    assert!(matches!(facts.block_devices, Observation::Error { .. }));
    assert!(matches!(facts.swaps, Observation::Error { .. }));
    assert!(matches!(facts.crypttab, Observation::Error { .. }));
    assert!(matches!(facts.fstab, Observation::Observed(ref f) if f.is_empty()));
    let root = volume(&facts, "/");
    assert!(matches!(
        root.backing.protection,
        Protection::Unknown { .. }
    ));
}
