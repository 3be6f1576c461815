//! Collectors: observe a host and turn what they see into [`evidence_protocol::Facts`].
//!
//! Every collector reads the host through one seam, [`Host`]: a root directory prefix (so a
//! collector can read a mounted image or a debootstrap tree instead of `/`) and a command runner
//! (so tests can replay recorded tool output). Parsing is pure and lives in each collector's own
//! module; only the thin runner touches the operating system. [`collect`] runs the selected
//! collectors, each under a timeout, and never panics: a collector that fails or hangs yields an
//! `Observation::Error` with its reason.

pub mod accounts;
pub mod disk_encryption;
pub mod firewall;
pub mod host_info;
pub mod patch_level;
mod run;
mod seam;

pub use run::{collect, CollectorName, UnknownCollector, DEFAULT_COLLECTOR_TIMEOUT};
pub use seam::{
    caps, CappedFile, CommandOutput, CommandRunner, Host, ReadError, RecordedRunner, RunError,
    SystemRunner,
};
