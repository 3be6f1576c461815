//! The one derivation of an evidence bundle's findings and control-status rows
//! (`findings.json`, `status.json`) from the signed entries it holds: each host's reports and
//! the policy versions from the log. The server's exporter writes the rows it returns and
//! `evidence-verify` runs it again over the bundle's entries and compares row by row, so the
//! two cannot disagree on the rule.
//!
//! The semantics mirror the server's host page (`server::domain::status::host_controls`): the
//! findings of the host's latest full report evaluated under the policy in force, mapped onto
//! controls by [`crate::check_mappings`]; a host whose latest report is older than the freshness
//! bound (or that never reported) is `unknown` on every applicable control; the Statement of
//! Applicability decides first; then [`crate::control_status`].
//!
//! Also [`catalog_identity`]: which catalog, crosswalk and mappings a computation used.

use std::collections::{BTreeMap, BTreeSet};

use evidence_protocol::bundle::{
    CatalogIdentity, CheckVerdict, ControlVerdict, FindingRow, StatusRow,
};
use evidence_protocol::log_entry::format_micros;
use evidence_protocol::{Digest, Report};

use crate::{evaluate, status_with_reason, ControlStatus, OrgPolicy, Status};

impl From<Status> for CheckVerdict {
    fn from(s: Status) -> Self {
        match s {
            Status::Pass => CheckVerdict::Pass,
            Status::Fail => CheckVerdict::Fail,
            Status::Error => CheckVerdict::Error,
            Status::NotApplicable => CheckVerdict::NotApplicable,
        }
    }
}

impl From<ControlStatus> for ControlVerdict {
    fn from(s: ControlStatus) -> Self {
        match s {
            ControlStatus::Pass => ControlVerdict::Pass,
            ControlStatus::Fail => ControlVerdict::Fail,
            ControlStatus::NotApplicable => ControlVerdict::NotApplicable,
            ControlStatus::Unknown => ControlVerdict::Unknown,
        }
    }
}

/// The embedded catalog (`data/iso27002_2022.toml`), as `catalog` embeds it.
const CATALOG_TOML: &str = include_str!("../data/iso27002_2022.toml");
/// The embedded crosswalks (`data/crosswalks.toml`).
const CROSSWALKS_TOML: &str = include_str!("../data/crosswalks.toml");

/// This build's catalog: the crate version and the SHA-256 over the embedded catalog, the
/// crosswalks and every `data/checks/*.toml` mapping file (by name), each part framed as
/// `<path>\n<byte length>\n<bytes>` so no two sets of files give the same digest.
pub fn catalog_identity() -> CatalogIdentity {
    let mut files: Vec<(String, &str)> = vec![
        ("data/iso27002_2022.toml".into(), CATALOG_TOML),
        ("data/crosswalks.toml".into(), CROSSWALKS_TOML),
    ];
    let mut checks: Vec<(String, &str)> = crate::checks::MAPPING_FILES
        .iter()
        .map(|(name, text)| (format!("data/checks/{name}.toml"), *text))
        .collect();
    checks.sort();
    files.extend(checks);
    let mut framed = Vec::new();
    for (path, text) in &files {
        framed.extend_from_slice(format!("{path}\n{}\n", text.len()).as_bytes());
        framed.extend_from_slice(text.as_bytes());
    }
    CatalogIdentity {
        version: env!("CARGO_PKG_VERSION").to_string(),
        digest: Digest::of(&framed),
    }
}

/// One report entry of a bundle (a full report or an attestation), already parsed.
#[derive(Debug, Clone, Copy)]
pub struct ReportEvidence<'a> {
    pub log_index: u64,
    /// The entry's host (the verifier has checked the report names the same).
    pub host_id: &'a str,
    pub received_at: i64,
    /// SHA-256 of the report's bytes.
    pub digest: Digest,
    pub report: &'a Report,
}

/// One policy entry of the log, parsed.
#[derive(Debug, Clone, Copy)]
pub struct PolicyEvidence<'a> {
    pub log_index: u64,
    pub received_at: i64,
    pub policy: &'a OrgPolicy,
}

/// What the rows are derived from.
#[derive(Debug, Clone, Copy)]
pub struct Derivation<'a> {
    /// The hosts to give status rows: every host with a key_event or report entry in the bundle.
    pub hosts: &'a BTreeSet<String>,
    /// Every report entry in the bundle, any order.
    pub reports: &'a [ReportEvidence<'a>],
    /// Every policy entry in the bundle, any order.
    pub policies: &'a [PolicyEvidence<'a>],
    /// The selected controls (`manifest.selection.controls`); empty means all.
    pub controls: &'a [String],
    /// `manifest.period.to`, microseconds.
    pub to: i64,
    /// `manifest.stale_after_secs`.
    pub stale_after_secs: u64,
}

/// The derived rows, sorted: findings by (host, check), status by (host, control in catalog
/// order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedRows {
    pub findings: Vec<FindingRow>,
    pub status: Vec<StatusRow>,
}

/// The policy in force at `to`: the policy entry with the latest `received_at <= to` (the
/// highest log index among equal times); `None`: none yet, the default policy applies.
pub fn policy_at<'a>(policies: &[PolicyEvidence<'a>], to: i64) -> Option<PolicyEvidence<'a>> {
    policies
        .iter()
        .filter(|p| p.received_at <= to)
        .max_by_key(|p| (p.received_at, p.log_index))
        .copied()
}

/// The controls that get a status row under `policy`: the selected ones, or else every control
/// a check maps to plus those the Statement of Applicability declares not applicable; in
/// catalog order.
pub fn status_controls(policy: &OrgPolicy, selected: &[String]) -> Vec<String> {
    let mut controls: Vec<String> = if selected.is_empty() {
        let mappings = crate::check_mappings();
        crate::checks::all()
            .iter()
            .filter_map(|c| mappings.get(c.id))
            .flat_map(|m| m.iso27002.iter().map(|l| l.control.clone()))
            .chain(
                policy
                    .applicability
                    .iter()
                    .filter(|(_, a)| !a.applicable)
                    .map(|(c, _)| c.clone()),
            )
            .collect()
    } else {
        selected.to_vec()
    };
    controls.sort_by(|a, b| crate::catalog::compare_control_ids(a, b));
    controls.dedup();
    controls
}

/// Derives the findings and status rows as of `to` (see the module doc).
///
/// Per host: the latest report of any kind with `received_at <= to` decides freshness
/// (`to - received_at <= stale_after`); the latest *full* report at or before `to` gives the
/// facts (an attestation says the previous full report still holds, which the verifier checks
/// separately), evaluated with [`policy_at`]`(to)`. With a control selection, only findings of
/// checks mapped to a selected control are kept.
pub fn derive_rows(d: &Derivation<'_>) -> DerivedRows {
    let in_force = policy_at(d.policies, d.to);
    let default_policy = OrgPolicy::default();
    let policy = in_force.map_or(&default_policy, |p| p.policy);
    let policy_log_index = in_force.map(|p| p.log_index);
    let controls = status_controls(policy, d.controls);
    let selected: BTreeSet<&str> = d.controls.iter().map(String::as_str).collect();
    let stale_after_us =
        i64::try_from(d.stale_after_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX);

    let mut latest: BTreeMap<&str, &ReportEvidence<'_>> = BTreeMap::new();
    let mut latest_full: BTreeMap<&str, &ReportEvidence<'_>> = BTreeMap::new();
    for r in d.reports.iter().filter(|r| r.received_at <= d.to) {
        let newer = |old: &&ReportEvidence<'_>| {
            (r.received_at, r.log_index) > (old.received_at, old.log_index)
        };
        if latest.get(r.host_id).is_none_or(newer) {
            latest.insert(r.host_id, r);
        }
        if r.report.facts().is_some() && latest_full.get(r.host_id).is_none_or(newer) {
            latest_full.insert(r.host_id, r);
        }
    }

    let mut findings = Vec::new();
    let mut status = Vec::new();
    for host in d.hosts {
        let last = latest.get(host.as_str());
        let stale = match last {
            None => Some("no report received yet".to_string()),
            Some(r) if d.to.saturating_sub(r.received_at) > stale_after_us => Some(format!(
                "stale: last report {}",
                format_micros(r.received_at)
            )),
            Some(_) => None,
        };
        let mut host_findings = Vec::new();
        if let Some(full) = latest_full.get(host.as_str()) {
            if let Some(facts) = full.report.facts() {
                for f in evaluate(facts, &policy.checks) {
                    if !selected.is_empty()
                        && !f.controls.iter().any(|c| selected.contains(c.as_str()))
                    {
                        continue;
                    }
                    findings.push(FindingRow {
                        host_id: host.clone(),
                        check: f.check.clone(),
                        status: f.status.into(),
                        reason: f.reason.clone(),
                        log_index: full.log_index,
                        report_digest: full.digest,
                        policy_log_index,
                    });
                    host_findings.push(f);
                }
            }
        }
        for control in &controls {
            // The checks evidencing this control, only when the host is fresh.
            let checks: Vec<(Status, &str, Option<&str>)> = if stale.is_none() {
                host_findings
                    .iter()
                    .filter(|f| f.controls.iter().any(|c| c == control))
                    .map(|f| (f.status, f.check.as_str(), f.reason.as_deref()))
                    .collect()
            } else {
                Vec::new()
            };
            let (s, reason) =
                status_with_reason(policy.not_applicable(control), stale.as_deref(), &checks);
            status.push(StatusRow {
                host_id: host.clone(),
                control: control.clone(),
                status: s.into(),
                reason,
                log_index: last.map(|r| r.log_index),
                report_digest: last.map(|r| r.digest),
            });
        }
    }
    findings.sort_by(|a, b| (&a.host_id, &a.check).cmp(&(&b.host_id, &b.check)));
    DerivedRows { findings, status }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use evidence_protocol::facts::firewall::{FamilyVerdict, FirewallFacts, InboundFacts};
    use evidence_protocol::{Facts, Observation, ReportKind};

    use super::*;
    use crate::Applicability;

    const HOUR: i64 = 3_600_000_000;
    const FW: &str = "firewall.inbound_default_deny";

    fn facts(default_deny: bool) -> Facts {
        let family = FamilyVerdict {
            default_deny,
            ..FamilyVerdict::default()
        };
        Facts {
            firewall: Some(Observation::Observed(FirewallFacts {
                inbound: Observation::Observed(InboundFacts {
                    ipv4: family.clone(),
                    ipv6: family,
                    ..InboundFacts::default()
                }),
                ufw: Observation::not_applicable("not installed"),
                firewalld: Observation::not_applicable("not installed"),
            })),
            ..Facts::default()
        }
    }

    fn report(seq: u64, kind: ReportKind) -> Report {
        Report {
            host_id: "h1".into(),
            key_id: "k".into(),
            seq,
            prev_digest: None,
            collected_at: "2026-01-01T00:00:00Z".parse().expect("a time"),
            agent_version: "0.1.0".into(),
            collector_versions: BTreeMap::new(),
            dropped_reports: 0,
            kind,
            witnessed: None,
        }
    }

    fn evidence<'a>(log_index: u64, at: i64, report: &'a Report) -> ReportEvidence<'a> {
        ReportEvidence {
            log_index,
            host_id: "h1",
            received_at: at,
            digest: Digest::of(&report.to_bytes()),
            report,
        }
    }

    fn hosts() -> BTreeSet<String> {
        BTreeSet::from(["h1".to_string(), "h2".to_string()])
    }

    fn row<'a>(rows: &'a DerivedRows, host: &str, control: &str) -> &'a StatusRow {
        rows.status
            .iter()
            .find(|r| r.host_id == host && r.control == control)
            .expect("a status row")
    }

    #[test]
    fn the_catalog_identity_is_the_crate_version_and_a_digest_over_every_embedded_file() {
        let id = catalog_identity();
        assert_eq!(id.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(id, catalog_identity());
        assert_ne!(id.digest, Digest::of(CATALOG_TOML.as_bytes()));
    }

    #[test]
    fn a_fresh_host_gets_its_latest_full_reports_findings_and_a_host_without_reports_is_unknown() {
        let old = report(1, ReportKind::Full { facts: facts(true) });
        let new = report(
            2,
            ReportKind::Full {
                facts: facts(false),
            },
        );
        let reports = [evidence(3, HOUR, &old), evidence(5, 2 * HOUR, &new)];
        let rows = derive_rows(&Derivation {
            hosts: &hosts(),
            reports: &reports,
            policies: &[],
            controls: &[],
            to: 3 * HOUR,
            stale_after_secs: 7200,
        });
        let fw = rows
            .findings
            .iter()
            .find(|f| f.check == FW)
            .expect("the firewall finding");
        assert_eq!(
            (fw.status, fw.log_index, fw.policy_log_index),
            (CheckVerdict::Fail, 5, None)
        );
        assert!(rows.findings.iter().all(|f| f.host_id == "h1"));
        let c820 = row(&rows, "h1", "8.20");
        assert_eq!(c820.status, ControlVerdict::Fail);
        assert!(
            c820.reason.as_deref().is_some_and(|r| r.starts_with(FW)),
            "{:?}",
            c820.reason
        );
        assert_eq!(c820.log_index, Some(5));
        let never = row(&rows, "h2", "8.20");
        assert_eq!(
            (never.status, never.reason.as_deref(), never.log_index),
            (
                ControlVerdict::Unknown,
                Some("no report received yet"),
                None
            )
        );
        let mut sorted = rows.findings.clone();
        sorted.sort_by(|a, b| (&a.host_id, &a.check).cmp(&(&b.host_id, &b.check)));
        assert_eq!(sorted, rows.findings);
    }

    #[test]
    fn a_stale_host_is_unknown_on_every_applicable_control_even_when_passing() {
        let full = report(1, ReportKind::Full { facts: facts(true) });
        let reports = [evidence(0, 0, &full)];
        let rows = derive_rows(&Derivation {
            hosts: &BTreeSet::from(["h1".to_string()]),
            reports: &reports,
            policies: &[],
            controls: &[],
            to: 3 * HOUR,
            stale_after_secs: 3600,
        });
        assert!(rows
            .findings
            .iter()
            .any(|f| f.check == FW && f.status == CheckVerdict::Pass));
        for r in &rows.status {
            assert_eq!(r.status, ControlVerdict::Unknown, "{}", r.control);
            assert!(r
                .reason
                .as_deref()
                .is_some_and(|x| x.starts_with("stale: last report")));
        }
    }

    #[test]
    fn an_attestation_keeps_the_host_fresh_on_the_facts_of_its_full_report() {
        let full = report(1, ReportKind::Full { facts: facts(true) });
        let still = report(
            2,
            ReportKind::Attestation {
                still_holds: Digest::of(&full.to_bytes()),
            },
        );
        let reports = [evidence(0, 0, &full), evidence(4, 3 * HOUR, &still)];
        let rows = derive_rows(&Derivation {
            hosts: &BTreeSet::from(["h1".to_string()]),
            reports: &reports,
            policies: &[],
            controls: &[],
            to: 3 * HOUR,
            stale_after_secs: 3600,
        });
        let c820 = row(&rows, "h1", "8.20");
        assert_eq!(
            (c820.status, c820.log_index),
            (ControlVerdict::Pass, Some(4))
        );
        assert!(rows.findings.iter().all(|f| f.log_index == 0));
    }

    #[test]
    fn the_policy_in_force_at_to_decides_and_its_not_applicable_controls_get_rows() {
        let full = report(
            1,
            ReportKind::Full {
                facts: facts(false),
            },
        );
        let reports = [evidence(2, HOUR, &full)];
        let mut excluded = OrgPolicy::default();
        for control in ["8.20", "5.1"] {
            excluded.applicability.insert(
                control.into(),
                Applicability {
                    applicable: false,
                    justification: "isolated lab".into(),
                },
            );
        }
        let later = OrgPolicy::default();
        let policies = [
            PolicyEvidence {
                log_index: 1,
                received_at: 0,
                policy: &excluded,
            },
            PolicyEvidence {
                log_index: 9,
                received_at: 5 * HOUR,
                policy: &later,
            },
        ];
        let rows = derive_rows(&Derivation {
            hosts: &BTreeSet::from(["h1".to_string()]),
            reports: &reports,
            policies: &policies,
            controls: &[],
            to: 2 * HOUR,
            stale_after_secs: 7200,
        });
        let c820 = row(&rows, "h1", "8.20");
        assert_eq!(
            (c820.status, c820.reason.as_deref()),
            (
                ControlVerdict::NotApplicable,
                Some("statement of applicability: isolated lab")
            )
        );
        assert_eq!(
            row(&rows, "h1", "5.1").status,
            ControlVerdict::NotApplicable
        );
        assert!(rows.findings.iter().all(|f| f.policy_log_index == Some(1)));
        // Status rows follow the catalog order: 5.1 before 8.1 before 8.20.
        let controls: Vec<&str> = rows.status.iter().map(|r| r.control.as_str()).collect();
        let (a, b, c) = (
            controls.iter().position(|c| *c == "5.1"),
            controls.iter().position(|c| *c == "8.1"),
            controls.iter().position(|c| *c == "8.20"),
        );
        assert!(a < b && b < c, "{controls:?}");
    }

    #[test]
    fn a_control_selection_keeps_only_its_rows_and_the_findings_mapped_to_it() {
        let full = report(
            1,
            ReportKind::Full {
                facts: facts(false),
            },
        );
        let reports = [evidence(2, HOUR, &full)];
        let selected = ["8.20".to_string()];
        let rows = derive_rows(&Derivation {
            hosts: &BTreeSet::from(["h1".to_string()]),
            reports: &reports,
            policies: &[],
            controls: &selected,
            to: HOUR,
            stale_after_secs: 7200,
        });
        assert_eq!(rows.status.len(), 1);
        assert!(!rows.findings.is_empty());
        let mappings = crate::check_mappings();
        for f in &rows.findings {
            assert!(
                mappings[&f.check]
                    .iso27002
                    .iter()
                    .any(|l| l.control == "8.20"),
                "{}",
                f.check
            );
        }
    }
}
