//! [`Collector`]: each collector as the registry ([`evidence_protocol::for_each_collector!`])
//! declares it: its name, the host paths it reads, the platforms it supports and its entry point.
//!
//! Every collector module exports the same interface: `collect(&Host) -> Observation<Facts>`,
//! `READS: &[Source]` (every path it reads, relative to the root) and `PLATFORMS`.

use evidence_protocol::{CollectorName, Facts, Observation, Platform};

use crate::{Host, Source};

/// One collector of this build.
#[derive(Debug, Clone, Copy)]
pub struct Collector {
    pub name: CollectorName,
    /// Every host path the collector reads; the agent watches the [`Source::Watched`] ones.
    pub reads: &'static [Source],
    /// The operating systems it can observe.
    pub platforms: &'static [Platform],
    run: fn(&Host) -> Facts,
}

impl Collector {
    /// Observes `host`: facts holding this collector's observation and no other.
    pub fn collect(&self, host: &Host) -> Facts {
        (self.run)(host)
    }
}

/// Runs `collect` on a supported platform; elsewhere the facts are not applicable.
fn on_platform<T>(
    name: &str,
    platforms: &[Platform],
    collect: impl FnOnce() -> Observation<T>,
) -> Observation<T> {
    match Platform::current() {
        Some(platform) if platforms.contains(&platform) => collect(),
        other => Observation::not_applicable(format!(
            "the {name} collector does not run on {}",
            other.map_or(std::env::consts::OS, Platform::as_str)
        )),
    }
}

macro_rules! collectors {
    ($($name:ident => $variant:ident($facts:ident),)*) => {
        /// Every collector, in registry order.
        pub const COLLECTORS: &[Collector] = &[$(Collector {
            name: CollectorName::$variant,
            reads: crate::$name::READS,
            platforms: crate::$name::PLATFORMS,
            run: |host| Facts {
                $name: Some(on_platform(stringify!($name), crate::$name::PLATFORMS, || {
                    crate::$name::collect(host)
                })),
                ..Facts::default()
            },
        },)*];
    };
}

evidence_protocol::for_each_collector!(collectors);

/// The collector of that name.
pub fn collector(name: CollectorName) -> &'static Collector {
    COLLECTORS
        .iter()
        .find(|c| c.name == name)
        .expect("the registry gives every name a collector")
}

#[cfg(test)]
mod tests;
