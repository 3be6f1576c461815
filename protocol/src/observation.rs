//! One observed value, or why it could not be observed.

use serde::{Deserialize, Serialize};

/// What a collector (or one source inside it) saw.
///
/// `NotApplicable` is for facts that do not exist in the context, e.g. the live firewall ruleset
/// when the agent reads a mounted image with `--root`. `Error` is for facts that should exist but
/// could not be read (permission, corrupt file, tool missing or hung): checks turn it into an
/// `error` finding, never a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observation<T> {
    Observed(T),
    NotApplicable { reason: String },
    Error { reason: String },
}

impl<T> Observation<T> {
    pub fn error(reason: impl Into<String>) -> Self {
        Observation::Error {
            reason: reason.into(),
        }
    }

    pub fn not_applicable(reason: impl Into<String>) -> Self {
        Observation::NotApplicable {
            reason: reason.into(),
        }
    }

    pub fn observed(&self) -> Option<&T> {
        match self {
            Observation::Observed(value) => Some(value),
            _ => None,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Observation<U> {
        match self {
            Observation::Observed(value) => Observation::Observed(f(value)),
            Observation::NotApplicable { reason } => Observation::NotApplicable { reason },
            Observation::Error { reason } => Observation::Error { reason },
        }
    }
}

impl<T, E: std::fmt::Display> From<Result<T, E>> for Observation<T> {
    fn from(result: Result<T, E>) -> Self {
        match result {
            Ok(value) => Observation::Observed(value),
            Err(err) => Observation::error(err.to_string()),
        }
    }
}
