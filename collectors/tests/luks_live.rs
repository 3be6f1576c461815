//! The collector on this machine's live state, with real loop devices: a locked LUKS2 container
//! is listed with its header, an ext4 loop mount is an unencrypted volume with its device chain,
//! and (where the kernel has device-mapper) a mounted dm-crypt volume is encrypted through its
//! `CRYPT-LUKS2` mapping.
//!
//! Needs root, `cryptsetup`, `losetup`, `mkfs.ext4` (Debian: cryptsetup-bin, e2fsprogs, mount).

mod luks_support;

use evidence_collectors::disk_encryption::collect;
use evidence_collectors::disk_encryption::mounts::containing_mount;
use evidence_collectors::Host;
use evidence_protocol::facts::disk_encryption::{
    DeviceKind, DiskEncryptionFacts, HeaderProbe, MountedVolume, Protection,
};
use luks_support::*;

fn live_facts() -> DiskEncryptionFacts {
    collect(&Host::live()).observed().expect("facts").clone()
}

fn volume_at(facts: &DiskEncryptionFacts, mount_point: &std::path::Path) -> MountedVolume {
    let mount_point = path_str(mount_point);
    let mounts = facts.mounts.observed().expect("live mounts observed");
    mounts
        .volumes
        .iter()
        .find(|v| v.mount_point == mount_point)
        .unwrap_or_else(|| panic!("{mount_point} not listed: {:#?}", mounts.volumes))
        .clone()
}

#[test]
fn a_locked_luks2_loop_device_is_listed_with_its_header() {
    let test = "a_locked_luks2_loop_device_is_listed_with_its_header";
    if !require(test, true, &["cryptsetup", "losetup"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = luks_image(dir.path(), "locked.img", LUKS2_FAST);
    let device = LoopDevice::attach(&image);
    let facts = live_facts();
    let devices = facts
        .block_devices
        .observed()
        .expect("live block devices observed");
    let listed = devices
        .iter()
        .find(|d| d.name == device.name())
        .expect("loop device listed");
    assert_eq!(listed.kind, DeviceKind::Loop);
    assert_eq!(listed.loop_backing_file.as_deref(), Some(path_str(&image)));
    assert!(listed.holders.is_empty(), "locked: nothing opened on it");
    let HeaderProbe::Luks(header) = &listed.header else {
        panic!("expected its LUKS header, got {:?}", listed.header);
    };
    assert_eq!(*header, luks_dump(device.path()));
}

#[test]
fn an_ext4_loop_mount_is_an_unencrypted_volume_with_its_chain() {
    let test = "an_ext4_loop_mount_is_an_unencrypted_volume_with_its_chain";
    if !require(test, true, &["losetup", "mkfs.ext4", "mount"]) {
        return;
    }
    // In the target directory, not /tmp: the image should sit on a disk-backed filesystem.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let image = image(dir.path(), "plain.img");
    run("mkfs.ext4", &["-q", path_str(&image)]);
    let device = LoopDevice::attach(&image);
    let mounted = Mounted::mount_in(device.path(), dir.path());
    let mount_point = mounted.path();
    let facts = live_facts();
    let volume = volume_at(&facts, mount_point);
    assert_eq!(volume.fs_type, "ext4");
    assert_eq!(
        volume.backing.device.as_deref(),
        Some(device.name().as_str())
    );
    assert_eq!(volume.backing.chain[0].kind, DeviceKind::Loop);
    assert!(volume.backing.chain[0].crypt.is_none());
    // The chain continues into the volume holding the image file, and shares its verdict.
    let volumes = &facts.mounts.observed().unwrap().volumes;
    let holder = containing_mount(
        path_str(&image),
        volumes.iter().map(|v| v.mount_point.as_str()),
    )
    .filter(|mp| *mp != path_str(mount_point))
    .expect("a local volume holds the image");
    let holder = volume_at(&facts, std::path::Path::new(holder));
    assert_eq!(volume.backing.chain[1].name, holder.backing.chain[0].name);
    assert_eq!(volume.backing.protection, holder.backing.protection);
    if holder.backing.protection == Protection::Unencrypted {
        eprintln!("the image's filesystem is unencrypted, so the loop mount is too");
    }
}

#[test]
fn a_mounted_dm_crypt_volume_is_encrypted_through_its_luks2_mapping() {
    let test = "a_mounted_dm_crypt_volume_is_encrypted_through_its_luks2_mapping";
    if !require(test, true, &["cryptsetup", "losetup", "mkfs.ext4", "mount"]) {
        return;
    }
    let misc = std::fs::read_to_string("/proc/misc").unwrap_or_default();
    if !misc.lines().any(|l| l.ends_with(" device-mapper")) {
        // Not a tool CI can install: this kernel has no device-mapper (a minimal VM kernel).
        eprintln!(
            "\n*** SKIPPED: {test} needs a kernel with device-mapper (not in /proc/misc) ***\n"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = luks_image(dir.path(), "crypt.img", LUKS2_FAST);
    let device = LoopDevice::attach(&image);
    let name = format!("evidence-test-{}", std::process::id());
    cryptsetup(&[
        "open",
        "--key-file",
        &key_file(&image),
        path_str(device.path()),
        &name,
    ]);
    let _mapping = CryptMapping(name.clone());
    let mapper = std::path::PathBuf::from(format!("/dev/mapper/{name}"));
    run("mkfs.ext4", &["-q", path_str(&mapper)]);
    let mounted = Mounted::mount_in(&mapper, dir.path());

    let facts = live_facts();
    let volume = volume_at(&facts, mounted.path());
    let top = &volume.backing.chain[0];
    assert_eq!(top.kind, DeviceKind::DeviceMapper);
    assert_eq!(top.crypt.as_ref().map(|c| c.kind.as_str()), Some("luks2"));
    assert_eq!(volume.backing.chain[1].name, device.name());
    assert_eq!(
        volume.backing.protection,
        Protection::Encrypted {
            by: vec![top.name.clone()]
        }
    );
    let devices = facts.block_devices.observed().unwrap();
    let crypt = devices.iter().find(|d| d.name == top.name).unwrap();
    assert!(crypt
        .dm_uuid
        .as_deref()
        .is_some_and(|u| u.starts_with("CRYPT-LUKS2-")));
    let lower = devices.iter().find(|d| d.name == device.name()).unwrap();
    assert_eq!(lower.holders, vec![top.name.clone()]);
    assert!(matches!(&lower.header, HeaderProbe::Luks(h) if h.version == 2));
}
