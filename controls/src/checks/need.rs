//! `need`: the observed part of a collector's facts, or the outcome a check returns when that
//! part was not observed (`error` or `not_applicable`, with what was missing and why).
//!
//! Shared by the checks modules; the `need!` macro returns the outcome early from the check.

use evidence_protocol::Observation;

use crate::Outcome;

/// The observed value, or the outcome to return when the source was not observed.
pub(crate) fn need<'a, T>(observation: &'a Observation<T>, what: &str) -> Result<&'a T, Outcome> {
    match observation {
        Observation::Observed(value) => Ok(value),
        Observation::Error { reason } => Err(Outcome::error(format!("{what}: {reason}"))),
        Observation::NotApplicable { reason } => {
            Err(Outcome::not_applicable(format!("{what}: {reason}")))
        }
    }
}

/// `need!(facts.part, "what")`: the observed value, or `return` the outcome from the check.
macro_rules! need {
    ($observation:expr, $what:expr) => {
        match $crate::checks::need::need(&$observation, $what) {
            Ok(value) => value,
            Err(outcome) => return outcome,
        }
    };
}
