//! Collectors: observe a host and turn what they see into [`evidence_protocol::Facts`].
//!
//! Every collector reads the host through one seam, [`Host`]: a root directory prefix (so a
//! collector can read a mounted image or a debootstrap tree instead of `/`) and a command runner
//! (so tests can replay recorded tool output). Parsing is pure and lives in each collector's own
//! module; only the thin runner touches the operating system. [`collect`] runs the selected
//! collectors, each under a timeout, and never panics: a collector that fails or hangs yields an
//! `Observation::Error` with its reason.
//!
//! The collector modules and the dispatch are generated from the registry
//! ([`evidence_protocol::for_each_collector!`]); each module exports `collect`, `READS` and
//! `PLATFORMS` ([`registry`]).

macro_rules! collector_modules {
    ($($name:ident => $variant:ident($facts:ident),)*) => {
        $(pub mod $name;)*
    };
}

evidence_protocol::for_each_collector!(collector_modules);

mod registry;
mod run;
mod seam;

pub use evidence_protocol::{CollectorName, UnknownCollector};
pub use registry::{collector, Collector, COLLECTORS};
pub use run::{collect, DEFAULT_COLLECTOR_TIMEOUT};
pub use seam::{
    caps, CappedFile, CommandOutput, CommandRunner, Host, ReadError, ReadLog, RecordedRunner,
    RunError, Source, SystemRunner,
};
