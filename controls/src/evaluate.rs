//! Facts + policy -> findings.

use evidence_protocol::{Facts, Observation};

use crate::checks::{Check, Evaluator};
use crate::{check_mappings, Finding, Outcome, Policy};

/// Evaluates every check whose collector is present in `facts`, in check-id order.
/// A collector absent from `facts` (not run) produces no findings; one that failed produces an
/// `error` finding for each of its checks, carrying the collector's reason.
pub fn evaluate(facts: &Facts, policy: &Policy) -> Vec<Finding> {
    let mappings = check_mappings();
    let mut findings: Vec<Finding> = crate::checks::all()
        .iter()
        .filter_map(|check| {
            let outcome = run_check(check, facts, policy)?;
            let mapping = mappings.get(check.id);
            let mut controls: Vec<String> = mapping
                .map(|m| m.iso27002.iter().map(|link| link.control.clone()).collect())
                .unwrap_or_default();
            controls.sort_by(|a, b| crate::catalog::compare_control_ids(a, b));
            controls.dedup();
            Some(Finding {
                check: check.id.to_string(),
                title: check.title.to_string(),
                status: outcome.status,
                controls,
                evidence: outcome.evidence,
                reason: outcome.reason,
            })
        })
        .collect();
    findings.sort_by(|a, b| a.check.cmp(&b.check));
    findings
}

fn run_check(check: &Check, facts: &Facts, policy: &Policy) -> Option<Outcome> {
    Some(match check.evaluate {
        Evaluator::DiskEncryption(f) => apply(facts.disk_encryption.as_ref()?, |x| f(x, policy)),
        Evaluator::PatchLevel(f) => apply(facts.patch_level.as_ref()?, |x| f(x, policy)),
        Evaluator::Firewall(f) => apply(facts.firewall.as_ref()?, |x| f(x, policy)),
        Evaluator::Accounts(f) => apply(facts.accounts.as_ref()?, |x| f(x, policy)),
    })
}

fn apply<T>(observation: &Observation<T>, f: impl FnOnce(&T) -> Outcome) -> Outcome {
    match observation {
        Observation::Observed(value) => f(value),
        Observation::NotApplicable { reason } => Outcome::not_applicable(reason.clone()),
        Observation::Error { reason } => Outcome::error(reason.clone()),
    }
}
