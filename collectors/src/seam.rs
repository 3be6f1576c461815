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
    fn run(&self, program: &str, args: &[&str], timeout: Duration)
        -> Result<CommandOutput, RunError>;
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

/// The host as collectors see it.
#[derive(Clone)]
pub struct Host {
    root: PathBuf,
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
        Self {
            root: root.into(),
            runner,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when the root is this machine's `/`, so live kernel state (block devices, the
    /// running ruleset, the running kernel) describes the same system as the files.
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/")
            || std::fs::canonicalize(&self.root).is_ok_and(|p| p == Path::new("/"))
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

    /// `path` (absolute, as on the host) under the root.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// Reads a whole file under the root, refusing files over [`MAX_FILE_BYTES`].
    pub fn read(&self, path: &str) -> Result<Vec<u8>, ReadError> {
        self.read_limited(path, MAX_FILE_BYTES)
    }

    /// Reads a whole file under the root, refusing files over `limit` bytes.
    pub fn read_limited(&self, path: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
        let full = self.path(path);
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
