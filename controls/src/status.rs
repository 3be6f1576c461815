//! The one control-status rule: how a host's check verdicts on a control, its freshness and the
//! Statement of Applicability give the control's status. The server's every view and
//! `evidence-verify`'s re-evaluation call [`control_status`], so they cannot disagree.

use serde::{Deserialize, Serialize};

use crate::Status;

/// A control's status on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ControlStatus {
    Pass,
    Fail,
    NotApplicable,
    Unknown,
}

impl ControlStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ControlStatus::Pass => "pass",
            ControlStatus::Fail => "fail",
            ControlStatus::NotApplicable => "not_applicable",
            ControlStatus::Unknown => "unknown",
        }
    }
}

/// The set of check verdicts seen on one control of one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verdicts(u8);

impl Verdicts {
    fn bit(status: Status) -> u8 {
        match status {
            Status::Pass => 1,
            Status::Fail => 2,
            Status::Error => 4,
            Status::NotApplicable => 8,
        }
    }

    pub fn add(&mut self, status: Status) {
        self.0 |= Self::bit(status);
    }

    pub fn contains(self, status: Status) -> bool {
        self.0 & Self::bit(status) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// THE control-status rule, used by every view. Not applicable by the Statement of
/// Applicability; else unknown when the host's evidence is not fresh or no check evidences the
/// control; else any failing check fails it; else an erroring check makes it unknown (an error is
/// never a pass nor a fail); else any pass passes it; else (every check not applicable) it is
/// not applicable.
pub fn control_status(applicable: bool, fresh: bool, verdicts: Verdicts) -> ControlStatus {
    if !applicable {
        ControlStatus::NotApplicable
    } else if !fresh || verdicts.is_empty() {
        ControlStatus::Unknown
    } else if verdicts.contains(Status::Fail) {
        ControlStatus::Fail
    } else if verdicts.contains(Status::Error) {
        ControlStatus::Unknown
    } else if verdicts.contains(Status::Pass) {
        ControlStatus::Pass
    } else {
        ControlStatus::NotApplicable
    }
}

/// A control's status on one host and why, when it is not a pass: the Statement of
/// Applicability's justification, the staleness, "no evidence", or the failing (erroring, not
/// applicable) checks with their reasons. `justification` is set when the control is declared
/// not applicable; `stale` when the host's evidence does not count; `checks` are the verdicts,
/// check ids and reasons of the checks that evidence the control (empty when stale).
pub fn status_with_reason(
    justification: Option<&str>,
    stale: Option<&str>,
    checks: &[(Status, &str, Option<&str>)],
) -> (ControlStatus, Option<String>) {
    let mut verdicts = Verdicts::default();
    checks.iter().for_each(|c| verdicts.add(c.0));
    let status = control_status(justification.is_none(), stale.is_none(), verdicts);
    let reasons = |want: Status| {
        checks
            .iter()
            .filter(|c| c.0 == want)
            .map(|(_, check, reason)| format!("{check}: {}", reason.unwrap_or(want.as_str())))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let reason = match (status, justification, stale) {
        (ControlStatus::NotApplicable, Some(j), _) => {
            Some(format!("statement of applicability: {j}"))
        }
        (ControlStatus::Unknown, _, Some(stale)) => Some(stale.to_string()),
        (ControlStatus::Unknown, _, None) if checks.is_empty() => Some("no evidence".into()),
        (ControlStatus::Unknown, _, None) => Some(reasons(Status::Error)),
        (ControlStatus::Fail, _, _) => Some(reasons(Status::Fail)),
        (ControlStatus::NotApplicable, None, _) => Some(reasons(Status::NotApplicable)),
        (ControlStatus::Pass, _, _) => None,
    };
    (status, reason)
}
