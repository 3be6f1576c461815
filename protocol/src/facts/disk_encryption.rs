//! Facts of the `disk_encryption` collector.
//!
//! Filled by `evidence-collectors`' `disk_encryption` module from `/proc/self/mountinfo`,
//! `/proc/swaps`, sysfs (`/sys/class/block`), the LUKS headers on the devices themselves, and
//! `/etc/crypttab` + `/etc/fstab`; read by the `disk_encryption.*` checks in `evidence-controls`.
//! Live kernel state is one `Observation` per source, so a tree read with `--root` reports it as
//! not applicable while the configuration files are still observed.

use serde::{Deserialize, Serialize};

use crate::Observation;

/// What the `disk_encryption` collector observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskEncryptionFacts {
    /// Mounted filesystems: local ones with the block devices under them, and the skipped rest.
    pub mounts: Observation<Mounts>,
    /// Active swap areas (`/proc/swaps`) with the block devices under them.
    pub swaps: Observation<Vec<SwapArea>>,
    /// Every block device the kernel knows, mounted or not (so locked LUKS containers show).
    pub block_devices: Observation<Vec<BlockDevice>>,
    /// `/etc/crypttab` of the tree.
    pub crypttab: Observation<Vec<CrypttabEntry>>,
    /// `/etc/fstab` of the tree.
    pub fstab: Observation<Vec<FstabEntry>>,
}

/// The mount table split into local block-device filesystems and everything skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mounts {
    /// Filesystems stored on a local block device, sorted by mount point.
    pub volumes: Vec<MountedVolume>,
    /// Mounts not stored on a local block device (pseudo, RAM, network), sorted by mount point.
    pub skipped: Vec<SkippedMount>,
}

/// A filesystem on a local block device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountedVolume {
    pub mount_point: String,
    pub fs_type: String,
    /// The mount source as the kernel shows it, e.g. `/dev/mapper/vg-root`.
    pub source: String,
    /// `major:minor` of the mounted device (`0:N` for btrfs and other anonymous devices).
    pub major_minor: String,
    pub backing: Backing,
}

/// A mount that is not a filesystem on a local block device, and why it was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkippedMount {
    pub mount_point: String,
    pub fs_type: String,
    pub source: String,
    pub category: SkipCategory,
}

/// Why a mount is not a local data volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipCategory {
    /// Kernel interfaces (proc, sysfs, cgroup, devpts...): no stored data.
    Pseudo,
    /// RAM-backed (tmpfs, ramfs): gone at power-off.
    Ram,
    /// Stored on another host (nfs, cifs, ceph, fuse.sshfs...): that host's encryption.
    Network,
    /// A union/bind of other mounts (overlay, aufs): its writable layer is on another
    /// mounted filesystem, which is listed (and judged) itself.
    Layered,
    /// Not on a block device and of no known kind (e.g. a FUSE filesystem).
    NoBlockDevice,
}

/// An active swap area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapArea {
    /// The swap file or device path as `/proc/swaps` shows it.
    pub path: String,
    /// `partition` or `file`, as `/proc/swaps` shows it.
    pub kind: String,
    pub size_kib: u64,
    /// For a swap file: the mount point of the filesystem holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_mount: Option<String>,
    pub backing: Backing,
}

/// The stack of block devices under a volume and what it means for encryption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backing {
    /// Kernel name of the top device (`dm-1`, `sda2`), when it could be resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The top device first, then the devices under it (depth-first; `depth` 0 is the top).
    pub chain: Vec<ChainLink>,
    pub protection: Protection,
}

/// One device in a [`Backing`] chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainLink {
    pub depth: u32,
    pub name: String,
    pub kind: DeviceKind,
    /// Set when this device is a decrypting mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypt: Option<CryptMapping>,
}

/// Whether the data under a volume is encrypted at rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Protection {
    /// Every path from the volume down to physical storage passes through a decrypting mapping.
    Encrypted {
        /// The decrypting mappings on those paths (kernel names), sorted.
        by: Vec<String>,
    },
    /// Stored only in RAM (zram without a writeback device).
    RamBacked,
    /// At least one path down to storage has no decrypting mapping.
    Unencrypted,
    /// The chain could not be resolved: never counted as encrypted.
    Unknown { reason: String },
}

/// What kind of block device sysfs shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Disk,
    Partition,
    DeviceMapper,
    Loop,
    Md,
    Zram,
}

/// A device-mapper device that decrypts what is below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CryptMapping {
    /// `luks1`, `luks2`, `plain`, `tcrypt`, `bitlk`, `fvault2`, or `crypttab` when only
    /// `/etc/crypttab` names the mapping.
    pub kind: String,
    /// Where that came from: `dm_uuid` (the `CRYPT-...` uuid cryptsetup sets) or `crypttab`.
    pub evidence: String,
}

/// One block device from sysfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockDevice {
    pub name: String,
    pub major_minor: String,
    pub kind: DeviceKind,
    pub size_bytes: u64,
    /// Devices directly under this one: sysfs `slaves`, or the disk of a partition.
    pub lower: Vec<String>,
    /// Devices stacked directly on this one (sysfs `holders`).
    pub holders: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypt: Option<CryptMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_backing_file: Option<String>,
    /// What the device's first bytes hold.
    pub header: HeaderProbe,
}

/// The result of looking for a LUKS header at the start of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderProbe {
    NoLuksHeader,
    Luks(LuksHeader),
    /// Unreadable, truncated or corrupt: never counted as encrypted.
    Error {
        reason: String,
    },
}

/// A LUKS header, parsed from the device's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LuksHeader {
    /// 1 or 2.
    pub version: u16,
    pub uuid: String,
    /// LUKS2 label, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Cipher name, e.g. `aes`.
    pub cipher: String,
    /// Cipher mode, e.g. `xts-plain64`.
    pub cipher_mode: String,
    /// Volume key size in bits (LUKS2: from the keyslots; `None` when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_bits: Option<u32>,
    /// LUKS1 hash-spec; LUKS2 volume-key digest hash.
    pub hash: String,
    /// Active key slots, by slot number.
    pub keyslots: Vec<LuksKeyslot>,
}

/// An active LUKS key slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LuksKeyslot {
    pub slot: u32,
    pub key_bits: u32,
    pub pbkdf: Pbkdf,
}

/// How a key slot derives its key from the passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pbkdf {
    /// `pbkdf2`, `argon2i` or `argon2id`.
    pub kind: String,
    /// PBKDF2 hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// PBKDF2 iterations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u32>,
    /// Argon2 time cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_cost: Option<u32>,
    /// Argon2 memory in KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_kib: Option<u32>,
    /// Argon2 threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
}

/// One `/etc/crypttab` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrypttabEntry {
    /// The mapping name (`/dev/mapper/<name>`).
    pub name: String,
    /// The encrypted device: a path or `UUID=`/`PARTUUID=`/`LABEL=`.
    pub device: String,
    /// Key file; absent when the field is missing, `none` or `-` (a passphrase prompt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    pub options: Vec<String>,
}

/// One `/etc/fstab` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FstabEntry {
    pub spec: String,
    pub mount_point: String,
    pub fs_type: String,
    pub options: Vec<String>,
    /// The crypttab mapping this entry mounts (`/dev/mapper/<name>` with `<name>` in crypttab).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypttab_mapping: Option<String>,
}
