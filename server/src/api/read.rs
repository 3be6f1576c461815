//! Read API (reader or admin token): hosts, one host, controls, one control, the fleet
//! snapshot (now or `?at=`), one stored report's verbatim bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::require;
use super::error::ApiErr;
use crate::auth::Role;
use crate::policy::OrgPolicy;
use crate::state::AppState;
use crate::status::{self, HostState, Snapshot};

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiErr> + Send + 'static,
) -> Result<T, ApiErr> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiErr::internal)?
}

fn is_stale(state: &AppState, last_seen: Option<i64>, at: i64) -> bool {
    last_seen.is_none_or(|s| at - s > state.config.stale_after_us())
}

pub async fn hosts(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiErr> {
    require(&state, &headers, Role::Reader)?;
    let s = state.clone();
    let hosts = blocking(move || Ok(s.store.hosts()?)).await?;
    let now = crate::time::now_us();
    let list: Vec<Value> = hosts
        .iter()
        .map(|h| {
            let mut v = serde_json::to_value(h).unwrap_or(Value::Null);
            v["stale"] = json!(is_stale(&state, h.last_seen, now));
            v
        })
        .collect();
    Ok(Json(json!({ "hosts": list })))
}

pub async fn host(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiErr> {
    require(&state, &headers, Role::Reader)?;
    let s = state.clone();
    let id2 = id.clone();
    let detail = blocking(move || Ok(s.store.host(&id2)?))
        .await?
        .ok_or_else(|| ApiErr::not_found("no such host"))?;
    let now = crate::time::now_us();
    let (_, policy) = state.policy();
    let controls = state
        .fleet
        .hosts
        .read()
        .expect("fleet lock")
        .get(&id)
        .map(|h| {
            status::host_control_map(h, &state.index, &policy, now, state.config.stale_after_us())
        })
        .unwrap_or_default();
    let findings: Vec<Value> = detail
        .findings
        .iter()
        .map(|f| {
            json!({"check": f.check, "status": f.status, "reason": f.reason, "since": crate::time::fmt(f.since),
                   "evidence": serde_json::from_str::<Value>(&f.evidence).unwrap_or(Value::Null)})
        })
        .collect();
    Ok(Json(json!({
        "host": detail.summary,
        "stale": is_stale(&state, detail.summary.last_seen, now),
        "facts": detail
            .latest_full_report
            .as_deref()
            .and_then(|b| evidence_protocol::Report::from_bytes(b).ok())
            .and_then(|r| r.facts().and_then(|f| serde_json::to_value(f).ok())),
        "facts_collected_at": detail.facts_collected_at.map(crate::time::fmt),
        "findings": findings,
        "controls": controls,
        "keys": detail.keys,
        "history": { "transitions": detail.transitions, "gaps": detail.gaps, "reports": detail.reports, "key_events": detail.key_events },
    })))
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

pub async fn controls(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiErr> {
    require(&state, &headers, Role::Reader)?;
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
    Ok(Json(
        json!({ "frameworks": evidence_controls::catalog::frameworks(), "controls": list }),
    ))
}

pub async fn control(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiErr> {
    require(&state, &headers, Role::Reader)?;
    let c = evidence_controls::catalog::control(&id)
        .ok_or_else(|| ApiErr::not_found("no such control"))?;
    let checks = checks_by_control().remove(&id).unwrap_or_default();
    let check_ids: Vec<String> = checks
        .iter()
        .filter_map(|v| v["check"].as_str().map(String::from))
        .collect();
    let s = state.clone();
    let findings = blocking(move || Ok(s.store.findings_for_checks(&check_ids)?)).await?;
    let snap = current_snapshot(&state, usize::MAX);
    let entry = snap.controls.into_iter().find(|e| e.control == id);
    let failing_ids: std::collections::HashSet<String> = entry
        .as_ref()
        .map(|e| e.failing_hosts.iter().map(|h| h.host_id.clone()).collect())
        .unwrap_or_default();
    let mut evidence: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for f in findings.iter().filter(|f| failing_ids.contains(&f.host_id)) {
        evidence.entry(f.host_id.clone()).or_default().push(json!({
            "check": f.check, "status": f.status, "reason": f.reason, "since": crate::time::fmt(f.since),
            "evidence": serde_json::from_str::<Value>(&f.evidence).unwrap_or(Value::Null)
        }));
    }
    let failing: Vec<Value> = entry
        .as_ref()
        .map(|e| {
            e.failing_hosts
                .iter()
                .map(|h| {
                    json!({"host_id": h.host_id, "hostname": h.hostname, "reason": h.reason,
                                "findings": evidence.get(&h.host_id).cloned().unwrap_or_default()})
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!({
        "control": c,
        "crosswalks": evidence_controls::catalog::crosswalk(&id),
        "checks": checks,
        "status": entry.map(|mut e| { e.failing_hosts.clear(); e }),
        "failing_hosts": failing,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotQuery {
    /// RFC 3339 time or `YYYY-MM-DD` (end of that day, UTC). Default: now.
    at: Option<String>,
    /// Most failing hosts listed per control. Default 100.
    limit: Option<usize>,
}

pub fn current_snapshot(state: &AppState, limit: usize) -> Snapshot {
    let (_, policy) = state.policy();
    let hosts = state.fleet.hosts.read().expect("fleet lock");
    status::snapshot(
        hosts.iter().map(|(k, v)| (k.as_str(), v)),
        &state.index,
        &policy,
        crate::time::now_us(),
        state.config.stale_after_us(),
        limit,
    )
}

pub async fn snapshot(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<SnapshotQuery>,
) -> Result<Json<Snapshot>, ApiErr> {
    require(&state, &headers, Role::Reader)?;
    let limit = q.limit.unwrap_or(100);
    let Some(at) = q.at else {
        let s = state.clone();
        return Ok(Json(
            blocking(move || Ok(current_snapshot(&s, limit))).await?,
        ));
    };
    let at = crate::time::parse_at(&at).ok_or_else(|| {
        ApiErr::bad_request("bad_time", "at must be an RFC 3339 time or YYYY-MM-DD")
    })?;
    let s = state.clone();
    let snap = blocking(move || {
        let policy = match s.store.policy_at(at)? {
            Some(json) => OrgPolicy::from_json(json.as_bytes()).map_err(ApiErr::internal)?,
            None => OrgPolicy::default(),
        };
        let mut states: Vec<(String, HostState)> = Vec::new();
        s.store.for_each_host_at(at, &mut |h| {
            let state = HostState::from_store(&h, &s.index);
            states.push((h.host_id, state));
        })?;
        Ok(status::snapshot(
            states.iter().map(|(k, v)| (k.as_str(), v)),
            &s.index,
            &policy,
            at,
            s.config.stale_after_us(),
            limit,
        ))
    })
    .await?;
    Ok(Json(snap))
}

pub async fn report(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(index): Path<u64>,
) -> Result<Response, ApiErr> {
    require(&state, &headers, Role::Reader)?;
    let s = state.clone();
    let bytes = blocking(move || Ok(s.store.report_bytes(index)?))
        .await?
        .ok_or_else(|| ApiErr::not_found("no such log entry"))?;
    Ok(([("content-type", "application/json")], bytes).into_response())
}
