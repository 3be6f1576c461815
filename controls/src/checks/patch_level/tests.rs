//! Unit tests of the `patch_level` checks over hand-built facts: pending (security) updates,
//! the running kernel and pending reboot, index age, automatic updates, and the policy defaults.

use super::*;
use crate::Status;
use evidence_protocol::facts::patch_level::{
    AutomaticUpdates, IndexRefresh, KernelFacts, PackageManager, RebootFacts,
};

fn update(name: &str, security: bool) -> PendingUpdate {
    PendingUpdate {
        name: name.into(),
        arch: "amd64".into(),
        installed_version: "1".into(),
        candidate_version: "2".into(),
        archives: vec![if security {
            "bookworm-security"
        } else {
            "bookworm"
        }
        .into()],
        security,
    }
}

fn facts() -> PatchLevelFacts {
    PatchLevelFacts {
        os_release: Observation::not_applicable("test"),
        package_manager: PackageManager::Dpkg,
        updates: Observation::Observed(PendingUpdates {
            installed_count: 10,
            sources: vec![],
            pending: vec![update("bash", false), update("openssl", true)],
        }),
        kernel: Observation::Observed(KernelFacts {
            running: "6.1.0-18-amd64".into(),
            installed: vec!["6.1.0-18-amd64".into()],
            newest_installed: "6.1.0-18-amd64".into(),
            running_is_newest: true,
        }),
        reboot: Observation::Observed(RebootFacts::default()),
        index_refresh: Observation::Observed(IndexRefresh {
            refreshed_at: 0,
            age_seconds: 3 * DAY,
            source: "x".into(),
        }),
        automatic_updates: Observation::Observed(AutomaticUpdates {
            tool: "unattended-upgrades".into(),
            installed: true,
            setting: Some("1".into()),
            enabled: true,
        }),
    }
}

/// The status `check` gives `facts` under the built-in default policy.
fn status_by_default(
    check: fn(&PatchLevelFacts, &Policy) -> Outcome,
    facts: &PatchLevelFacts,
) -> Status {
    check(facts, &Policy::default()).status
}

#[test]
fn pending_security_updates_fail_and_are_listed() {
    let out = security_updates_installed(&facts(), &Policy::default());
    assert_eq!(out.status, Status::Fail);
    assert_eq!(out.evidence["offending"][0]["name"], "openssl");
    assert_eq!(out.evidence["pending"], 1);
    let mut policy = Policy::default();
    policy.patch_level.max_pending_security_updates = 1;
    assert_eq!(
        security_updates_installed(&facts(), &policy).status,
        Status::Pass
    );
}

#[test]
fn all_pending_updates_count_against_the_allowance() {
    let mut policy = Policy::default();
    assert_eq!(updates_installed(&facts(), &policy).status, Status::Fail);
    policy.patch_level.max_pending_updates = 2;
    assert_eq!(updates_installed(&facts(), &policy).status, Status::Pass);
}

#[test]
fn unreadable_indexes_are_an_error_not_a_pass() {
    let mut f = facts();
    f.updates = Observation::error("index truncated");
    assert_eq!(
        status_by_default(security_updates_installed, &f),
        Status::Error
    );
    assert_eq!(status_by_default(updates_installed, &f), Status::Error);
}

#[test]
fn an_older_running_kernel_or_a_pending_reboot_fails_and_root_trees_are_not_applicable() {
    let mut f = facts();
    assert_eq!(status_by_default(running_newest_kernel, &f), Status::Pass);
    f.reboot = Observation::Observed(RebootFacts {
        required: true,
        packages: vec!["libc6".into()],
    });
    let out = running_newest_kernel(&f, &Policy::default());
    assert_eq!(out.status, Status::Fail);
    assert_eq!(out.evidence["offending"][0], "libc6");
    f.reboot = Observation::error("unreadable");
    assert_eq!(status_by_default(running_newest_kernel, &f), Status::Error);
    let mut f = facts();
    if let Observation::Observed(k) = &mut f.kernel {
        k.newest_installed = "6.1.0-21-amd64".into();
        k.running_is_newest = false;
    }
    assert_eq!(status_by_default(running_newest_kernel, &f), Status::Fail);
    f.kernel = Observation::not_applicable("reading a tree");
    assert_eq!(
        status_by_default(running_newest_kernel, &f),
        Status::NotApplicable
    );
}

#[test]
fn stale_indexes_fail_after_the_policy_days() {
    let mut f = facts();
    assert_eq!(status_by_default(package_index_fresh, &f), Status::Pass);
    f.index_refresh = Observation::Observed(IndexRefresh {
        refreshed_at: 0,
        age_seconds: 8 * DAY,
        source: "x".into(),
    });
    assert_eq!(status_by_default(package_index_fresh, &f), Status::Fail);
}

#[test]
fn automatic_updates_need_the_tool_enabled() {
    let mut f = facts();
    assert_eq!(
        status_by_default(automatic_updates_enabled, &f),
        Status::Pass
    );
    f.automatic_updates = Observation::Observed(AutomaticUpdates {
        tool: "unattended-upgrades".into(),
        installed: true,
        setting: Some("0".into()),
        enabled: false,
    });
    assert_eq!(
        status_by_default(automatic_updates_enabled, &f),
        Status::Fail
    );
}

#[test]
fn the_policy_defaults_are_documented_values_and_unknown_keys_are_refused() {
    let policy = Policy::from_toml("[patch_level]\n").unwrap();
    assert_eq!(policy.patch_level, PatchLevelPolicy::default());
    assert_eq!(policy.patch_level.max_index_age_days, 7);
    assert!(Policy::from_toml("[patch_level]\nmax_pending = 1\n").is_err());
}
