//! Tests of the accounts checks on hand-built facts shaped like the collector's output on a
//! Debian tree (root with `*`, a few `useradd` accounts).

use std::collections::BTreeMap;

use evidence_protocol::facts::accounts::*;
use evidence_protocol::facts::AccountsFacts;
use evidence_protocol::Observation;
use serde_json::json;

use super::*;

const NOW: i64 = 1_796_256_000; // 2026-11-28
const TODAY: i64 = NOW / DAY;

fn user(name: &str, uid: u32, gid: u32, shell: &str) -> PasswdEntry {
    PasswdEntry {
        name: name.into(),
        uid,
        gid,
        gecos: String::new(),
        home: format!("/home/{name}"),
        shell: shell.into(),
        password: PasswordState::Shadowed,
        interactive: !shell.ends_with("nologin"),
    }
}

fn shadow(name: &str, password: PasswordState, last_change: i64, max: Option<i64>) -> ShadowEntry {
    ShadowEntry {
        name: name.into(),
        password,
        last_change: Some(last_change),
        min_days: Some(0),
        max_days: max,
        warn_days: Some(7),
        inactive_days: None,
        expire: None,
    }
}

fn hash() -> PasswordState {
    PasswordState::Hash {
        scheme: "yescrypt".into(),
    }
}

fn grant(principals: &[&str], nopasswd: bool) -> SudoGrant {
    SudoGrant {
        file: "/etc/sudoers".into(),
        line: 1,
        principals: principals.iter().map(|p| p.to_string()).collect(),
        users: principals.iter().map(|p| p.to_string()).collect(),
        commands: vec![SudoCommand {
            hosts: "ALL".into(),
            runas: Some("ALL:ALL".into()),
            command: "ALL".into(),
            nopasswd,
        }],
    }
}

/// A Debian-like clean host with one well-kept user, `bob`, who logged in yesterday.
fn clean() -> AccountsFacts {
    AccountsFacts {
        observed_at: NOW,
        passwd: Observation::Observed(vec![
            user("root", 0, 0, "/bin/bash"),
            user("daemon", 1, 1, "/usr/sbin/nologin"),
            user("bob", 1001, 1001, "/bin/bash"),
        ]),
        shadow: Observation::Observed(vec![
            shadow("root", PasswordState::NoPassword, TODAY - 400, Some(99999)),
            shadow(
                "daemon",
                PasswordState::NoPassword,
                TODAY - 400,
                Some(99999),
            ),
            shadow("bob", hash(), TODAY - 10, Some(90)),
        ]),
        groups: Observation::Observed(vec![
            GroupEntry {
                name: "root".into(),
                gid: 0,
                members: vec![],
            },
            GroupEntry {
                name: "sudo".into(),
                gid: 27,
                members: vec![],
            },
        ]),
        login_defs: Observation::Observed(LoginDefs {
            pass_max_days: Some(90),
            ..Default::default()
        }),
        sudoers: Observation::Observed(Sudoers {
            files: vec!["/etc/sudoers".into()],
            grants: vec![grant(&["root"], false), grant(&["%sudo"], false)],
            ..Default::default()
        }),
        pwquality: Observation::not_applicable("absent"),
        last_logins: Observation::Observed(BTreeMap::from([(
            "bob".to_string(),
            LastLogin {
                time: NOW - DAY,
                line: "pts/0".into(),
                host: String::new(),
                source: "wtmp".into(),
            },
        )])),
        authorized_keys: vec![],
    }
}

fn run(check: &str, facts: &AccountsFacts, policy: &Policy) -> Outcome {
    let found = CHECKS.iter().find(|c| c.id == check).expect("check exists");
    match found.evaluate {
        Evaluator::Accounts(f) => f(facts, policy),
        _ => unreachable!("accounts checks read accounts facts"),
    }
}

fn offending(outcome: &Outcome) -> &serde_json::Value {
    &outcome.evidence["offending"]
}

fn passwd_mut(facts: &mut AccountsFacts) -> &mut Vec<PasswdEntry> {
    match &mut facts.passwd {
        Observation::Observed(p) => p,
        _ => unreachable!(),
    }
}

fn shadow_mut(facts: &mut AccountsFacts) -> &mut Vec<ShadowEntry> {
    match &mut facts.shadow {
        Observation::Observed(s) => s,
        _ => unreachable!(),
    }
}

#[test]
fn a_clean_host_passes_every_check_and_the_allow_list_is_not_applicable_without_a_list() {
    let policy = Policy::default();
    for check in CHECKS {
        let outcome = run(check.id, &clean(), &policy);
        let expected = if check.id == "accounts.admins_allowlisted" {
            Status::NotApplicable
        } else {
            Status::Pass
        };
        assert_eq!(outcome.status, expected, "{}: {:?}", check.id, outcome);
    }
    let outcome = run("accounts.admins_allowlisted", &clean(), &policy);
    assert_eq!(outcome.evidence["admins"], json!(["root"]));
    assert!(outcome.reason.unwrap().contains("allowed_admins"));
}

#[test]
fn a_second_uid0_account_fails() {
    let mut facts = clean();
    passwd_mut(&mut facts).push(user("toor", 0, 0, "/bin/bash"));
    let outcome = run("accounts.no_extra_uid0", &facts, &Policy::default());
    assert_eq!(outcome.status, Status::Fail);
    assert_eq!(offending(&outcome), &json!(["toor"]));
    assert_eq!(outcome.evidence["uid0_accounts"], json!(["root", "toor"]));
}

#[test]
fn an_empty_password_in_shadow_or_passwd_fails_and_an_unreadable_shadow_is_an_error() {
    let mut facts = clean();
    shadow_mut(&mut facts)[2].password = PasswordState::Empty;
    passwd_mut(&mut facts)[1].password = PasswordState::Empty;
    let outcome = run("accounts.no_empty_passwords", &facts, &Policy::default());
    assert_eq!(outcome.status, Status::Fail);
    assert_eq!(offending(&outcome), &json!(["bob", "daemon"]));

    let mut facts = clean();
    facts.shadow = Observation::error("/etc/shadow: permission denied");
    for check in [
        "accounts.no_empty_passwords",
        "accounts.password_max_age",
        "accounts.no_dormant_accounts",
    ] {
        let outcome = run(check, &facts, &Policy::default());
        assert_eq!(outcome.status, Status::Error, "{check}");
        assert!(
            outcome.reason.unwrap().contains("permission denied"),
            "{check}"
        );
    }
    assert_eq!(
        run("accounts.no_extra_uid0", &facts, &Policy::default()).status,
        Status::Pass
    );
}

#[test]
fn a_nopasswd_grant_or_no_authenticate_default_fails_and_naming_the_users() {
    let mut facts = clean();
    if let Observation::Observed(sudoers) = &mut facts.sudoers {
        sudoers.grants.push(grant(&["carol"], true));
        sudoers
            .no_authenticate_defaults
            .push("/etc/sudoers:9: Defaults:dave !authenticate".into());
    }
    let outcome = run("accounts.no_nopasswd_sudo", &facts, &Policy::default());
    assert_eq!(outcome.status, Status::Fail);
    assert_eq!(outcome.evidence["offending_users"], json!(["carol"]));
    assert_eq!(offending(&outcome).as_array().unwrap().len(), 2);
}

#[test]
fn no_sudo_is_not_applicable_and_a_partly_unreadable_sudoers_is_an_error() {
    let mut facts = clean();
    facts.sudoers = Observation::not_applicable("sudo is not installed (no /etc/sudoers)");
    assert_eq!(
        run("accounts.no_nopasswd_sudo", &facts, &Policy::default()).status,
        Status::NotApplicable
    );
    let mut facts = clean();
    if let Observation::Observed(sudoers) = &mut facts.sudoers {
        sudoers
            .errors
            .push("/etc/sudoers.d/x: permission denied".into());
    }
    assert_eq!(
        run("accounts.no_nopasswd_sudo", &facts, &Policy::default()).status,
        Status::Error
    );
}

#[test]
fn password_max_age_flags_login_defs_and_interactive_accounts_with_passwords_only() {
    let mut facts = clean();
    facts.login_defs = Observation::Observed(LoginDefs {
        pass_max_days: Some(99999),
        ..Default::default()
    });
    shadow_mut(&mut facts)[2].max_days = None;
    let outcome = run("accounts.password_max_age", &facts, &Policy::default());
    assert_eq!(outcome.status, Status::Fail);
    // root (no password) and daemon (nologin) are not flagged despite 99999.
    assert_eq!(
        offending(&outcome),
        &json!([{"setting": "PASS_MAX_DAYS", "value": 99999}, {"account": "bob", "max_days": null}])
    );
    let mut policy = Policy::default();
    policy.accounts.password_max_age_days = 100_000;
    shadow_mut(&mut facts)[2].max_days = Some(99999);
    assert_eq!(
        run("accounts.password_max_age", &facts, &policy).status,
        Status::Pass
    );
}

#[test]
fn an_account_idle_past_the_limit_or_never_used_since_an_old_change_is_dormant() {
    let mut facts = clean();
    passwd_mut(&mut facts).push(user("dave", 1002, 1002, "/bin/bash"));
    passwd_mut(&mut facts).push(user("erin", 1003, 1003, "/bin/bash"));
    passwd_mut(&mut facts).push(user("fred", 1004, 1004, "/bin/bash"));
    shadow_mut(&mut facts).push(shadow("dave", hash(), TODAY - 5, None));
    shadow_mut(&mut facts).push(shadow("erin", hash(), TODAY - 200, None));
    shadow_mut(&mut facts).push(shadow("fred", PasswordState::Locked, TODAY - 200, None));
    if let Observation::Observed(logins) = &mut facts.last_logins {
        logins.insert(
            "dave".into(),
            LastLogin {
                time: NOW - 91 * DAY,
                line: "tty1".into(),
                host: String::new(),
                source: "lastlog".into(),
            },
        );
    }
    let outcome = run("accounts.no_dormant_accounts", &facts, &Policy::default());
    assert_eq!(outcome.status, Status::Fail);
    assert_eq!(
        offending(&outcome),
        &json!([
            {"account": "dave", "last_login": NOW - 91 * DAY, "idle_days": 91},
            {"account": "erin", "last_login": null, "idle_days": 200},
        ])
    );
    // fred is locked: not a usable account, so not counted.
    assert_eq!(
        outcome.evidence["accounts_checked"],
        json!(["bob", "dave", "erin"])
    );
    let mut policy = Policy::default();
    policy.accounts.dormant_days = 365;
    assert_eq!(
        run("accounts.no_dormant_accounts", &facts, &policy).status,
        Status::Pass
    );
}

#[test]
fn a_key_only_account_counts_for_dormancy() {
    let mut facts = clean();
    passwd_mut(&mut facts).push(user("gina", 1005, 1005, "/bin/bash"));
    shadow_mut(&mut facts).push(shadow("gina", PasswordState::NoPassword, TODAY - 300, None));
    assert_eq!(
        run("accounts.no_dormant_accounts", &facts, &Policy::default()).status,
        Status::Pass
    );
    facts.authorized_keys.push(AuthorizedKeysFile {
        account: "gina".into(),
        path: "/home/gina/.ssh/authorized_keys".into(),
        keys: Observation::Observed(AuthorizedKeys {
            keys: vec![AuthorizedKey {
                line: 1,
                key_type: "ssh-ed25519".into(),
                fingerprint: "SHA256:x".into(),
                comment: String::new(),
                options: vec![],
            }],
            invalid_lines: vec![],
        }),
    });
    let outcome = run("accounts.no_dormant_accounts", &facts, &Policy::default());
    assert_eq!(outcome.status, Status::Fail);
    assert_eq!(offending(&outcome)[0]["account"], "gina");
}

#[test]
fn admins_from_groups_primary_gids_sudoers_and_aliases_must_be_allow_listed() {
    let mut facts = clean();
    if let Observation::Observed(groups) = &mut facts.groups {
        groups[1].members.push("bob".into());
        groups.push(GroupEntry {
            name: "wheel".into(),
            gid: 10,
            members: vec!["carol".into()],
        });
    }
    passwd_mut(&mut facts).push(user("walt", 1010, 10, "/bin/bash"));
    if let Observation::Observed(sudoers) = &mut facts.sudoers {
        let mut ops = grant(&["OPS"], false);
        ops.users = vec!["dave".into(), "!erin".into(), "#1001".into()];
        sudoers.grants.push(ops);
    }
    let mut policy = Policy::default();
    policy.accounts.allowed_admins = Some(vec!["bob".into(), "carol".into()]);
    let outcome = run("accounts.admins_allowlisted", &facts, &policy);
    assert_eq!(outcome.status, Status::Fail);
    assert_eq!(
        outcome.evidence["admins"],
        json!(["bob", "carol", "dave", "root", "walt"])
    );
    assert_eq!(offending(&outcome), &json!(["dave", "walt"]));
    policy.accounts.allowed_admins = Some(vec![
        "bob".into(),
        "carol".into(),
        "dave".into(),
        "walt".into(),
    ]);
    assert_eq!(
        run("accounts.admins_allowlisted", &facts, &policy).status,
        Status::Pass
    );
}

#[test]
fn the_policy_defaults_are_documented_values_and_unknown_keys_are_refused() {
    let policy = Policy::from_toml("[accounts]\n").unwrap();
    assert_eq!(policy.accounts.password_max_age_days, 365);
    assert_eq!(policy.accounts.dormant_days, 90);
    assert_eq!(policy.accounts.allowed_admins, None);
    assert_eq!(policy.accounts.admin_groups, ["sudo", "wheel", "admin"]);
    let policy = Policy::from_toml("[accounts]\nallowed_admins = []\ndormant_days = 30\n").unwrap();
    assert_eq!(policy.accounts.allowed_admins, Some(vec![]));
    assert!(Policy::from_toml("[accounts]\ndormant_day = 30\n").is_err());
}
