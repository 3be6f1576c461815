//! Unit tests of the `disk_encryption` checks over facts shaped like the collector's output
//! (`collectors/tests/data/disk_encryption/luks_lvm`: LVM on LUKS, plain /boot, a data disk).

use evidence_protocol::facts::disk_encryption::{
    ChainLink, CryptMapping, DeviceKind, Mounts, SkipCategory, SkippedMount, SwapArea,
};
use evidence_protocol::Observation;

use super::*;
use crate::Status;

fn backing(device: &str, protection: Protection) -> Backing {
    let crypt = matches!(protection, Protection::Encrypted { .. });
    Backing {
        device: Some(device.into()),
        chain: vec![ChainLink {
            depth: 0,
            name: device.into(),
            kind: DeviceKind::DeviceMapper,
            crypt: crypt.then(|| CryptMapping {
                kind: "luks2".into(),
                evidence: "dm_uuid".into(),
            }),
        }],
        protection,
    }
}

fn encrypted() -> Protection {
    Protection::Encrypted {
        by: vec!["dm-0".into()],
    }
}

fn volume(mount_point: &str, device: &str, fs_type: &str, protection: Protection) -> MountedVolume {
    MountedVolume {
        mount_point: mount_point.into(),
        fs_type: fs_type.into(),
        source: format!("/dev/{device}"),
        major_minor: "253:1".into(),
        backing: backing(device, protection),
    }
}

fn facts(volumes: Vec<MountedVolume>, swaps: Vec<SwapArea>) -> DiskEncryptionFacts {
    DiskEncryptionFacts {
        mounts: Observation::Observed(Mounts {
            volumes,
            skipped: vec![],
        }),
        swaps: Observation::Observed(swaps),
        block_devices: Observation::Observed(vec![]),
        crypttab: Observation::Observed(vec![]),
        fstab: Observation::Observed(vec![]),
    }
}

fn laptop() -> Vec<MountedVolume> {
    vec![
        volume("/", "dm-1", "ext4", encrypted()),
        volume("/boot", "vda2", "ext4", Protection::Unencrypted),
        volume("/boot/efi", "vda1", "vfat", Protection::Unencrypted),
        volume("/home", "dm-2", "ext4", encrypted()),
        volume("/srv/bound", "dm-2", "ext4", encrypted()),
    ]
}

fn swap(path: &str, protection: Protection) -> SwapArea {
    SwapArea {
        path: path.into(),
        kind: "partition".into(),
        size_kib: 1024,
        on_mount: None,
        backing: backing("dm-3", protection),
    }
}

#[test]
fn encrypted_root_passes_and_unencrypted_root_fails() {
    let policy = Policy::default();
    assert_eq!(
        root_volume_encrypted(&facts(laptop(), vec![]), &policy).status,
        Status::Pass
    );
    let plain = vec![volume("/", "vda", "ext4", Protection::Unencrypted)];
    let outcome = root_volume_encrypted(&facts(plain, vec![]), &policy);
    assert_eq!(outcome.status, Status::Fail);
    assert_eq!(outcome.evidence["offending"][0]["backing"]["device"], "vda");
}

#[test]
fn root_with_unresolved_chain_is_an_error_never_a_pass() {
    let unknown = Protection::Unknown {
        reason: "device dm-7 is not in sysfs".into(),
    };
    let outcome = root_volume_encrypted(
        &facts(vec![volume("/", "dm-7", "ext4", unknown)], vec![]),
        &Policy::default(),
    );
    assert_eq!(outcome.status, Status::Error);
}

#[test]
fn root_on_overlay_is_not_applicable_and_no_root_is_an_error() {
    let mut f = facts(vec![], vec![]);
    let outcome = root_volume_encrypted(&f, &Policy::default());
    assert_eq!(outcome.status, Status::Error);
    f.mounts = Observation::Observed(Mounts {
        volumes: vec![],
        skipped: vec![SkippedMount {
            mount_point: "/".into(),
            fs_type: "overlay".into(),
            source: "overlay".into(),
            category: SkipCategory::Layered,
        }],
    });
    assert_eq!(
        root_volume_encrypted(&f, &Policy::default()).status,
        Status::NotApplicable
    );
}

#[test]
fn data_volumes_pass_when_boot_is_allowed_and_the_rest_is_encrypted() {
    let outcome = data_volumes_encrypted(&facts(laptop(), vec![]), &Policy::default());
    assert_eq!(outcome.status, Status::Pass, "{:?}", outcome.evidence);
    assert_eq!(
        outcome.evidence["exempt_by_policy"],
        json!(["/boot", "/boot/efi"])
    );
    // /home and its bind mount are one volume.
    assert_eq!(
        outcome.evidence["volumes"][0]["mount_points"],
        json!(["/home", "/srv/bound"])
    );
}

#[test]
fn an_unencrypted_data_disk_fails_with_its_chain_listed() {
    let mut volumes = laptop();
    volumes.push(volume("/srv/data", "vdb1", "ext4", Protection::Unencrypted));
    volumes.push(volume(
        "/mnt/x",
        "dm-9",
        "xfs",
        Protection::Unknown { reason: "?".into() },
    ));
    let outcome = data_volumes_encrypted(&facts(volumes, vec![]), &Policy::default());
    assert_eq!(outcome.status, Status::Fail);
    let offending = outcome.evidence["offending"].as_array().unwrap();
    assert_eq!(offending.len(), 1);
    assert_eq!(offending[0]["mount_points"], json!(["/srv/data"]));
    assert_eq!(offending[0]["backing"]["chain"][0]["name"], "vdb1");
    assert_eq!(
        outcome.evidence["unresolved"][0]["mount_points"],
        json!(["/mnt/x"])
    );
}

#[test]
fn an_empty_allow_list_makes_plain_boot_fail() {
    let mut policy = Policy::default();
    policy.disk_encryption.allowed_unencrypted_mount_points = vec![];
    let outcome = data_volumes_encrypted(&facts(laptop(), vec![]), &policy);
    assert_eq!(outcome.status, Status::Fail);
    assert_eq!(outcome.evidence["offending"].as_array().unwrap().len(), 2);
}

#[test]
fn squashfs_images_are_exempt_by_default() {
    let mut volumes = laptop();
    volumes.push(volume(
        "/snap/core/1",
        "loop3",
        "squashfs",
        Protection::Unencrypted,
    ));
    let outcome = data_volumes_encrypted(&facts(volumes, vec![]), &Policy::default());
    assert_eq!(outcome.status, Status::Pass);
}

#[test]
fn swap_passes_when_absent_encrypted_or_in_ram_and_fails_when_plain() {
    let policy = Policy::default();
    assert_eq!(
        swap_encrypted(&facts(vec![], vec![]), &policy).status,
        Status::Pass
    );
    let ok = vec![
        swap("/dev/dm-3", encrypted()),
        swap("/dev/zram0", Protection::RamBacked),
    ];
    assert_eq!(
        swap_encrypted(&facts(vec![], ok), &policy).status,
        Status::Pass
    );
    let plain = vec![swap("/dev/vda4", Protection::Unencrypted)];
    let outcome = swap_encrypted(&facts(vec![], plain), &policy);
    assert_eq!(outcome.status, Status::Fail);
    assert_eq!(outcome.evidence["offending"][0]["path"], "/dev/vda4");
}

#[test]
fn live_state_not_applicable_or_unreadable_carries_its_reason() {
    let mut f = facts(laptop(), vec![]);
    f.mounts = Observation::not_applicable("reading the tree at /mnt/img");
    f.swaps = Observation::error("/proc/swaps: permission denied");
    let policy = Policy::default();
    let root = root_volume_encrypted(&f, &policy);
    assert_eq!(root.status, Status::NotApplicable);
    assert!(root.reason.unwrap().contains("/mnt/img"));
    assert_eq!(
        data_volumes_encrypted(&f, &policy).status,
        Status::NotApplicable
    );
    assert_eq!(swap_encrypted(&f, &policy).status, Status::Error);
}

#[test]
fn policy_defaults_and_unknown_keys() {
    let policy = Policy::from_toml("[disk_encryption]\nexempt_fs_types = []\n").unwrap();
    assert!(policy.disk_encryption.exempt_fs_types.is_empty());
    assert_eq!(
        policy.disk_encryption.allowed_unencrypted_mount_points,
        vec!["/boot", "/boot/efi"]
    );
    assert!(Policy::from_toml("[disk_encryption]\nallowed_mounts = []\n").is_err());
}

#[test]
fn root_evidence_carries_the_luks_header_found_in_its_chain() {
    use evidence_protocol::facts::disk_encryption::{BlockDevice, HeaderProbe, LuksHeader};
    let mut root = volume("/", "dm-1", "ext4", encrypted());
    root.backing.chain.push(ChainLink {
        depth: 1,
        name: "vda3".into(),
        kind: DeviceKind::Partition,
        crypt: None,
    });
    let mut f = facts(vec![root], vec![]);
    let header = LuksHeader {
        version: 2,
        uuid: "e932f034-091b-42bd-b6fa-0724996e7577".into(),
        label: None,
        cipher: "aes".into(),
        cipher_mode: "xts-plain64".into(),
        key_bits: Some(512),
        hash: "sha256".into(),
        keyslots: vec![],
    };
    f.block_devices = Observation::Observed(vec![BlockDevice {
        name: "vda3".into(),
        major_minor: "254:3".into(),
        kind: DeviceKind::Partition,
        size_bytes: 1 << 30,
        lower: vec!["vda".into()],
        holders: vec!["dm-0".into()],
        dm_name: None,
        dm_uuid: None,
        crypt: None,
        loop_backing_file: None,
        header: HeaderProbe::Luks(header),
    }]);
    let outcome = root_volume_encrypted(&f, &Policy::default());
    assert_eq!(outcome.status, Status::Pass);
    let luks = &outcome.evidence["root"][0]["backing"]["luks_headers"][0];
    assert_eq!(luks["device"], "vda3");
    assert_eq!(luks["header"]["cipher_mode"], "xts-plain64");
    assert_eq!(luks["header"]["key_bits"], 512);
}
