//! Facts + policy -> findings.

use evidence_protocol::Facts;

use crate::{check_mappings, Finding, Policy};

/// Evaluates every check whose collector is present in `facts`, in check-id order.
/// A collector absent from `facts` (not run) produces no findings; one that failed produces an
/// `error` finding for each of its checks, carrying the collector's reason. A collector this
/// build does not know ([`Facts::unknown`]) has no checks here, so no findings.
pub fn evaluate(facts: &Facts, policy: &Policy) -> Vec<Finding> {
    let mappings = check_mappings();
    let mut findings: Vec<Finding> = crate::checks::all()
        .iter()
        .filter_map(|check| {
            let outcome = check.evaluate.run(facts, policy)?;
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

#[cfg(test)]
mod tests {
    use evidence_protocol::facts::RawFacts;
    use evidence_protocol::{CollectorName, Observation};

    use super::*;

    #[test]
    fn an_unknown_collector_adds_no_findings_and_changes_none() {
        let known = Facts::all_failed(CollectorName::ALL, "unreadable");
        let mut with_unknown = known.clone();
        with_unknown.unknown.insert(
            "ssh".into(),
            RawFacts::from_json(r#"{"observed":{"permit_root_login":true}}"#).unwrap(),
        );
        let policy = Policy::default();
        let findings = evaluate(&with_unknown, &policy);
        assert_eq!(findings, evaluate(&known, &policy));
        assert!(!findings.is_empty());
        assert!(findings.iter().all(|f| !f.check.starts_with("ssh.")));
    }

    #[test]
    fn a_failed_collector_gives_an_error_finding_per_check_and_an_absent_one_none() {
        let firewall = Facts {
            firewall: Some(Observation::error("nft hung")),
            ..Facts::default()
        };
        let findings = evaluate(&firewall, &Policy::default());
        assert!(!findings.is_empty());
        for finding in &findings {
            assert!(finding.check.starts_with("firewall."), "{}", finding.check);
            assert_eq!(finding.status, crate::Status::Error);
            assert_eq!(finding.reason.as_deref(), Some("nft hung"));
        }
        assert!(evaluate(&Facts::default(), &Policy::default()).is_empty());
    }
}
