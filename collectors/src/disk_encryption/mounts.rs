//! The mount table (`/proc/self/mountinfo`) and active swap areas (`/proc/swaps`), parsed, and
//! which mounts are local data volumes.
//!
//! A mount is a local volume when its device number has a real major (a block device), or when
//! its source names a block device (btrfs reports an anonymous `0:N` device). The rest is skipped
//! with a category: pseudo filesystems, RAM (tmpfs), network shares, and layered mounts
//! (overlay: its writable layer lives on another mounted filesystem, which is judged itself).

use evidence_protocol::facts::disk_encryption::SkipCategory;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{file} line {line}: {reason}")]
pub struct TableError {
    pub file: &'static str,
    pub line: usize,
    pub reason: String,
}

/// One `/proc/self/mountinfo` line, the fields this collector uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub major: u32,
    pub major_minor: String,
    pub mount_point: String,
    pub fs_type: String,
    pub source: String,
}

/// One `/proc/swaps` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapEntry {
    pub path: String,
    pub kind: String,
    pub size_kib: u64,
}

/// Parses `/proc/self/mountinfo`:
/// `id parent maj:min root mount-point options [optional...] - fstype source super-options`.
pub fn parse_mountinfo(text: &str) -> Result<Vec<MountEntry>, TableError> {
    let err = |line: usize, reason: &str| TableError {
        file: "mountinfo",
        line,
        reason: reason.to_string(),
    };
    let mut entries = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split(' ').collect();
        let dash = fields
            .iter()
            .position(|f| *f == "-")
            .ok_or_else(|| err(i + 1, "no ' - ' separator"))?;
        if dash < 6 || fields.len() < dash + 3 {
            return Err(err(i + 1, "too few fields"));
        }
        let major_minor = fields[2];
        let major = major_minor
            .split_once(':')
            .filter(|(_, minor)| minor.parse::<u32>().is_ok())
            .and_then(|(major, _)| major.parse::<u32>().ok())
            .ok_or_else(|| err(i + 1, "device is not major:minor"))?;
        entries.push(MountEntry {
            major,
            major_minor: major_minor.to_string(),
            mount_point: unescape(fields[4]),
            fs_type: unescape(fields[dash + 1]),
            source: unescape(fields[dash + 2]),
        });
    }
    Ok(entries)
}

/// Parses `/proc/swaps` (a header line, then `path type size used priority`).
pub fn parse_swaps(text: &str) -> Result<Vec<SwapEntry>, TableError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.starts_with("Filename") => {}
        None => return Ok(Vec::new()),
        Some(_) => {
            return Err(TableError {
                file: "swaps",
                line: 1,
                reason: "no Filename header".into(),
            })
        }
    }
    let mut swaps = Vec::new();
    for (i, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let size_kib = fields.get(2).and_then(|s| s.parse::<u64>().ok());
        match (fields.len(), size_kib) {
            (5, Some(size_kib)) => swaps.push(SwapEntry {
                path: unescape(fields[0]),
                kind: fields[1].to_string(),
                size_kib,
            }),
            _ => {
                return Err(TableError {
                    file: "swaps",
                    line: i + 1,
                    reason: "expected 'path type size used priority'".into(),
                })
            }
        }
    }
    Ok(swaps)
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` `\`).
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| {
            bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

const RAM: &[&str] = &["tmpfs", "ramfs"];
const LAYERED: &[&str] = &["overlay", "aufs", "unionfs"];
const NETWORK: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ceph",
    "glusterfs",
    "9p",
    "virtiofs",
    "afs",
    "ncpfs",
    "lustre",
    "fuse.sshfs",
    "fuse.rclone",
    "fuse.s3fs",
    "fuse.glusterfs",
    "fuse.gcsfuse",
];
const PSEUDO: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "mqueue",
    "hugetlbfs",
    "configfs",
    "fusectl",
    "binfmt_misc",
    "autofs",
    "efivarfs",
    "selinuxfs",
    "rpc_pipefs",
    "nsfs",
    "nfsd",
];

/// The category of a mount that is not on a block device, by filesystem type.
/// `None` for a type that could be on one (the caller then looks at the source).
pub fn known_skip_category(fs_type: &str) -> Option<SkipCategory> {
    let is = |list: &[&str]| list.contains(&fs_type);
    if is(RAM) {
        Some(SkipCategory::Ram)
    } else if is(LAYERED) {
        Some(SkipCategory::Layered)
    } else if is(NETWORK) {
        Some(SkipCategory::Network)
    } else if is(PSEUDO) {
        Some(SkipCategory::Pseudo)
    } else {
        None
    }
}

/// The mount point holding `path`: the longest mount point that is `path` or a parent of it.
pub fn containing_mount<'a>(
    path: &str,
    mount_points: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    mount_points
        .into_iter()
        .filter(|mp| {
            *mp == "/"
                || path == *mp
                || path
                    .strip_prefix(mp)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|mp| mp.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MOUNTINFO: &str =
        include_str!("../../tests/data/disk_encryption/this_vm/proc/self/mountinfo");

    #[test]
    fn mountinfo_of_this_vm_yields_root_on_vda_and_the_loop_mount() {
        let entries = parse_mountinfo(MOUNTINFO).unwrap();
        let root = entries.iter().find(|e| e.mount_point == "/").unwrap();
        assert_eq!(
            (root.major_minor.as_str(), root.fs_type.as_str()),
            ("254:0", "ext4")
        );
        assert_eq!(root.source, "/dev/vda");
        let proc = entries.iter().find(|e| e.mount_point == "/proc").unwrap();
        assert_eq!((proc.major, proc.fs_type.as_str()), (0, "proc"));
        assert!(entries.iter().any(|e| e.major == 7 && e.fs_type == "ext4"));
    }

    #[test]
    fn escaped_mount_points_are_unescaped() {
        let line = "50 27 8:17 / /mnt/my\\040disk rw - ext4 /dev/sdb1 rw\n";
        assert_eq!(
            parse_mountinfo(line).unwrap()[0].mount_point,
            "/mnt/my disk"
        );
        assert_eq!(unescape("a\\134b\\011c"), "a\\b\tc");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn malformed_mountinfo_lines_are_errors_with_their_line() {
        let text = "22 27 0:21 / /proc rw - proc proc rw\n23 27 x / /sys rw - sysfs sysfs rw\n";
        assert_eq!(parse_mountinfo(text).unwrap_err().line, 2);
        assert!(parse_mountinfo("1 2 0:1 / /x rw proc proc rw\n").is_err());
    }

    #[test]
    fn swaps_yield_partition_and_file_areas() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                    /dev/dm-2                               partition\t999420\t\t0\t\t-2\n\
                    /swap\\040file                           file\t\t524284\t\t0\t\t-3\n";
        let swaps = parse_swaps(text).unwrap();
        assert_eq!(swaps.len(), 2);
        assert_eq!(
            (swaps[0].path.as_str(), swaps[0].kind.as_str()),
            ("/dev/dm-2", "partition")
        );
        assert_eq!(
            (swaps[1].path.as_str(), swaps[1].size_kib),
            ("/swap file", 524284)
        );
        assert_eq!(
            parse_swaps(include_str!(
                "../../tests/data/disk_encryption/this_vm/proc/swaps"
            )),
            Ok(vec![])
        );
        assert!(parse_swaps("garbage\n").is_err());
        assert!(parse_swaps("Filename Type\n/dev/sda2 partition x 0 -2\n").is_err());
    }

    #[test]
    fn mount_categories_follow_the_filesystem_type() {
        assert_eq!(known_skip_category("tmpfs"), Some(SkipCategory::Ram));
        assert_eq!(known_skip_category("overlay"), Some(SkipCategory::Layered));
        assert_eq!(known_skip_category("nfs4"), Some(SkipCategory::Network));
        assert_eq!(known_skip_category("cgroup2"), Some(SkipCategory::Pseudo));
        assert_eq!(known_skip_category("btrfs"), None);
        assert_eq!(known_skip_category("ext4"), None);
    }

    #[test]
    fn containing_mount_is_the_longest_parent() {
        let mps = ["/", "/home", "/home/user/data", "/homes"];
        assert_eq!(containing_mount("/home/user/x", mps), Some("/home"));
        assert_eq!(containing_mount("/homes/a", mps), Some("/homes"));
        assert_eq!(
            containing_mount("/home/user/data", mps),
            Some("/home/user/data")
        );
        assert_eq!(containing_mount("/swapfile", mps), Some("/"));
        assert_eq!(containing_mount("/x", ["/home"]), None);
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
            let _ = parse_mountinfo(&text);
            let _ = parse_swaps(&text);
            let _ = unescape(&text);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_mountinfo(&text);
            let _ = parse_swaps(&text);
        }
    }
}
