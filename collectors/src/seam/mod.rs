//! The one seam between collectors and the host: a root directory and a command runner.
//!
//! Collectors touch the host only through [`Host`]: files, directories and metadata under the
//! root (each read capped), and tools through the runner. No collector uses `std::fs` itself.

mod read_log;
mod runner;
mod source;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use read_log::ReadLog;
pub use runner::{
    CommandOutput, CommandRunner, RecordedRunner, RunError, SystemRunner, DEFAULT_COMMAND_TIMEOUT,
};
pub use source::Source;

/// Caps on the bytes one read of a host file may return, one per kind of file; a file over its
/// cap is refused with [`ReadError::TooLarge`] (naming it and its size), never read whole. Sizes
/// quoted were measured on a Debian bookworm amd64 machine on 2026-12-01.
pub mod caps {
    /// Account and configuration files (passwd, shadow, group, sudoers, login.defs, pwquality,
    /// authorized_keys, crypttab, fstab, ufw, firewalld, apt sources/preferences/conf,
    /// os-release): real ones are a few KiB, so 16 MiB is generous.
    pub const CONFIG: u64 = 16 << 20;
    /// Kernel text files in /proc and /sys (mountinfo, swaps, osrelease, dmi ids): mountinfo is
    /// the largest at ~150 bytes a mount, so 16 MiB is over 100,000 mounts.
    pub const KERNEL_TEXT: u64 = 16 << 20;
    /// dpkg's status file: 684,751 bytes for 754 packages here (~900 bytes a package); 64 MiB
    /// holds every one of bookworm main's 63,440 packages installed at once (~57 MB).
    pub const DPKG_STATUS: u64 = 64 << 20;
    /// apt's `InRelease`/`Release` files: bookworm's InRelease is 151,075 bytes; 16 MiB.
    pub const APT_RELEASE: u64 = 16 << 20;
    /// One apt `Packages` index, on disk and decompressed (so a decompression bomb is refused):
    /// bookworm main amd64, the largest Debian index, is 50,060,337 bytes decompressed; ~5x.
    pub const APT_INDEX: u64 = 256 << 20;
    /// `/var/log/wtmp`, 384-byte records rotated monthly: 64 MiB is ~175,000 records (a login
    /// and a logout each) a month.
    pub const WTMP: u64 = 64 << 20;
    /// The start of a block device or image read for its LUKS header: the largest LUKS2 header
    /// (binary header and JSON area) the on-disk format allows is 4 MiB.
    pub const LUKS_HEADER: u64 = 4 << 20;
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReadError {
    #[error("{path}: not found")]
    NotFound { path: String },
    #[error("{path}: permission denied")]
    PermissionDenied { path: String },
    /// `size` is the file's length when it told (its metadata), `None` when reading found more
    /// than the length said (a /proc file reports 0; a file may grow while read).
    #[error("{path}: {}", over_cap(*size, *limit))]
    TooLarge {
        path: String,
        limit: u64,
        size: Option<u64>,
    },
    /// A device, FIFO or socket where a regular file is expected: never opened or read, so a
    /// link to `/dev/zero` cannot fill memory and a FIFO cannot hang the collector.
    #[error("{path}: is a {kind}, not a regular file")]
    NotRegularFile { path: String, kind: &'static str },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// "N bytes, over its cap of M bytes" (or "more than M bytes" when the size is unknown).
fn over_cap(size: Option<u64>, limit: u64) -> String {
    match size {
        Some(size) => format!("{size} bytes, over its cap of {limit} bytes"),
        None => format!("more than {limit} bytes, over its cap"),
    }
}

/// What a file type is called in errors; `None` for a regular file.
fn irregular_kind(file_type: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_file() {
        None
    } else if file_type.is_dir() {
        Some("directory")
    } else if file_type.is_char_device() {
        Some("character device")
    } else if file_type.is_block_device() {
        Some("block device")
    } else if file_type.is_fifo() {
        Some("FIFO")
    } else if file_type.is_socket() {
        Some("socket")
    } else {
        Some("special file")
    }
}

/// A regular file opened under the root whose reads fail (with [`std::io::ErrorKind::FileTooLarge`])
/// once more than its cap has been read: for files decoded as a stream (apt's indexes).
#[derive(Debug)]
pub struct CappedFile {
    inner: std::io::Take<std::fs::File>,
    limit: u64,
    seen: u64,
}

impl Read for CappedFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen += n as u64;
        if self.seen > self.limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                over_cap(None, self.limit),
            ));
        }
        Ok(n)
    }
}

impl ReadError {
    fn from_io(path: &Path, err: std::io::Error) -> Self {
        Self::from_io_shown(path.display().to_string(), err)
    }

    fn from_io_shown(path: String, err: std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::NotFound => ReadError::NotFound { path },
            std::io::ErrorKind::PermissionDenied => ReadError::PermissionDenied { path },
            _ => ReadError::Io {
                path,
                message: err.to_string(),
            },
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::NotFound { .. })
    }
}

/// Most symbolic links followed while resolving one path (as the kernel's ELOOP limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// Joins `path` onto `root`, following symbolic links found along the way inside `root`:
/// absolute link targets restart from `root`, `..` never climbs above it. Components that do not
/// exist are appended as they are, so the caller's open reports "not found".
fn resolve_in_root(root: &Path, path: &Path) -> PathBuf {
    use std::collections::VecDeque;
    use std::path::Component;

    let mut pending: VecDeque<std::ffi::OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut hops = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate: PathBuf = root.join(resolved.iter().collect::<PathBuf>()).join(&name);
        match std::fs::read_link(&candidate) {
            Ok(target) if hops < MAX_SYMLINK_HOPS => {
                hops += 1;
                if target.is_absolute() {
                    resolved.clear();
                }
                for component in target.components().rev() {
                    match component {
                        Component::Normal(part) => pending.push_front(part.to_os_string()),
                        Component::ParentDir => pending.push_front("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved.push(name),
        }
    }
    root.join(resolved.iter().collect::<PathBuf>())
}

/// The host as collectors see it.
#[derive(Clone)]
pub struct Host {
    root: PathBuf,
    /// The root is this machine's `/` (decided once, in `new`).
    live: bool,
    runner: Arc<dyn CommandRunner>,
    /// Where every path asked for is noted, in tests ([`Host::with_read_log`]).
    log: Option<ReadLog>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("root", &self.root).finish()
    }
}

impl Host {
    /// This machine: root `/`, real commands.
    pub fn live() -> Self {
        Self::new("/", Arc::new(SystemRunner))
    }

    pub fn new(root: impl Into<PathBuf>, runner: Arc<dyn CommandRunner>) -> Self {
        let root = root.into();
        let live = root == Path::new("/")
            || std::fs::canonicalize(&root).is_ok_and(|p| p == Path::new("/"));
        Self {
            root,
            live,
            runner,
            log: None,
        }
    }

    /// This host, noting every path asked of it (by any accessor, [`Host::path`] included) in
    /// `log`.
    pub fn with_read_log(mut self, log: ReadLog) -> Self {
        self.log = Some(log);
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when the root is this machine's `/`, so live kernel state (block devices, the
    /// running ruleset, the running kernel) describes the same system as the files.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Why live kernel state is not applicable with this root, or `None` when it is.
    pub fn not_live_reason(&self) -> Option<String> {
        (!self.is_live()).then(|| {
            format!(
                "reading the tree at {}: live kernel state belongs to the machine running the agent, not to that tree",
                self.root.display()
            )
        })
    }

    /// `path` (absolute, as on the host) under the root. Under a root other than `/`, symbolic
    /// links are followed inside the tree as a chroot would (an absolute target such as
    /// `/usr/lib/os-release` stays under the root), so a tree never reads the machine's files.
    pub fn path(&self, path: &str) -> PathBuf {
        self.note(path);
        self.path_unnoted(path)
    }

    /// Notes `path` in the read log, if there is one.
    fn note(&self, path: &str) {
        if let Some(log) = &self.log {
            log.note(path);
        }
    }

    /// [`Host::path`] without noting it (for a parent directory looked up on the way).
    fn path_unnoted(&self, path: &str) -> PathBuf {
        if self.live {
            return PathBuf::from("/").join(path.trim_start_matches('/'));
        }
        resolve_in_root(&self.root, Path::new(path))
    }

    /// How `path`, resolved to `full`, is named in read errors: under a tree, a path reached
    /// through a symbolic link names the link too (`ROOT/etc/shadow -> ROOT/dev/zero`).
    fn shown(&self, path: &str, full: &Path) -> String {
        let asked = self.root.join(path.trim_start_matches('/'));
        if self.live || asked == full {
            full.display().to_string()
        } else {
            format!("{} -> {}", asked.display(), full.display())
        }
    }

    /// `path` under the root and how to name it in errors; a link left unresolved (a loop, too
    /// many hops) would be followed against the machine's own root, so it is refused in a tree.
    fn resolved(&self, path: &str) -> Result<(PathBuf, String), ReadError> {
        let full = self.path(path);
        let shown = self.shown(path, &full);
        if !self.is_live() && full.is_symlink() {
            return Err(ReadError::Io {
                path: shown,
                message: "too many levels of symbolic links".to_string(),
            });
        }
        Ok((full, shown))
    }

    /// Opens a regular file under the root.
    fn open_regular(&self, path: &str) -> Result<(std::fs::File, String, u64), ReadError> {
        self.open_checked(path, false)
    }

    /// Opens a regular file (or, with `block_device`, a block device too) under the root. The
    /// type is checked on the resolved path before opening (opening a FIFO would block) and
    /// again on the opened handle (the path may have been swapped meanwhile). Returns the file,
    /// how to name it in errors and its length.
    fn open_checked(
        &self,
        path: &str,
        block_device: bool,
    ) -> Result<(std::fs::File, String, u64), ReadError> {
        let (full, shown) = self.resolved(path)?;
        let regular = |meta: &std::fs::Metadata| match irregular_kind(meta.file_type()) {
            None => Ok(()),
            Some("block device") if block_device => Ok(()),
            Some(kind) => Err(ReadError::NotRegularFile {
                path: shown.clone(),
                kind,
            }),
        };
        let io = |e| ReadError::from_io_shown(shown.clone(), e);
        regular(&std::fs::metadata(&full).map_err(io)?)?;
        let file = std::fs::File::open(&full).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        regular(&meta)?;
        Ok((file, shown, meta.len()))
    }

    /// Reads a whole regular file under the root, refusing it when over `limit` bytes (one of
    /// [`caps`]): by its length before reading, and by reading at most `limit + 1` bytes, so a
    /// length that lies (a /proc file, a file growing meanwhile) cannot make it read more.
    pub fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
        let (file, shown, len) = self.open_regular(path)?;
        let too_large = |size| ReadError::TooLarge {
            path: shown.clone(),
            limit,
            size,
        };
        if len > limit {
            return Err(too_large(Some(len)));
        }
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| ReadError::from_io_shown(shown.clone(), e))?;
        if buf.len() as u64 > limit {
            return Err(too_large(None));
        }
        Ok(buf)
    }

    /// Reads a regular file as text (at most `limit` bytes); invalid UTF-8 is an error, not
    /// silently replaced.
    pub fn read_to_string(&self, path: &str, limit: u64) -> Result<String, ReadError> {
        let bytes = self.read(path, limit)?;
        String::from_utf8(bytes).map_err(|_| ReadError::Io {
            path: self.path(path).display().to_string(),
            message: "not valid UTF-8 text".to_string(),
        })
    }

    /// Opens a regular file to be read as a stream of at most `limit` bytes: refused when its
    /// length is over `limit`, and reading past `limit` fails (the file grew meanwhile).
    pub fn open_capped(&self, path: &str, limit: u64) -> Result<CappedFile, ReadError> {
        let (file, shown, len) = self.open_regular(path)?;
        if len > limit {
            return Err(ReadError::TooLarge {
                path: shown,
                limit,
                size: Some(len),
            });
        }
        Ok(CappedFile {
            inner: file.take(limit + 1),
            limit,
            seen: 0,
        })
    }

    /// Opens a regular file of fixed-size records that the caller seeks in (lastlog, sparse and
    /// indexed by uid, so its length is not capped): every read the caller makes must be of
    /// one record.
    pub fn open_records(&self, path: &str) -> Result<(std::fs::File, u64), ReadError> {
        let (file, _, len) = self.open_regular(path)?;
        Ok((file, len))
    }

    /// Opens a block device, or a regular file holding a disk image, to read at most its first
    /// `limit` bytes (a header; the device itself is never read whole).
    pub fn open_device(
        &self,
        path: &str,
        limit: u64,
    ) -> Result<std::io::Take<std::fs::File>, ReadError> {
        let (file, _, _) = self.open_checked(path, true)?;
        Ok(file.take(limit))
    }

    /// The metadata of what `path` names under the root, links followed.
    pub fn metadata(&self, path: &str) -> Result<std::fs::Metadata, ReadError> {
        let (full, shown) = self.resolved(path)?;
        std::fs::metadata(&full).map_err(|e| ReadError::from_io_shown(shown, e))
    }

    /// True when `path` exists under the root (links followed).
    pub fn exists(&self, path: &str) -> bool {
        self.metadata(path).is_ok()
    }

    /// True when `path` is a directory under the root (links followed).
    pub fn is_dir(&self, path: &str) -> bool {
        self.metadata(path).is_ok_and(|m| m.is_dir())
    }

    /// The metadata of `path` itself, not of what it links to (a dangling link exists).
    pub fn symlink_metadata(&self, path: &str) -> Result<std::fs::Metadata, ReadError> {
        let (parent, name) = match path.trim_end_matches('/').rsplit_once('/') {
            Some((parent, name)) if !name.is_empty() && name != ".." => (parent, name),
            _ => return self.metadata(path),
        };
        self.note(path);
        let full = self
            .path_unnoted(if parent.is_empty() { "/" } else { parent })
            .join(name);
        std::fs::symlink_metadata(&full).map_err(|e| ReadError::from_io(&full, e))
    }

    /// What `path` names once every link is followed, absolute as on the host (under a tree,
    /// inside the tree): `/dev/disk/by-uuid/...` becomes `/dev/sda1`.
    pub fn canonical(&self, path: &str) -> Result<String, ReadError> {
        let (full, shown) = self.resolved(path)?;
        let io = |e| ReadError::from_io_shown(shown.clone(), e);
        if self.live {
            return Ok(std::fs::canonicalize(&full)
                .map_err(io)?
                .display()
                .to_string());
        }
        // Links inside the tree are already followed; the target must exist.
        std::fs::symlink_metadata(&full).map_err(io)?;
        let inside = full.strip_prefix(&self.root).unwrap_or(&full);
        Ok(format!("/{}", inside.display()))
    }

    /// Lists a directory under the root, sorted by name.
    pub fn read_dir(&self, path: &str) -> Result<Vec<String>, ReadError> {
        let full = self.path(path);
        let entries = std::fs::read_dir(&full).map_err(|e| ReadError::from_io(&full, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ReadError::from_io(&full, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    /// Runs a host tool with the default timeout.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<CommandOutput, RunError> {
        self.runner.run(program, args, DEFAULT_COMMAND_TIMEOUT)
    }

    pub fn run_with_timeout(
        &self,
        program: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<CommandOutput, RunError> {
        self.runner.run(program, args, timeout)
    }
}

#[cfg(test)]
mod tests;
