//! Control status per host and the fleet snapshot.
//!
//! Per host and control: `not_applicable` when the Statement of Applicability says so; else
//! `unknown` when the host is stale (missed `stale_after_intervals` report intervals) or never
//! reported, or no check evidences the control, or a check errored; else from the checks. That
//! rule is written once, in [`control_status`], and every view (a host's page, a control's page,
//! the snapshot now and on a past date) goes through it. A stale host never counts as passing.
//! Revoked hosts are left out.
//!
//! The current state lives in memory ([`Fleet`], compact: checks interned as indexes) so the
//! snapshot of 100,000 hosts is a scan, not a query; a past date (`?at=`) loads the state as of
//! then from the store's finding transitions and runs the same computation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use evidence_controls::Status;
use serde::Serialize;

use super::records::{HostFindings, NewFinding};
pub use evidence_controls::status::{control_status, ControlStatus, Verdicts};
use evidence_controls::OrgPolicy;

/// Why a host's findings do not count at a time, if they do not.
fn staleness(last_seen: Option<i64>, at: i64, stale_after_us: i64) -> Option<String> {
    match last_seen {
        None => Some("no report received yet".to_string()),
        Some(seen) if at - seen > stale_after_us => {
            Some(format!("stale: last report {}", crate::time::fmt(seen)))
        }
        _ => None,
    }
}

/// Whether a host's last report is too old (or missing) at `at`.
pub fn is_stale(last_seen: Option<i64>, at: i64, stale_after_us: i64) -> bool {
    last_seen.is_none_or(|s| at - s > stale_after_us)
}

/// Check ids and the controls each maps to, interned once; and the reason texts of findings,
/// interned as they arrive (a fleet repeats the same few reasons), so 100,000 hosts keep one
/// copy of each.
pub struct CheckIndex {
    pub checks: Vec<String>,
    by_id: HashMap<String, u16>,
    /// Controls in catalog order, and per check the indexes of its controls.
    pub controls: Vec<String>,
    check_controls: Vec<Vec<usize>>,
    reasons: std::sync::Mutex<(std::collections::HashSet<Arc<str>>, usize)>,
}

impl CheckIndex {
    /// The shared copy of a reason text. Texts no host uses any more are dropped whenever the
    /// set has doubled since the last sweep.
    pub fn intern(&self, reason: &str) -> Arc<str> {
        let mut guard = self.reasons.lock().expect("reasons lock");
        let (set, swept) = &mut *guard;
        if let Some(r) = set.get(reason) {
            return r.clone();
        }
        if set.len() >= (*swept * 2).max(1024) {
            set.retain(|r| Arc::strong_count(r) > 1);
            *swept = set.len();
        }
        let r: Arc<str> = reason.into();
        set.insert(r.clone());
        r
    }

    /// The real checks and their mapping data.
    pub fn new() -> Self {
        let mappings = evidence_controls::check_mappings();
        Self::from_checks(
            evidence_controls::checks::all()
                .iter()
                .map(|c| {
                    let controls = mappings
                        .get(c.id)
                        .map(|m| m.iso27002.iter().map(|l| l.control.clone()).collect())
                        .unwrap_or_default();
                    (c.id.to_string(), controls)
                })
                .collect(),
        )
    }

    /// An index over the given (check id, control ids) pairs (the benchmark builds a larger,
    /// synthetic one).
    pub fn from_checks(list: Vec<(String, Vec<String>)>) -> Self {
        let mut controls: Vec<String> = list.iter().flat_map(|(_, c)| c.iter().cloned()).collect();
        controls.sort_by(|a, b| evidence_controls::catalog::compare_control_ids(a, b));
        controls.dedup();
        let check_controls = list
            .iter()
            .map(|(_, cs)| {
                cs.iter()
                    .filter_map(|c| controls.iter().position(|x| x == c))
                    .collect()
            })
            .collect();
        let checks: Vec<String> = list.into_iter().map(|(c, _)| c).collect();
        let by_id = checks
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i as u16))
            .collect();
        Self {
            checks,
            by_id,
            controls,
            check_controls,
            reasons: Default::default(),
        }
    }

    pub fn index(&self, check: &str) -> Option<u16> {
        self.by_id.get(check).copied()
    }
}

impl Default for CheckIndex {
    fn default() -> Self {
        Self::new()
    }
}

/// One finding, compact: check index, verdict, and the reason when it is not a pass.
pub type CompactFinding = (u16, Status, Option<Arc<str>>);

/// One host's state, compact.
#[derive(Debug, Clone)]
pub struct HostState {
    pub hostname: Box<str>,
    pub last_seen: Option<i64>,
    pub revoked: bool,
    /// (check index, status, reason when not passing), sorted by check index.
    pub findings: Box<[CompactFinding]>,
}

impl HostState {
    pub fn from_store(h: &HostFindings, index: &CheckIndex) -> Self {
        let mut findings: Vec<_> = h
            .findings
            .iter()
            .filter_map(|(c, s, r)| {
                Some((
                    index.index(c)?,
                    *s,
                    if *s == Status::Pass {
                        None
                    } else {
                        r.as_deref().map(|r| index.intern(r))
                    },
                ))
            })
            .collect();
        findings.sort_by_key(|f| f.0);
        Self {
            hostname: h.hostname.as_str().into(),
            last_seen: h.last_seen,
            revoked: h.revoked,
            findings: findings.into(),
        }
    }

    pub fn set_findings(&mut self, new: &[NewFinding], index: &CheckIndex) {
        let mut findings: Vec<_> = new
            .iter()
            .filter_map(|f| {
                Some((
                    index.index(&f.check)?,
                    f.status,
                    if f.status == Status::Pass {
                        None
                    } else {
                        f.reason.as_deref().map(|r| index.intern(r))
                    },
                ))
            })
            .collect();
        findings.sort_by_key(|f| f.0);
        self.findings = findings.into();
    }
}

/// One failing (or unknown) host on a control.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HostReason {
    pub host_id: String,
    pub hostname: String,
    pub reason: String,
}

/// One control in the snapshot.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ControlSnapshot {
    pub control: String,
    pub title: Option<&'static str>,
    /// Hosts the control applies to (pass + fail + unknown).
    pub applicable_hosts: u64,
    pub passing: u64,
    pub failing: u64,
    pub unknown: u64,
    pub not_applicable: u64,
    /// passing / applicable_hosts, `null` when no host applies.
    pub share_passing: Option<f64>,
    /// Failing hosts with the reason, sorted by host id, at most `limit`.
    pub failing_hosts: Vec<HostReason>,
    pub failing_hosts_truncated: bool,
}

/// The fleet snapshot.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Snapshot {
    pub at: String,
    pub hosts: u64,
    pub stale_hosts: u64,
    pub controls: Vec<ControlSnapshot>,
}

/// Status of every indexed control on one host at `at` (see [`control_status`]), with the
/// reason when it is not a pass: the failing (or erroring) checks and their reasons.
pub fn host_controls(
    h: &HostState,
    index: &CheckIndex,
    policy: &OrgPolicy,
    at: i64,
    stale_after_us: i64,
) -> Vec<(ControlStatus, Option<String>)> {
    let stale = staleness(h.last_seen, at, stale_after_us);
    let mut per: Vec<Vec<(Status, &str, Option<&str>)>> = vec![Vec::new(); index.controls.len()];
    if stale.is_none() {
        for (c, s, r) in h.findings.iter() {
            for &ci in &index.check_controls[*c as usize] {
                per[ci].push((*s, index.checks[*c as usize].as_str(), r.as_deref()));
            }
        }
    }
    index
        .controls
        .iter()
        .zip(per)
        .map(|(control, checks)| {
            evidence_controls::status_with_reason(
                policy.not_applicable(control),
                stale.as_deref(),
                &checks,
            )
        })
        .collect()
}

/// Computes the snapshot over `hosts` at time `at` (microseconds).
pub fn snapshot<'a>(
    hosts: impl Iterator<Item = (&'a str, &'a HostState)>,
    index: &CheckIndex,
    policy: &OrgPolicy,
    at: i64,
    stale_after_us: i64,
    limit: usize,
) -> Snapshot {
    let n = index.controls.len();
    let excluded: Vec<bool> = index
        .controls
        .iter()
        .map(|c| policy.not_applicable(c).is_some())
        .collect();
    let mut counts = vec![[0u64; 4]; n];
    // Per control, the `limit` failing hosts with the smallest ids (a max-heap on host id).
    let mut listed: Vec<std::collections::BinaryHeap<(&'a str, usize)>> =
        vec![Default::default(); n];
    let mut host_list: Vec<&'a HostState> = Vec::new();
    let (mut total, mut stale) = (0u64, 0u64);
    let mut acc = vec![Verdicts::default(); n];
    // The same rule as `host_controls`, without allocating per host (the hot loop).
    for (host_id, h) in hosts {
        if h.revoked {
            continue;
        }
        total += 1;
        let is_stale = is_stale(h.last_seen, at, stale_after_us);
        stale += is_stale as u64;
        acc.fill(Verdicts::default());
        if !is_stale {
            for (c, st, _) in h.findings.iter() {
                for &ci in &index.check_controls[*c as usize] {
                    acc[ci].add(*st);
                }
            }
        }
        let host_slot = host_list.len();
        for ci in 0..n {
            let slot = match control_status(!excluded[ci], !is_stale, acc[ci]) {
                ControlStatus::Pass => 0,
                ControlStatus::Fail => 1,
                ControlStatus::Unknown => 2,
                ControlStatus::NotApplicable => 3,
            };
            counts[ci][slot] += 1;
            if slot == 1 && limit > 0 {
                let heap = &mut listed[ci];
                if heap.len() < limit {
                    heap.push((host_id, host_slot));
                } else if heap.peek().is_some_and(|top| host_id < top.0) {
                    heap.pop();
                    heap.push((host_id, host_slot));
                }
            }
        }
        host_list.push(h);
    }
    let controls = index
        .controls
        .iter()
        .enumerate()
        .map(|(ci, control)| {
            let [pass, fail, unknown, na] = counts[ci];
            let applicable = pass + fail + unknown;
            let mut chosen = std::mem::take(&mut listed[ci]).into_vec();
            chosen.sort();
            let failing_hosts = chosen
                .into_iter()
                .map(|(host_id, slot)| {
                    let h = host_list[slot];
                    let reason = host_controls(h, index, policy, at, stale_after_us)
                        .swap_remove(ci)
                        .1;
                    HostReason {
                        host_id: host_id.to_string(),
                        hostname: h.hostname.to_string(),
                        reason: reason.unwrap_or_default(),
                    }
                })
                .collect();
            ControlSnapshot {
                control: control.clone(),
                title: evidence_controls::catalog::control(control).map(|c| c.title.as_str()),
                applicable_hosts: applicable,
                passing: pass,
                failing: fail,
                unknown,
                not_applicable: na,
                share_passing: (applicable > 0).then(|| pass as f64 / applicable as f64),
                failing_hosts,
                failing_hosts_truncated: fail as usize > limit,
            }
        })
        .collect();
    Snapshot {
        at: crate::time::fmt(at),
        hosts: total,
        stale_hosts: stale,
        controls,
    }
}

/// One control's status on one host, with the reason when it is not a pass.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ControlView {
    pub status: ControlStatus,
    pub reason: Option<String>,
}

/// Per-host control statuses by control id (for the host page).
pub fn host_control_map(
    h: &HostState,
    index: &CheckIndex,
    policy: &OrgPolicy,
    at: i64,
    stale_after_us: i64,
) -> BTreeMap<String, ControlView> {
    index
        .controls
        .iter()
        .zip(host_controls(h, index, policy, at, stale_after_us))
        .map(|(c, (status, reason))| (c.clone(), ControlView { status, reason }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use evidence_controls::Applicability;

    fn host(last_seen: Option<i64>, findings: &[(&str, Status)], index: &CheckIndex) -> HostState {
        let mut f: Vec<_> = findings
            .iter()
            .map(|(c, s)| (index.index(c).unwrap(), *s, Some("r".into())))
            .collect();
        f.sort_by_key(|x| x.0);
        HostState {
            hostname: "h".into(),
            last_seen,
            revoked: false,
            findings: f.into(),
        }
    }

    const FW: &str = "firewall.inbound_default_deny";

    fn verdicts(statuses: &[Status]) -> Verdicts {
        let mut v = Verdicts::default();
        statuses.iter().for_each(|s| v.add(*s));
        v
    }

    #[test]
    fn a_fail_outranks_an_error_an_error_is_never_a_pass_and_stale_or_excluded_decide_first() {
        use Status::*;
        let rule = |s: &[Status]| control_status(true, true, verdicts(s));
        assert_eq!(rule(&[Pass, Fail, Error]), ControlStatus::Fail);
        assert_eq!(rule(&[Pass, Error]), ControlStatus::Unknown);
        assert_eq!(rule(&[Pass, NotApplicable]), ControlStatus::Pass);
        assert_eq!(rule(&[NotApplicable]), ControlStatus::NotApplicable);
        assert_eq!(rule(&[]), ControlStatus::Unknown);
        assert_eq!(
            control_status(true, false, verdicts(&[Pass])),
            ControlStatus::Unknown
        );
        assert_eq!(
            control_status(false, false, verdicts(&[Fail])),
            ControlStatus::NotApplicable
        );
    }

    #[test]
    fn a_hosts_page_and_the_snapshot_agree_on_every_control() {
        let index = CheckIndex::new();
        let policy = OrgPolicy::default();
        let h = host(
            Some(0),
            &[
                (FW, Status::Fail),
                ("accounts.no_empty_passwords", Status::Error),
            ],
            &index,
        );
        let per_host = host_controls(&h, &index, &policy, 10, 100);
        let snap = snapshot([("a", &h)].into_iter(), &index, &policy, 10, 100, 10);
        for ((status, _), c) in per_host.iter().zip(&snap.controls) {
            let counted = match status {
                ControlStatus::Pass => c.passing,
                ControlStatus::Fail => c.failing,
                ControlStatus::Unknown => c.unknown,
                ControlStatus::NotApplicable => c.not_applicable,
            };
            assert_eq!(counted, 1, "control {}", c.control);
        }
    }

    #[test]
    fn a_passing_host_that_went_stale_is_unknown_and_never_passing() {
        let index = CheckIndex::new();
        let policy = OrgPolicy::default();
        let h = host(Some(0), &[(FW, Status::Pass)], &index);
        let fresh = snapshot([("a", &h)].into_iter(), &index, &policy, 10, 100, 10);
        let c = fresh.controls.iter().find(|c| c.control == "8.20").unwrap();
        assert_eq!((c.passing, c.unknown), (1, 0));
        let stale = snapshot([("a", &h)].into_iter(), &index, &policy, 1_000, 100, 10);
        let c = stale.controls.iter().find(|c| c.control == "8.20").unwrap();
        assert_eq!((c.passing, c.unknown, stale.stale_hosts), (0, 1, 1));
        assert_eq!(c.share_passing, Some(0.0));
    }

    #[test]
    fn the_statement_of_applicability_and_errors_decide_before_checks_and_failures_list_the_host() {
        let index = CheckIndex::new();
        let mut policy = OrgPolicy::default();
        policy.applicability.insert(
            "8.22".into(),
            Applicability {
                applicable: false,
                justification: "flat".into(),
            },
        );
        let failing = host(Some(0), &[(FW, Status::Fail)], &index);
        let erroring = host(Some(0), &[(FW, Status::Error)], &index);
        let never = host(None, &[], &index);
        let s = snapshot(
            [("a", &failing), ("b", &erroring), ("c", &never)].into_iter(),
            &index,
            &policy,
            1,
            100,
            10,
        );
        let c820 = s.controls.iter().find(|c| c.control == "8.20").unwrap();
        assert_eq!((c820.passing, c820.failing, c820.unknown), (0, 1, 2));
        assert_eq!(c820.failing_hosts[0].host_id, "a");
        let c822 = s.controls.iter().find(|c| c.control == "8.22").unwrap();
        assert_eq!(
            (
                c822.not_applicable,
                c822.applicable_hosts,
                c822.share_passing
            ),
            (3, 0, None)
        );
    }

    #[test]
    fn failing_host_lists_are_truncated_to_the_limit_in_host_order() {
        let index = CheckIndex::new();
        let policy = OrgPolicy::default();
        let hosts: Vec<(String, HostState)> = (0..5)
            .map(|i| {
                (
                    format!("h{i}"),
                    host(Some(0), &[(FW, Status::Fail)], &index),
                )
            })
            .collect();
        let s = snapshot(
            hosts.iter().rev().map(|(k, v)| (k.as_str(), v)),
            &index,
            &policy,
            1,
            100,
            2,
        );
        let c = s.controls.iter().find(|c| c.control == "8.20").unwrap();
        assert_eq!(c.failing, 5);
        assert!(c.failing_hosts_truncated);
        assert_eq!(
            c.failing_hosts
                .iter()
                .map(|h| h.host_id.as_str())
                .collect::<Vec<_>>(),
            ["h0", "h1"]
        );
    }
}
