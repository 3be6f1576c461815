//! Deep verification of the derived tables (`evidence-server verify-log --deep`): per host, the
//! current findings, the control status they give and the last finding transitions, compared
//! with what the host's latest signed full report gives under the policy in force now.
//!
//! Pure: the store gathers each host's derived state beside the verbatim bytes of its latest full
//! report ([`HostDerived`]), the service parses and evaluates those bytes, and [`compare_host`]
//! names every difference ([`Difference`], one line each through `Display`). Control status goes
//! through [`super::status::host_controls`], the server's one rule, computed once from the stored
//! findings and once from the recomputed ones, with staleness left out (both sides see the same
//! host at the same time; only the findings may differ).

use std::collections::BTreeMap;
use std::fmt;

use evidence_controls::OrgPolicy;
use serde::Serialize;

use super::records::NewFinding;
use super::rules::parse_status;
use super::status::{host_controls, CheckIndex, ControlStatus, HostState};

/// One check's verdict as a table keeps it: the status text (kept as stored, so a value that is
/// no status at all is shown, not read as an error) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CheckVerdict {
    pub check: String,
    pub status: String,
    pub reason: Option<String>,
}

impl CheckVerdict {
    fn verdict(&self) -> Verdict {
        Verdict {
            status: self.status.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// What the store keeps for one host, beside the signed report its derived tables follow from.
#[derive(Debug, Clone, PartialEq)]
pub struct HostDerived {
    pub host_id: String,
    pub revoked: bool,
    /// The log index `latest_facts` points at.
    pub latest_facts: Option<u64>,
    /// The host's latest `full` entry found by scanning the evidence log: index and verbatim bytes.
    pub latest_full: Option<(u64, Vec<u8>)>,
    /// `current_findings`, by check.
    pub findings: Vec<CheckVerdict>,
    /// The last row of `finding_transitions` per check, by check (`absent`: the check was removed).
    pub last_transitions: Vec<CheckVerdict>,
}

/// What the host's latest full report gives now.
#[derive(Debug, Clone, Copy)]
pub enum Recomputed<'a> {
    /// The findings its facts give under the policy in force.
    Findings(&'a [NewFinding]),
    /// The host has no full report: it should have no findings.
    NoFullReport,
    /// Its stored bytes are not a full report (`problem` says why): nothing to compare with.
    Unreadable { problem: &'a str },
}

/// A status and reason, shown as `fail ("reason")`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Verdict {
    pub status: String,
    pub reason: Option<String>,
}

impl From<&NewFinding> for Verdict {
    fn from(f: &NewFinding) -> Self {
        Self {
            status: f.status.as_str().to_string(),
            reason: f.reason.clone(),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.status)?;
        match &self.reason {
            Some(r) => write!(f, " ({r:?})"),
            None => Ok(()),
        }
    }
}

/// What differs on one host.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// `latest_facts` does not point at the host's latest full report in the log.
    LatestFacts {
        points_at: Option<u64>,
        latest_full: Option<u64>,
    },
    /// The latest full report's stored bytes are not a full report.
    UnreadableReport { log_index: u64, problem: String },
    /// The stored finding is not what the facts give.
    Finding {
        check: String,
        stored: Verdict,
        facts_give: Verdict,
    },
    /// The facts give a finding the store does not have.
    MissingFinding { check: String, facts_give: Verdict },
    /// The store has a finding the facts do not give.
    ExtraFinding { check: String, stored: Verdict },
    /// The control's status from the stored findings is not its status from the facts.
    Control {
        control: String,
        stored: ControlStatus,
        facts_give: ControlStatus,
    },
    /// The last finding transition of a check does not agree with its current finding
    /// (`None`: no transition recorded, or no current finding).
    Transition {
        check: String,
        last_transition: Option<Verdict>,
        current: Option<Verdict>,
    },
}

/// One difference: the host, whether it is revoked, and what differs.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Difference {
    pub host_id: String,
    pub revoked: bool,
    pub problem: Problem,
}

fn entry(i: Option<u64>) -> String {
    i.map_or_else(|| "no entry".to_string(), |i| format!("entry {i}"))
}

fn status_word(s: ControlStatus) -> &'static str {
    match s {
        ControlStatus::Pass => "pass",
        ControlStatus::Fail => "fail",
        ControlStatus::Unknown => "unknown",
        ControlStatus::NotApplicable => "not_applicable",
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host {}", self.host_id)?;
        if self.revoked {
            f.write_str(" (revoked)")?;
        }
        match &self.problem {
            Problem::LatestFacts {
                points_at,
                latest_full,
            } => write!(
                f,
                " latest_facts: points at {}, but the latest full report in the log is {}",
                entry(*points_at),
                entry(*latest_full)
            ),
            Problem::UnreadableReport { log_index, problem } => write!(
                f,
                " latest full report (entry {log_index}) is not a full report: {problem}"
            ),
            Problem::Finding {
                check,
                stored,
                facts_give,
            } => write!(
                f,
                " check {check}: stored {stored}, facts give {facts_give}"
            ),
            Problem::MissingFinding { check, facts_give } => {
                write!(
                    f,
                    " check {check}: no stored finding, facts give {facts_give}"
                )
            }
            Problem::ExtraFinding { check, stored } => {
                write!(f, " check {check}: stored {stored}, facts give no finding")
            }
            Problem::Control {
                control,
                stored,
                facts_give,
            } => write!(
                f,
                " control {control}: stored findings give {}, facts give {}",
                status_word(*stored),
                status_word(*facts_give)
            ),
            Problem::Transition {
                check,
                last_transition,
                current,
            } => {
                write!(f, " check {check}: last transition ")?;
                match last_transition {
                    Some(t) => write!(f, "{t}")?,
                    None => f.write_str("none recorded")?,
                }
                match current {
                    Some(c) => write!(f, ", current finding {c}"),
                    None => f.write_str(", no current finding"),
                }
            }
        }
    }
}

/// How much was compared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeepCounts {
    /// Hosts checked, revoked ones included.
    pub hosts: u64,
    pub revoked_hosts: u64,
    /// Hosts whose latest full report was evaluated again.
    pub reports_evaluated: u64,
    /// (host, check) pairs compared, stored or recomputed.
    pub findings: u64,
    /// (host, control) pairs compared.
    pub controls: u64,
    /// (host, check) pairs whose last transition was compared with the current finding.
    pub transitions: u64,
}

/// Every difference on one host between its derived tables and what its latest full report
/// gives (`recomputed`), in a fixed order: the `latest_facts` pointer, findings by check,
/// controls in catalog order, transitions by check. Adds what it compared to `counts`.
pub fn compare_host(
    host: &HostDerived,
    recomputed: Recomputed,
    index: &CheckIndex,
    policy: &OrgPolicy,
    counts: &mut DeepCounts,
) -> Vec<Difference> {
    let mut problems = Vec::new();
    counts.hosts += 1;
    counts.revoked_hosts += host.revoked as u64;
    let latest_full = host.latest_full.as_ref().map(|(i, _)| *i);
    if host.latest_facts != latest_full {
        problems.push(Problem::LatestFacts {
            points_at: host.latest_facts,
            latest_full,
        });
    }
    let fresh: &[NewFinding] = match recomputed {
        Recomputed::Findings(f) => {
            counts.reports_evaluated += 1;
            f
        }
        Recomputed::NoFullReport => &[],
        Recomputed::Unreadable { problem } => {
            problems.push(Problem::UnreadableReport {
                log_index: latest_full.unwrap_or_default(),
                problem: problem.to_string(),
            });
            return with_host(host, problems);
        }
    };
    problems.extend(finding_problems(&host.findings, fresh, counts));
    problems.extend(control_problems(host, fresh, index, policy, counts));
    problems.extend(transition_problems(
        &host.findings,
        &host.last_transitions,
        counts,
    ));
    with_host(host, problems)
}

fn with_host(host: &HostDerived, problems: Vec<Problem>) -> Vec<Difference> {
    problems
        .into_iter()
        .map(|problem| Difference {
            host_id: host.host_id.clone(),
            revoked: host.revoked,
            problem,
        })
        .collect()
}

/// Pairs two lists by check id, in check order.
fn by_check<'a, A, B>(
    a: impl IntoIterator<Item = (&'a str, A)>,
    b: impl IntoIterator<Item = (&'a str, B)>,
) -> BTreeMap<&'a str, (Option<A>, Option<B>)> {
    let mut out: BTreeMap<&str, (Option<A>, Option<B>)> = BTreeMap::new();
    for (k, v) in a {
        out.entry(k).or_insert((None, None)).0 = Some(v);
    }
    for (k, v) in b {
        out.entry(k).or_insert((None, None)).1 = Some(v);
    }
    out
}

fn finding_problems(
    stored: &[CheckVerdict],
    fresh: &[NewFinding],
    counts: &mut DeepCounts,
) -> Vec<Problem> {
    let pairs = by_check(
        stored.iter().map(|s| (s.check.as_str(), s.verdict())),
        fresh.iter().map(|f| (f.check.as_str(), Verdict::from(f))),
    );
    counts.findings += pairs.len() as u64;
    pairs
        .into_iter()
        .filter_map(|(check, pair)| {
            let check = check.to_string();
            match pair {
                (Some(stored), Some(facts_give)) if stored != facts_give => {
                    Some(Problem::Finding {
                        check,
                        stored,
                        facts_give,
                    })
                }
                (None, Some(facts_give)) => Some(Problem::MissingFinding { check, facts_give }),
                (Some(stored), None) => Some(Problem::ExtraFinding { check, stored }),
                _ => None,
            }
        })
        .collect()
}

/// The host's state for the status rule: never stale (see the module doc), findings as given.
fn state<'a>(
    findings: impl Iterator<Item = (&'a str, &'a str, Option<&'a str>)>,
    revoked: bool,
    index: &CheckIndex,
) -> HostState {
    let mut compact: Vec<_> = findings
        .filter_map(|(check, status, reason)| {
            let status = parse_status(status)?;
            Some((index.index(check)?, status, reason.map(|r| index.intern(r))))
        })
        .collect();
    compact.sort_by_key(|f| f.0);
    HostState {
        hostname: "".into(),
        last_seen: Some(0),
        revoked,
        findings: compact.into(),
    }
}

fn control_problems(
    host: &HostDerived,
    fresh: &[NewFinding],
    index: &CheckIndex,
    policy: &OrgPolicy,
    counts: &mut DeepCounts,
) -> Vec<Problem> {
    let stored = state(
        host.findings
            .iter()
            .map(|f| (f.check.as_str(), f.status.as_str(), f.reason.as_deref())),
        host.revoked,
        index,
    );
    let recomputed = state(
        fresh
            .iter()
            .map(|f| (f.check.as_str(), f.status.as_str(), f.reason.as_deref())),
        host.revoked,
        index,
    );
    // At time 0, seen at 0, never stale.
    let stored = host_controls(&stored, index, policy, 0, i64::MAX);
    let recomputed = host_controls(&recomputed, index, policy, 0, i64::MAX);
    counts.controls += index.controls.len() as u64;
    index
        .controls
        .iter()
        .zip(stored.into_iter().zip(recomputed))
        .filter(|(_, (s, r))| s.0 != r.0)
        .map(|(control, (s, r))| Problem::Control {
            control: control.clone(),
            stored: s.0,
            facts_give: r.0,
        })
        .collect()
}

fn transition_problems(
    current: &[CheckVerdict],
    last: &[CheckVerdict],
    counts: &mut DeepCounts,
) -> Vec<Problem> {
    let pairs = by_check(
        last.iter().map(|t| (t.check.as_str(), t.verdict())),
        current.iter().map(|c| (c.check.as_str(), c.verdict())),
    );
    counts.transitions += pairs.len() as u64;
    pairs
        .into_iter()
        .filter(|(_, pair)| match pair {
            (Some(t), Some(c)) => t != c,
            (Some(t), None) => t.status != "absent",
            (None, _) => true,
        })
        .map(|(check, (last_transition, current))| Problem::Transition {
            check: check.to_string(),
            last_transition,
            current,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use evidence_controls::Status;

    use super::*;

    const FW: &str = "firewall.inbound_default_deny";

    fn verdict(check: &str, status: &str, reason: Option<&str>) -> CheckVerdict {
        CheckVerdict {
            check: check.into(),
            status: status.into(),
            reason: reason.map(Into::into),
        }
    }

    fn fresh(check: &str, status: Status, reason: Option<&str>) -> NewFinding {
        NewFinding {
            check: check.into(),
            status,
            reason: reason.map(Into::into),
            evidence: "{}".into(),
        }
    }

    /// A host whose tables agree with `findings` (transitions included), from entry 4.
    fn agreeing(findings: &[NewFinding]) -> HostDerived {
        let verdicts: Vec<CheckVerdict> = findings
            .iter()
            .map(|f| verdict(&f.check, f.status.as_str(), f.reason.as_deref()))
            .collect();
        HostDerived {
            host_id: "h-3".into(),
            revoked: false,
            latest_facts: Some(4),
            latest_full: Some((4, b"{}".to_vec())),
            findings: verdicts.clone(),
            last_transitions: verdicts,
        }
    }

    fn compare(host: &HostDerived, findings: &[NewFinding]) -> (Vec<String>, DeepCounts) {
        let mut counts = DeepCounts::default();
        let lines = compare_host(
            host,
            Recomputed::Findings(findings),
            &CheckIndex::new(),
            &OrgPolicy::default(),
            &mut counts,
        )
        .iter()
        .map(ToString::to_string)
        .collect();
        (lines, counts)
    }

    #[test]
    fn agreeing_tables_have_no_difference_and_everything_is_counted() {
        let findings = [
            fresh(FW, Status::Fail, Some("no rules")),
            fresh("accounts.no_empty_passwords", Status::Pass, None),
        ];
        let (lines, counts) = compare(&agreeing(&findings), &findings);
        assert_eq!(lines, Vec::<String>::new());
        assert_eq!(
            (
                counts.hosts,
                counts.reports_evaluated,
                counts.findings,
                counts.transitions
            ),
            (1, 1, 2, 2)
        );
        assert_eq!(counts.controls, CheckIndex::new().controls.len() as u64);
    }

    #[test]
    fn a_changed_stored_status_is_named_with_the_control_it_changes() {
        let findings = [fresh(FW, Status::Fail, Some("no rules"))];
        let mut host = agreeing(&findings);
        host.findings[0] = verdict(FW, "pass", None);
        let (lines, _) = compare(&host, &findings);
        assert_eq!(
            lines[0],
            format!("host h-3 check {FW}: stored pass, facts give fail (\"no rules\")")
        );
        assert!(
            lines.iter().any(|l| l.starts_with("host h-3 control ")
                && l.ends_with(": stored findings give pass, facts give fail")),
            "{lines:#?}"
        );
        assert!(
            lines.contains(&format!(
                "host h-3 check {FW}: last transition fail (\"no rules\"), current finding pass"
            )),
            "{lines:#?}"
        );
    }

    #[test]
    fn missing_and_extra_findings_are_named() {
        let findings = [fresh(FW, Status::Pass, None)];
        let mut host = agreeing(&findings);
        host.findings = vec![verdict("accounts.no_empty_passwords", "error", Some("x"))];
        host.last_transitions = host.findings.clone();
        let (lines, _) = compare(&host, &findings);
        assert!(lines.contains(&"host h-3 check accounts.no_empty_passwords: stored error (\"x\"), facts give no finding".to_string()), "{lines:#?}");
        assert!(
            lines.contains(&format!(
                "host h-3 check {FW}: no stored finding, facts give pass"
            )),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_latest_facts_pointer_off_the_latest_full_report_is_named_for_a_revoked_host_too() {
        let mut host = agreeing(&[]);
        host.revoked = true;
        host.latest_facts = Some(2);
        let (lines, counts) = compare(&host, &[]);
        assert_eq!(
            lines,
            ["host h-3 (revoked) latest_facts: points at entry 2, but the latest full report in the log is entry 4"]
        );
        assert_eq!(counts.revoked_hosts, 1);
    }

    #[test]
    fn a_removed_check_needs_an_absent_transition_and_a_finding_needs_one() {
        let mut host = agreeing(&[]);
        host.last_transitions = vec![verdict(FW, "absent", None), verdict("a.b", "pass", None)];
        host.findings = vec![verdict("c.d", "pass", None)];
        let mut counts = DeepCounts::default();
        let problems = transition_problems(&host.findings, &host.last_transitions, &mut counts);
        assert_eq!(
            problems,
            [
                Problem::Transition {
                    check: "a.b".into(),
                    last_transition: Some(Verdict {
                        status: "pass".into(),
                        reason: None
                    }),
                    current: None,
                },
                Problem::Transition {
                    check: "c.d".into(),
                    last_transition: None,
                    current: Some(Verdict {
                        status: "pass".into(),
                        reason: None
                    }),
                },
            ]
        );
        assert_eq!(counts.transitions, 3);
    }

    #[test]
    fn unreadable_report_bytes_are_named_and_nothing_else_is_compared() {
        let host = agreeing(&[fresh(FW, Status::Pass, None)]);
        let mut counts = DeepCounts::default();
        let lines: Vec<String> = compare_host(
            &host,
            Recomputed::Unreadable {
                problem: "not JSON",
            },
            &CheckIndex::new(),
            &OrgPolicy::default(),
            &mut counts,
        )
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            lines,
            ["host h-3 latest full report (entry 4) is not a full report: not JSON"]
        );
        assert_eq!((counts.findings, counts.reports_evaluated), (0, 0));
    }
}
