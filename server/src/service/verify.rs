//! Deep verification of the derived tables (`verify-log --deep`, `GET /v1/admin/log/verify?deep=true`):
//! every host's latest signed full report, read back from the evidence log, is evaluated again
//! under the policy in force now ([`super::ingest::evaluate`], as at ingest and re-evaluation),
//! and `domain::deep_verify` names every difference from the stored findings, the control status
//! they give and the last finding transitions. Hosts are read a page at a time; each page is
//! evaluated on the blocking pool (the evaluation is CPU work).
//!
//! [`deep_verify`] needs only the store (the offline command runs it without the services).

use std::sync::Arc;

use evidence_controls::OrgPolicy;
use serde::Serialize;

use crate::domain::deep_verify::{compare_host, DeepCounts, Difference, Problem, Recomputed};
use crate::domain::status::CheckIndex;
use crate::store::{Store, StoreError};

/// Hosts read and evaluated per page.
const PAGE: usize = 256;

/// Why deep verification could not run to the end (a difference is not an error: it is named in
/// [`DeepVerification`]).
#[derive(Debug, thiserror::Error)]
pub enum DeepVerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored policy in force is not a valid policy: {0}")]
    Policy(String),
    #[error("the policy changed while the hosts were being verified: run the verification again")]
    PolicyChanged,
    #[error("the evaluation task failed: {0}")]
    Task(String),
}

/// One difference, as a line and typed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NamedDifference {
    /// The difference in one line, e.g. `host h-3 check firewall.inbound_default_deny: stored
    /// pass, facts give fail ("...")`.
    pub message: String,
    pub host_id: String,
    /// Revoked hosts are verified too.
    pub revoked: bool,
    pub problem: Problem,
}

impl From<Difference> for NamedDifference {
    fn from(d: Difference) -> Self {
        Self {
            message: d.to_string(),
            host_id: d.host_id,
            revoked: d.revoked,
            problem: d.problem,
        }
    }
}

/// The outcome of deep verification: what was compared and every difference, by host id.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeepVerification {
    /// True when nothing differs.
    pub ok: bool,
    pub counts: DeepCounts,
    pub differences: Vec<NamedDifference>,
}

/// Evaluates every host's latest full report again under the policy in force and compares the
/// result with the store's derived tables.
pub async fn deep_verify(
    store: &dyn Store,
    index: Arc<CheckIndex>,
) -> Result<DeepVerification, DeepVerifyError> {
    let policy_json = store.policy_at(i64::MAX).await?;
    let policy = Arc::new(match &policy_json {
        Some(json) => OrgPolicy::from_json(json.as_bytes())
            .map_err(|e| DeepVerifyError::Policy(e.to_string()))?,
        None => OrgPolicy::default(),
    });
    let mut counts = DeepCounts::default();
    let mut differences = Vec::new();
    let mut after = None;
    loop {
        let page = store.derived_hosts(after.clone(), PAGE).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.host_id.clone());
        let full_page = page.len() == PAGE;
        let (index, policy) = (index.clone(), policy.clone());
        let (found, page_counts) = tokio::task::spawn_blocking(move || {
            let mut counts = counts;
            let found: Vec<Difference> = page
                .iter()
                .flat_map(|host| compare_one(host, &index, &policy, &mut counts))
                .collect();
            (found, counts)
        })
        .await
        .map_err(|e| DeepVerifyError::Task(e.to_string()))?;
        counts = page_counts;
        differences.extend(found.into_iter().map(NamedDifference::from));
        if !full_page {
            break;
        }
    }
    if store.policy_at(i64::MAX).await? != policy_json {
        return Err(DeepVerifyError::PolicyChanged);
    }
    Ok(DeepVerification {
        ok: differences.is_empty(),
        counts,
        differences,
    })
}

/// Parses and evaluates one host's latest full report, then compares.
fn compare_one(
    host: &crate::domain::deep_verify::HostDerived,
    index: &CheckIndex,
    policy: &OrgPolicy,
    counts: &mut DeepCounts,
) -> Vec<Difference> {
    let Some((_, bytes)) = &host.latest_full else {
        return compare_host(host, Recomputed::NoFullReport, index, policy, counts);
    };
    let problem = match evidence_protocol::Report::from_bytes(bytes) {
        Ok(report) => match report.facts() {
            Some(facts) => {
                let findings = super::ingest::evaluate(facts, &policy.checks);
                return compare_host(host, Recomputed::Findings(&findings), index, policy, counts);
            }
            None => "its bytes are an attestation".to_string(),
        },
        Err(e) => e.to_string(),
    };
    compare_host(
        host,
        Recomputed::Unreadable { problem: &problem },
        index,
        policy,
        counts,
    )
}
