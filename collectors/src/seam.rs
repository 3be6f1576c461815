//! The one seam between collectors and the host: a root directory and a command runner.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wait_timeout::ChildExt;

/// Files larger than this are refused rather than read into memory.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Default limit for one external command.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

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

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RunError {
    #[error("{program}: not installed")]
    NotInstalled { program: String },
    #[error("{program}: timed out after {seconds}s")]
    TimedOut { program: String, seconds: u64 },
    #[error("{program}: {message}")]
    Failed { program: String, message: String },
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit code; `None` when killed by a signal.
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs a host tool. The real one is [`SystemRunner`]; tests use [`RecordedRunner`].
pub trait CommandRunner: Send + Sync {
    fn run(
        &self,
        program: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<CommandOutput, RunError>;
}

/// Runs commands on this machine, killing them when they outlive their timeout.
#[derive(Debug, Default, Clone)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(
        &self,
        program: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<CommandOutput, RunError> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("LC_ALL", "C")
            .spawn()
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::NotFound => RunError::NotInstalled {
                    program: program.to_string(),
                },
                _ => RunError::Failed {
                    program: program.to_string(),
                    message: err.to_string(),
                },
            })?;
        // Drain both pipes on their own threads so a chatty tool cannot block on a full pipe.
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let status = match child.wait_timeout(timeout) {
            Ok(Some(status)) => status,
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::TimedOut {
                    program: program.to_string(),
                    seconds: timeout.as_secs(),
                });
            }
            Err(err) => {
                return Err(RunError::Failed {
                    program: program.to_string(),
                    message: err.to_string(),
                })
            }
        };
        Ok(CommandOutput {
            status: status.code(),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        })
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// Replays recorded tool output, keyed by the full command line (`"nft -j list ruleset"`).
/// A command with no recording is reported as not installed.
#[derive(Debug, Default, Clone)]
pub struct RecordedRunner {
    outputs: Arc<Mutex<BTreeMap<String, Result<CommandOutput, RunError>>>>,
}

impl RecordedRunner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a successful run printing `stdout`.
    pub fn with_stdout(self, command_line: &str, stdout: impl Into<Vec<u8>>) -> Self {
        self.with_result(
            command_line,
            Ok(CommandOutput {
                status: Some(0),
                stdout: stdout.into(),
                stderr: Vec::new(),
            }),
        )
    }

    pub fn with_result(self, command_line: &str, result: Result<CommandOutput, RunError>) -> Self {
        self.outputs
            .lock()
            .expect("recorded runner lock")
            .insert(command_line.to_string(), result);
        self
    }
}

impl CommandRunner for RecordedRunner {
    fn run(
        &self,
        program: &str,
        args: &[&str],
        _timeout: Duration,
    ) -> Result<CommandOutput, RunError> {
        let mut line = program.to_string();
        for arg in args {
            line.push(' ');
            line.push_str(arg);
        }
        self.outputs
            .lock()
            .expect("recorded runner lock")
            .get(&line)
            .cloned()
            .unwrap_or_else(|| {
                Err(RunError::NotInstalled {
                    program: program.to_string(),
                })
            })
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
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("usr/lib/os-release"), "ID=tree\n").unwrap();
        dir
    }

    #[test]
    fn absolute_symlinks_in_a_tree_resolve_inside_the_tree() {
        let dir = tree();
        std::os::unix::fs::symlink("/usr/lib/os-release", dir.path().join("etc/os-release"))
            .unwrap();
        let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
        assert_eq!(host.read_to_string("/etc/os-release").unwrap(), "ID=tree\n");
    }

    #[test]
    fn relative_symlinks_cannot_climb_above_the_tree_root() {
        let dir = tree();
        std::os::unix::fs::symlink(
            "../../../../../../usr/lib/os-release",
            dir.path().join("etc/os-release"),
        )
        .unwrap();
        let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
        assert_eq!(
            host.path("/etc/os-release"),
            dir.path().join("usr/lib/os-release")
        );
    }

    #[test]
    fn symlink_loops_end_in_a_read_error_not_a_hang() {
        let dir = tree();
        std::os::unix::fs::symlink("/etc/b", dir.path().join("etc/a")).unwrap();
        std::os::unix::fs::symlink("/etc/a", dir.path().join("etc/b")).unwrap();
        let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
        assert!(host.read("/etc/a").is_err());
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = tree();
        std::fs::write(dir.path().join("etc/big"), vec![b'x'; 100]).unwrap();
        let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
        assert!(matches!(
            host.read_limited("/etc/big", 99),
            Err(ReadError::TooLarge { .. })
        ));
        assert_eq!(host.read_limited("/etc/big", 100).unwrap().len(), 100);
    }

    #[test]
    fn a_hung_command_is_killed_at_its_timeout() {
        let started = std::time::Instant::now();
        let result = SystemRunner.run("sleep", &["30"], Duration::from_millis(200));
        assert!(
            matches!(result, Err(RunError::TimedOut { .. })),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_missing_tool_is_reported_as_not_installed() {
        let result = SystemRunner.run("no-such-tool-evidence", &[], Duration::from_secs(1));
        assert!(
            matches!(result, Err(RunError::NotInstalled { .. })),
            "{result:?}"
        );
    }
}
