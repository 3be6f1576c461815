//! The checks: small typed functions from one collector's facts (and the policy) to an outcome.
//!
//! Each collector has a checks module here, generated from the registry
//! ([`evidence_protocol::for_each_collector!`]), exporting the same three items: `CHECKS` (its
//! checks), `MAPPINGS` (their links to controls, `data/checks/<collector>.toml`) and `Settings`
//! (its section of the [`Policy`], [`crate::policy::NoSettings`] when it has none). The
//! [`Evaluator`], [`all`] and the mapping files are generated from the same list.

#[macro_use]
mod need;

use evidence_protocol::{CollectorName, Facts, Observation};

use crate::{Outcome, Policy};

macro_rules! checks {
    ($($name:ident => $variant:ident($facts:ident),)*) => {
        $(pub mod $name;)*

        /// A check function over one collector's facts.
        #[derive(Clone, Copy)]
        pub enum Evaluator {
            $($variant(fn(&evidence_protocol::facts::$facts, &Policy) -> Outcome),)*
        }

        impl Evaluator {
            /// The collector whose facts this check reads.
            pub fn collector_name(&self) -> CollectorName {
                match self {
                    $(Evaluator::$variant(_) => CollectorName::$variant,)*
                }
            }

            /// The outcome on `facts`, `None` when the collector is absent (not run).
            pub(crate) fn run(&self, facts: &Facts, policy: &Policy) -> Option<Outcome> {
                Some(match self {
                    $(Evaluator::$variant(f) => apply(facts.$name.as_ref()?, |x| f(x, policy)),)*
                })
            }
        }

        /// Every collector's checks, unsorted.
        fn every_collectors_checks() -> Vec<Check> {
            [$($name::CHECKS),*].concat()
        }

        /// Each collector's mapping file: (collector name, TOML text).
        pub(crate) const MAPPING_FILES: &[(&str, &str)] = &[$((stringify!($name), $name::MAPPINGS),)*];
    };
}

evidence_protocol::for_each_collector!(checks);

impl Evaluator {
    /// The collector whose facts this check reads, by name.
    pub fn collector(&self) -> &'static str {
        self.collector_name().as_str()
    }
}

/// The check's outcome on an observation: not-applicable and error observations become that
/// outcome, with the collector's reason.
fn apply<T>(observation: &Observation<T>, f: impl FnOnce(&T) -> Outcome) -> Outcome {
    match observation {
        Observation::Observed(value) => f(value),
        Observation::NotApplicable { reason } => Outcome::not_applicable(reason.clone()),
        Observation::Error { reason } => Outcome::error(reason.clone()),
    }
}

/// One check: a stable id (`<collector>.<what>`), a short title, and its function.
#[derive(Clone, Copy)]
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    pub evaluate: Evaluator,
}

/// Every check, sorted by id.
pub fn all() -> Vec<Check> {
    let mut checks = every_collectors_checks();
    checks.sort_by_key(|c| c.id);
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_id_starts_with_the_name_of_the_collector_it_reads() {
        for check in all() {
            let prefix = format!("{}.", check.evaluate.collector());
            assert!(check.id.starts_with(&prefix), "{}", check.id);
        }
    }
}
