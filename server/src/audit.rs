//! The audit trail. Every security-relevant event is a structured `tracing` event with target
//! `audit` (fields `event`, `outcome`, `actor`, `target`, `detail`; never a secret or a token)
//! and a count in `/metrics` (`evidence_security_events_total{event,outcome}`). Admin and policy
//! changes are also kept in the store with who (token id) and when (by the services):
//! `GET /v1/admin/audit`.

use crate::metrics::Metrics;
use crate::store::{AuditRecord, Store, StoreResult};

/// Who caused an event: an API token's id, an agent's key or secret id, or the server itself.
pub type Actor<'a> = &'a str;

/// A security event that is logged and counted (failed authentication, enrollment outcomes,
/// refused reports): not kept in the store, so a flood of bad requests cannot fill it.
pub fn security(
    metrics: &Metrics,
    event: &'static str,
    outcome: &'static str,
    actor: Actor,
    detail: &str,
) {
    tracing::warn!(target: "audit", event, outcome, actor, detail);
    metrics.security_event(event, outcome);
}

/// An admin or policy change: logged, counted (when the server runs: `metrics`), and kept in
/// the store. The services call it for API changes, the local commands (`admin-token`,
/// `preview`) for theirs.
pub async fn change(
    store: &dyn Store,
    metrics: Option<&Metrics>,
    event: &'static str,
    actor: Actor<'_>,
    target: &str,
    detail: &str,
) -> StoreResult<()> {
    tracing::info!(target: "audit", event, outcome = "done", actor, target, detail);
    if let Some(metrics) = metrics {
        metrics.security_event(event, "done");
    }
    store
        .record_audit(&AuditRecord {
            at: crate::time::now_us(),
            actor: actor.to_string(),
            event: event.to_string(),
            target: target.to_string(),
            detail: detail.to_string(),
        })
        .await
}
