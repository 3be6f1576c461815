//! Running host tools: the real runner with a timeout, and a recorded one for tests.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wait_timeout::ChildExt;

/// Default limit for one external command.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

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
