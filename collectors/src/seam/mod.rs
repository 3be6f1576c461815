//! The one seam between collectors and the host: a root directory and a command runner.

mod runner;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use runner::{
    CommandOutput, CommandRunner, RecordedRunner, RunError, SystemRunner, DEFAULT_COMMAND_TIMEOUT,
};

/// Files larger than this are refused rather than read into memory.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReadError {
    #[error("{path}: not found")]
    NotFound { path: String },
    #[error("{path}: permission denied")]
    PermissionDenied { path: String },
    #[error("{path}: larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

impl ReadError {
    fn from_io(path: &Path, err: std::io::Error) -> Self {
        let path = path.display().to_string();
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
        Self { root, live, runner }
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
        if self.live {
            return PathBuf::from("/").join(path.trim_start_matches('/'));
        }
        resolve_in_root(&self.root, Path::new(path))
    }

    /// Reads a whole file under the root, refusing files over [`MAX_FILE_BYTES`].
    pub fn read(&self, path: &str) -> Result<Vec<u8>, ReadError> {
        self.read_limited(path, MAX_FILE_BYTES)
    }

    /// Reads a whole file under the root, refusing files over `limit` bytes.
    pub fn read_limited(&self, path: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
        let full = self.path(path);
        // A link left unresolved (a loop, too many hops) would be followed by open() against
        // the machine's own root: refuse it when reading a tree.
        if !self.is_live() && full.is_symlink() {
            return Err(ReadError::Io {
                path: full.display().to_string(),
                message: "too many levels of symbolic links".to_string(),
            });
        }
        let file = std::fs::File::open(&full).map_err(|e| ReadError::from_io(&full, e))?;
        let mut buf = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| ReadError::from_io(&full, e))?;
        if buf.len() as u64 > limit {
            return Err(ReadError::TooLarge {
                path: full.display().to_string(),
                limit,
            });
        }
        Ok(buf)
    }

    /// Reads a file as text; invalid UTF-8 is an error, not silently replaced.
    pub fn read_to_string(&self, path: &str) -> Result<String, ReadError> {
        let bytes = self.read(path)?;
        String::from_utf8(bytes).map_err(|_| ReadError::Io {
            path: self.path(path).display().to_string(),
            message: "not valid UTF-8 text".to_string(),
        })
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
