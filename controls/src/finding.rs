//! Findings: one check's verdict on one host, with the evidence behind it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    NotApplicable,
    /// The check could not be evaluated (unreadable file, missing tool...): never a pass.
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NotApplicable => "not_applicable",
            Status::Error => "error",
        }
    }
}

/// What a check function returns: the verdict, what was observed, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub status: Status,
    /// What was observed: the values compared and the offending items.
    pub evidence: Value,
    /// Why: required for `error` and `not_applicable`, a one-line summary for `fail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Outcome {
    pub fn pass(evidence: Value) -> Self {
        Self {
            status: Status::Pass,
            evidence,
            reason: None,
        }
    }

    pub fn fail(evidence: Value, reason: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            evidence,
            reason: Some(reason.into()),
        }
    }

    pub fn not_applicable(reason: impl Into<String>) -> Self {
        Self {
            status: Status::NotApplicable,
            evidence: Value::Null,
            reason: Some(reason.into()),
        }
    }

    pub fn error(reason: impl Into<String>) -> Self {
        Self {
            status: Status::Error,
            evidence: Value::Null,
            reason: Some(reason.into()),
        }
    }

    /// Pass when `ok`, otherwise fail with `reason`.
    pub fn pass_if(ok: bool, evidence: Value, reason: impl Into<String>) -> Self {
        if ok {
            Self::pass(evidence)
        } else {
            Self::fail(evidence, reason)
        }
    }
}

/// One check's verdict on one host, mapped to its ISO/IEC 27002:2022 controls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable check id, e.g. `firewall.inbound_default_deny`.
    pub check: String,
    pub title: String,
    pub status: Status,
    /// ISO/IEC 27002:2022 control ids, e.g. `["8.1", "8.20"]`, sorted.
    pub controls: Vec<String>,
    pub evidence: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
