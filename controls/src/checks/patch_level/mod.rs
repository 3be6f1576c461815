//! Checks over the `patch_level` collector's facts: no pending security updates, pending
//! updates within the policy's allowance, the newest installed kernel running with no reboot
//! pending, package indexes refreshed recently, and automatic updates enabled.
//!
//! Facts come from `evidence_collectors::patch_level` (dpkg status and apt lists natively, or
//! rpm/dnf); thresholds from the `[patch_level]` table of the policy file. A part of the facts
//! that could not be read makes its check `error`, never `pass`; evidence lists the offending
//! packages.

use evidence_protocol::facts::patch_level::{PendingUpdate, PendingUpdates};
use evidence_protocol::facts::PatchLevelFacts;
use evidence_protocol::Observation;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::need::need;
use super::{Check, Evaluator};
use crate::{Outcome, Policy};

const DAY: i64 = 86_400;

/// Thresholds for the `patch_level` checks; every field has a documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatchLevelPolicy {
    /// Most pending security updates tolerated. Default 0: every security update the package
    /// indexes offer must be installed.
    pub max_pending_security_updates: usize,
    /// Most pending updates of any kind tolerated. Default 0 (everything the indexes offer is
    /// installed); organisations that batch non-security updates raise it.
    pub max_pending_updates: usize,
    /// Oldest acceptable package-index refresh, in days. Default 7: older indexes cannot show
    /// recent fixes, so the update checks would pass on stale knowledge.
    pub max_index_age_days: i64,
}

impl Default for PatchLevelPolicy {
    fn default() -> Self {
        Self {
            max_pending_security_updates: 0,
            max_pending_updates: 0,
            max_index_age_days: 7,
        }
    }
}

/// Where these checks' links to controls are (data, reviewed with its sources).
pub const MAPPINGS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/checks/patch_level.toml"
));

/// This collector's section of the policy.
pub type Settings = PatchLevelPolicy;

/// The `patch_level` checks.
pub const CHECKS: &[Check] = &[
    Check {
        id: "patch_level.security_updates_installed",
        title: "No security update is pending",
        evaluate: Evaluator::PatchLevel(security_updates_installed),
    },
    Check {
        id: "patch_level.updates_installed",
        title: "Pending updates are within the policy's allowance",
        evaluate: Evaluator::PatchLevel(updates_installed),
    },
    Check {
        id: "patch_level.running_newest_kernel",
        title: "The newest installed kernel is running and no reboot is pending",
        evaluate: Evaluator::PatchLevel(running_newest_kernel),
    },
    Check {
        id: "patch_level.package_index_fresh",
        title: "Package indexes were refreshed recently",
        evaluate: Evaluator::PatchLevel(package_index_fresh),
    },
    Check {
        id: "patch_level.automatic_updates_enabled",
        title: "Updates are installed automatically",
        evaluate: Evaluator::PatchLevel(automatic_updates_enabled),
    },
];

/// Runs `f` on an observed part, or turns `NotApplicable`/`Error` into the outcome.
fn with<T>(part: &Observation<T>, what: &str, f: impl FnOnce(&T) -> Outcome) -> Outcome {
    match need(part, what) {
        Ok(value) => f(value),
        Err(outcome) => outcome,
    }
}

fn items(pending: &[&PendingUpdate]) -> Value {
    pending
        .iter()
        .map(|p| {
            json!({
                "name": p.name, "arch": p.arch, "installed": p.installed_version,
                "candidate": p.candidate_version, "archives": p.archives, "security": p.security,
            })
        })
        .collect()
}

fn pending_within(updates: &PendingUpdates, security_only: bool, max: usize) -> Outcome {
    let offending: Vec<&PendingUpdate> = updates
        .pending
        .iter()
        .filter(|p| p.security || !security_only)
        .collect();
    let evidence = json!({
        "installed_packages": updates.installed_count,
        "pending": offending.len(),
        "max_allowed": max,
        "sources": updates.sources,
        "offending": items(&offending),
    });
    let kind = if security_only {
        "security updates"
    } else {
        "updates"
    };
    Outcome::pass_if(
        offending.len() <= max,
        evidence,
        format!("{} pending {kind}, policy allows {max}", offending.len()),
    )
}

fn security_updates_installed(facts: &PatchLevelFacts, policy: &Policy) -> Outcome {
    with(&facts.updates, "pending updates", |u| {
        pending_within(u, true, policy.patch_level.max_pending_security_updates)
    })
}

fn updates_installed(facts: &PatchLevelFacts, policy: &Policy) -> Outcome {
    with(&facts.updates, "pending updates", |u| {
        pending_within(u, false, policy.patch_level.max_pending_updates)
    })
}

fn running_newest_kernel(facts: &PatchLevelFacts, _policy: &Policy) -> Outcome {
    with(&facts.kernel, "running kernel", |kernel| {
        let (reboot_required, reboot_packages) = match &facts.reboot {
            Observation::Observed(r) => (Some(r.required), r.packages.clone()),
            Observation::NotApplicable { .. } => (None, vec![]),
            Observation::Error { reason } => {
                return Outcome::error(format!("pending reboot: {reason}"))
            }
        };
        let evidence = json!({
            "running": kernel.running,
            "newest_installed": kernel.newest_installed,
            "installed": kernel.installed,
            "reboot_required": reboot_required,
            "offending": reboot_packages,
        });
        let mut why = Vec::new();
        if !kernel.running_is_newest {
            why.push(format!(
                "running {} but {} is installed",
                kernel.running, kernel.newest_installed
            ));
        }
        if reboot_required == Some(true) {
            why.push("a reboot is pending".to_string());
        }
        Outcome::pass_if(why.is_empty(), evidence, why.join("; "))
    })
}

fn package_index_fresh(facts: &PatchLevelFacts, policy: &Policy) -> Outcome {
    with(&facts.index_refresh, "package index refresh", |r| {
        let max = policy.patch_level.max_index_age_days;
        let days = r.age_seconds / DAY;
        let evidence = json!({ "refreshed_at": r.refreshed_at, "age_days": days, "max_age_days": max, "source": r.source });
        Outcome::pass_if(
            r.age_seconds <= max * DAY,
            evidence,
            format!("indexes last refreshed {days} days ago, policy allows {max}"),
        )
    })
}

fn automatic_updates_enabled(facts: &PatchLevelFacts, _policy: &Policy) -> Outcome {
    with(&facts.automatic_updates, "automatic updates", |a| {
        let evidence = json!({ "tool": a.tool, "installed": a.installed, "setting": a.setting });
        let why = if !a.installed {
            format!("{} is not installed", a.tool)
        } else {
            format!(
                "{} is installed but not enabled (setting {:?})",
                a.tool, a.setting
            )
        };
        Outcome::pass_if(a.enabled, evidence, why)
    })
}

#[cfg(test)]
mod tests;
