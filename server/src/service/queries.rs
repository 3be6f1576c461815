//! Read services (a reader or admin token): hosts, one host, controls, one control, the fleet
//! snapshot now (from the fleet cache) or on any past date (from the store's finding
//! transitions and the policy then), one stored report's verbatim bytes, and the metrics. Every
//! control status comes from `domain::status::control_status`, the one rule.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::{json, Value};

use super::{ServiceError, ServiceResult, Services};
use crate::domain::status::{self, ControlSnapshot, ControlView, Snapshot};
use crate::store::{GapEvent, HostKey, HostSummary, KeyEvent, LogEntry, StoredFinding, Transition};
use evidence_controls::OrgPolicy;

/// Every host, ordered by hostname and host id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Hosts {
    pub hosts: Vec<HostListing>,
}

/// One host in the list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HostListing {
    #[serde(flatten)]
    pub host: HostSummary,
    /// No report within `stale_after_intervals` report intervals (or none yet).
    pub stale: bool,
}

/// Checks that evidence each control, from the check mapping data.
fn checks_by_control() -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (check, m) in evidence_controls::check_mappings() {
        for link in &m.iso27002 {
            out.entry(link.control.clone()).or_default().push(json!({
                "check": check, "relationship": link.relationship, "source": link.source, "judgment": link.judgment
            }));
        }
    }
    out
}

/// A current finding with its evidence.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FindingView {
    pub check: String,
    /// `pass`, `fail`, `not_applicable` or `error`.
    #[schema(value_type = String)]
    pub status: evidence_controls::Status,
    pub reason: Option<String>,
    /// Since when the finding has had this status and reason.
    #[schema(format = DateTime)]
    pub since: String,
    /// What the check observed, with the offending items.
    pub evidence: Value,
}

impl FindingView {
    fn of(f: &StoredFinding) -> Self {
        Self {
            check: f.check.clone(),
            status: f.status,
            reason: f.reason.clone(),
            since: crate::time::fmt(f.since),
            evidence: serde_json::from_str(&f.evidence).unwrap_or(Value::Null),
        }
    }
}

/// One host's page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HostPage {
    pub host: HostSummary,
    pub stale: bool,
    /// The latest full report's facts, by collector.
    pub facts: Option<Value>,
    #[schema(format = DateTime)]
    pub facts_collected_at: Option<String>,
    pub findings: Vec<FindingView>,
    /// Every control's status on this host now, by control id.
    pub controls: BTreeMap<String, ControlView>,
    pub keys: Vec<HostKey>,
    pub history: HostHistory,
}

/// A host's history: finding transitions, gaps, reports and key events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HostHistory {
    pub transitions: Vec<Transition>,
    pub gaps: Vec<GapEvent>,
    pub reports: Vec<LogEntry>,
    pub key_events: Vec<KeyEvent>,
}

/// One failing host on a control's page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FailingHost {
    pub host_id: String,
    pub hostname: String,
    pub reason: String,
    /// Its failing or erroring findings on the control's checks.
    pub findings: Vec<FindingView>,
}

/// One control's page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ControlPage {
    /// The catalog entry (id, title, attributes).
    pub control: Value,
    /// The control's links to the other frameworks.
    pub crosswalks: Value,
    /// The checks that evidence it, with their relationship and its source.
    pub checks: Vec<Value>,
    /// Its status across the fleet now (`failing_hosts` empty: see below).
    pub status: Option<ControlSnapshot>,
    pub failing_hosts: Vec<FailingHost>,
}

impl Services {
    fn stale(&self, last_seen: Option<i64>, at: i64) -> bool {
        status::is_stale(last_seen, at, self.config.stale_after_us())
    }

    /// Every host with its last report and whether it is stale now.
    pub async fn hosts(&self) -> ServiceResult<Hosts> {
        let now = crate::time::now_us();
        let hosts = self
            .store
            .hosts()
            .await?
            .into_iter()
            .map(|host| HostListing {
                stale: self.stale(host.last_seen, now),
                host,
            })
            .collect();
        Ok(Hosts { hosts })
    }

    /// One host: latest facts, findings with evidence, control status, keys, history.
    pub async fn host(&self, host_id: &str) -> ServiceResult<HostPage> {
        let detail = self
            .store
            .host(host_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("no such host"))?;
        let now = crate::time::now_us();
        let (_, policy) = self.caches.policy();
        let controls = self.caches.with_fleet(|fleet| {
            fleet
                .get(host_id)
                .map(|h| {
                    status::host_control_map(
                        h,
                        &self.caches.index,
                        &policy,
                        now,
                        self.config.stale_after_us(),
                    )
                })
                .unwrap_or_default()
        });
        Ok(HostPage {
            stale: self.stale(detail.summary.last_seen, now),
            host: detail.summary,
            facts: detail
                .latest_full_report
                .as_deref()
                .and_then(|b| evidence_protocol::Report::from_bytes(b).ok())
                .and_then(|r| r.facts().and_then(|f| serde_json::to_value(f).ok())),
            facts_collected_at: detail.facts_collected_at.map(crate::time::fmt),
            findings: detail.findings.iter().map(FindingView::of).collect(),
            controls,
            keys: detail.keys,
            history: HostHistory {
                transitions: detail.transitions,
                gaps: detail.gaps,
                reports: detail.reports,
                key_events: detail.key_events,
            },
        })
    }

    /// The ISO/IEC 27002:2022 catalog with crosswalks and the checks that evidence each control.
    pub fn controls(&self) -> Value {
        let checks = checks_by_control();
        let list: Vec<Value> = evidence_controls::catalog::controls()
            .iter()
            .map(|c| {
                json!({
                    "control": c,
                    "crosswalks": evidence_controls::catalog::crosswalk(&c.id),
                    "checks": checks.get(&c.id).cloned().unwrap_or_default(),
                })
            })
            .collect();
        json!({ "frameworks": evidence_controls::catalog::frameworks(), "controls": list })
    }

    /// One control: its status across the fleet now, and its failing hosts with evidence.
    pub async fn control(&self, control_id: &str) -> ServiceResult<ControlPage> {
        let c = evidence_controls::catalog::control(control_id)
            .ok_or_else(|| ServiceError::not_found("no such control"))?;
        let checks = checks_by_control().remove(control_id).unwrap_or_default();
        let check_ids: Vec<String> = checks
            .iter()
            .filter_map(|v| v["check"].as_str().map(String::from))
            .collect();
        let findings = self.store.findings_for_checks(&check_ids).await?;
        let entry = self
            .current_snapshot(usize::MAX)
            .controls
            .into_iter()
            .find(|e| e.control == control_id);
        let failing_ids: HashSet<&str> = entry
            .as_ref()
            .map(|e| e.failing_hosts.iter().map(|h| h.host_id.as_str()).collect())
            .unwrap_or_default();
        let mut evidence: BTreeMap<&str, Vec<FindingView>> = BTreeMap::new();
        for f in findings
            .iter()
            .filter(|f| failing_ids.contains(f.host_id.as_str()))
        {
            evidence
                .entry(&f.host_id)
                .or_default()
                .push(FindingView::of(f));
        }
        let failing_hosts = entry
            .as_ref()
            .map(|e| {
                e.failing_hosts
                    .iter()
                    .map(|h| FailingHost {
                        host_id: h.host_id.clone(),
                        hostname: h.hostname.clone(),
                        reason: h.reason.clone(),
                        findings: evidence.remove(h.host_id.as_str()).unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ControlPage {
            control: json!(c),
            crosswalks: json!(evidence_controls::catalog::crosswalk(control_id)),
            checks,
            status: entry.map(|mut e| {
                e.failing_hosts.clear();
                e
            }),
            failing_hosts,
        })
    }

    /// The fleet snapshot now, listing at most `limit` failing hosts per control.
    pub fn current_snapshot(&self, limit: usize) -> Snapshot {
        let (_, policy) = self.caches.policy();
        self.caches.with_fleet(|hosts| {
            status::snapshot(
                hosts.iter().map(|(k, v)| (k.as_str(), v)),
                &self.caches.index,
                &policy,
                crate::time::now_us(),
                self.config.stale_after_us(),
                limit,
            )
        })
    }

    /// The fleet snapshot at `at` (`None`: now): an RFC 3339 time or `YYYY-MM-DD` (the end of
    /// that day, UTC), under the policy in force then.
    pub async fn snapshot(
        &self,
        at: Option<&str>,
        limit: Option<usize>,
    ) -> ServiceResult<Snapshot> {
        let limit = limit.unwrap_or(100);
        let Some(at) = at else {
            return Ok(self.current_snapshot(limit));
        };
        let at = crate::time::parse_at(at).ok_or_else(|| {
            ServiceError::new(
                super::ErrorCode::BadTime,
                "at must be an RFC 3339 time or YYYY-MM-DD",
            )
        })?;
        let policy = match self.store.policy_at(at).await? {
            Some(json) => OrgPolicy::from_json(json.as_bytes()).map_err(ServiceError::internal)?,
            None => OrgPolicy::default(),
        };
        let states = self.store.fleet_at(at, self.caches.index.clone()).await?;
        Ok(status::snapshot(
            states.iter().map(|(k, v)| (k.as_str(), v)),
            &self.caches.index,
            &policy,
            at,
            self.config.stale_after_us(),
            limit,
        ))
    }

    /// One evidence-log entry's verbatim bytes.
    pub async fn report(&self, log_index: u64) -> ServiceResult<Vec<u8>> {
        self.store
            .report_bytes(log_index)
            .await?
            .ok_or_else(|| ServiceError::not_found("no such log entry"))
    }

    /// Prometheus metrics text; `open_connections` comes from the transport.
    pub async fn metrics_text(&self, open_connections: u64) -> ServiceResult<String> {
        let counts = self.store.counts().await?;
        let now = crate::time::now_us();
        let stale = self.caches.with_fleet(|fleet| {
            fleet
                .values()
                .filter(|h| !h.revoked && self.stale(h.last_seen, now))
                .count() as u64
        });
        Ok(self.metrics.render(&counts, stale, open_connections))
    }
}
