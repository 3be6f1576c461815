//! Checks over the `accounts` collector's facts: extra uid-0 accounts, empty passwords,
//! passwordless sudo, password maximum age, dormant accounts and the admin allow-list.
//!
//! Facts come from `evidence_collectors::accounts` (passwd, shadow, group, login.defs, sudoers,
//! lastlog/wtmp, authorized_keys); thresholds from the `[accounts]` table of the policy file.
//! Every check's evidence holds the observed values and an `offending` list. A source the
//! check needs that could not be read makes it `error`, unless what was read already shows a
//! failure (an offender found is a fail whatever else is unknown).

use std::collections::BTreeSet;

use evidence_protocol::facts::accounts::{PasswdEntry, PasswordState, ShadowEntry};
use evidence_protocol::facts::AccountsFacts;
use evidence_protocol::Observation;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Check, Evaluator};
use crate::{Outcome, Policy, Status};

const DAY: i64 = 86_400;

/// Thresholds for the `accounts` checks; every field has a documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsPolicy {
    /// Longest allowed password lifetime in days, for `PASS_MAX_DAYS` in `/etc/login.defs` and
    /// the shadow maximum age of every interactive account that has a password. Default 365.
    pub password_max_age_days: i64,
    /// An interactive account that can authenticate and has not logged in for more than this
    /// many days is dormant. Default 90.
    pub dormant_days: i64,
    /// Accounts allowed to hold admin rights (admin group membership or any sudo grant);
    /// `root` is always allowed. Default: unset, and `accounts.admins_allowlisted` is
    /// not applicable until the organisation lists its admins.
    pub allowed_admins: Option<Vec<String>>,
    /// Groups whose members are admins. Default `["sudo", "wheel", "admin"]`.
    pub admin_groups: Vec<String>,
}

impl Default for AccountsPolicy {
    fn default() -> Self {
        Self {
            password_max_age_days: 365,
            dormant_days: 90,
            allowed_admins: None,
            admin_groups: vec!["sudo".into(), "wheel".into(), "admin".into()],
        }
    }
}

/// Where these checks' links to controls are (data, reviewed with its sources).
pub const MAPPINGS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/checks/accounts.toml"
));

/// This collector's section of the policy.
pub type Settings = AccountsPolicy;

/// The `accounts` checks.
pub const CHECKS: &[Check] = &[
    Check {
        id: "accounts.no_extra_uid0",
        title: "No account other than root has uid 0",
        evaluate: Evaluator::Accounts(no_extra_uid0),
    },
    Check {
        id: "accounts.no_empty_passwords",
        title: "No account has an empty password",
        evaluate: Evaluator::Accounts(no_empty_passwords),
    },
    Check {
        id: "accounts.no_nopasswd_sudo",
        title: "No sudo grant runs without a password",
        evaluate: Evaluator::Accounts(no_nopasswd_sudo),
    },
    Check {
        id: "accounts.password_max_age",
        title: "Passwords expire within the policy's maximum age",
        evaluate: Evaluator::Accounts(password_max_age),
    },
    Check {
        id: "accounts.no_dormant_accounts",
        title: "No interactive account is dormant",
        evaluate: Evaluator::Accounts(no_dormant_accounts),
    },
    Check {
        id: "accounts.admins_allowlisted",
        title: "Only allow-listed accounts have admin rights",
        evaluate: Evaluator::Accounts(admins_allowlisted),
    },
];

fn no_extra_uid0(facts: &AccountsFacts, _policy: &Policy) -> Outcome {
    let passwd = need!(facts.passwd, "/etc/passwd");
    let uid0: Vec<&str> = passwd
        .iter()
        .filter(|e| e.uid == 0)
        .map(|e| e.name.as_str())
        .collect();
    let offending: Vec<&str> = uid0.iter().copied().filter(|n| *n != "root").collect();
    Outcome::pass_if(
        offending.is_empty(),
        json!({ "uid0_accounts": uid0, "offending": offending }),
        format!(
            "accounts other than root with uid 0: {}",
            offending.join(", ")
        ),
    )
}

fn no_empty_passwords(facts: &AccountsFacts, _policy: &Policy) -> Outcome {
    let passwd = need!(facts.passwd, "/etc/passwd");
    let mut offending: BTreeSet<&str> = passwd
        .iter()
        .filter(|e| e.password == PasswordState::Empty)
        .map(|e| e.name.as_str())
        .collect();
    match &facts.shadow {
        Observation::Observed(shadow) => offending.extend(
            shadow
                .iter()
                .filter(|e| e.password == PasswordState::Empty)
                .map(|e| e.name.as_str()),
        ),
        Observation::Error { reason } | Observation::NotApplicable { reason }
            if offending.is_empty() =>
        {
            return Outcome::error(format!("/etc/shadow: {reason}"))
        }
        _ => {}
    }
    Outcome::pass_if(
        offending.is_empty(),
        json!({ "accounts_checked": passwd.len(), "offending": offending }),
        format!("accounts with an empty password: {}", join(&offending)),
    )
}

fn no_nopasswd_sudo(facts: &AccountsFacts, _policy: &Policy) -> Outcome {
    let sudoers = need!(facts.sudoers, "sudoers");
    let mut offending = Vec::new();
    let mut users = BTreeSet::new();
    for grant in &sudoers.grants {
        let commands: Vec<&str> = grant
            .commands
            .iter()
            .filter(|c| c.nopasswd)
            .map(|c| c.command.as_str())
            .collect();
        if commands.is_empty() {
            continue;
        }
        users.extend(grant.users.iter().map(String::as_str));
        offending.push(json!({
            "file": grant.file, "line": grant.line, "users": grant.users, "commands": commands,
        }));
    }
    for defaults in &sudoers.no_authenticate_defaults {
        offending.push(json!({ "defaults": defaults }));
    }
    let evidence = json!({
        "files": sudoers.files, "offending_users": users, "offending": offending,
        "errors": sudoers.errors,
    });
    if offending.is_empty() && !sudoers.errors.is_empty() {
        return error_with(
            evidence,
            format!(
                "sudoers could not be read completely: {}",
                sudoers.errors.join("; ")
            ),
        );
    }
    Outcome::pass_if(
        offending.is_empty(),
        evidence,
        format!(
            "sudo runs commands without a password for: {}",
            join(&users)
        ),
    )
}

fn password_max_age(facts: &AccountsFacts, policy: &Policy) -> Outcome {
    let limit = policy.accounts.password_max_age_days;
    let passwd = need!(facts.passwd, "/etc/passwd");
    let login_defs = need!(facts.login_defs, "/etc/login.defs");
    let shadow = need!(facts.shadow, "/etc/shadow");
    let too_long = |days: Option<i64>| days.is_none_or(|d| d < 0 || d > limit);
    let mut offending = Vec::new();
    if too_long(login_defs.pass_max_days) {
        offending.push(json!({ "setting": "PASS_MAX_DAYS", "value": login_defs.pass_max_days }));
    }
    for entry in passwd.iter().filter(|e| e.interactive) {
        let Some(shadow) = shadow_of(shadow, entry) else {
            continue;
        };
        if has_password(shadow) && too_long(shadow.max_days) {
            offending.push(json!({ "account": entry.name, "max_days": shadow.max_days }));
        }
    }
    Outcome::pass_if(
        offending.is_empty(),
        json!({
            "max_age_days": limit, "login_defs_pass_max_days": login_defs.pass_max_days,
            "offending": offending,
        }),
        format!(
            "{} password maximum ages above {limit} days or unset",
            offending.len()
        ),
    )
}

/// Interactive accounts that can authenticate (a password that is empty or set, or an
/// authorized SSH key; not locked with `!`, not expired) and whose last login is more than
/// `dormant_days` ago. An account that never logged in counts from its last password change
/// (shadow field 3, usually its creation), and is dormant when that date is unknown.
fn no_dormant_accounts(facts: &AccountsFacts, policy: &Policy) -> Outcome {
    let limit = policy.accounts.dormant_days;
    let passwd = need!(facts.passwd, "/etc/passwd");
    let shadow = need!(facts.shadow, "/etc/shadow");
    let logins = need!(facts.last_logins, "last logins");
    let now = facts.observed_at;
    let with_keys: BTreeSet<&str> = facts
        .authorized_keys
        .iter()
        .filter(|f| f.keys.observed().is_none_or(|k| !k.keys.is_empty()))
        .map(|f| f.account.as_str())
        .collect();
    let mut checked = Vec::new();
    let mut offending = Vec::new();
    for entry in passwd.iter().filter(|e| e.interactive) {
        let Some(shadow) = shadow_of(shadow, entry) else {
            continue;
        };
        let expired = shadow.expire.is_some_and(|day| day * DAY <= now);
        let can_authenticate = shadow.password != PasswordState::Locked
            && (has_password(shadow) || with_keys.contains(entry.name.as_str()));
        if expired || !can_authenticate {
            continue;
        }
        checked.push(entry.name.as_str());
        let last_login = logins.get(&entry.name).map(|l| l.time);
        let since = last_login.or(shadow.last_change.filter(|d| *d > 0).map(|d| d * DAY));
        let idle_days = since.map(|t| (now - t) / DAY);
        if idle_days.is_none_or(|d| d > limit) {
            offending.push(json!({
                "account": entry.name, "last_login": last_login, "idle_days": idle_days,
            }));
        }
    }
    Outcome::pass_if(
        offending.is_empty(),
        json!({ "dormant_days": limit, "accounts_checked": checked, "offending": offending }),
        format!(
            "{} interactive accounts idle for more than {limit} days",
            offending.len()
        ),
    )
}

fn admins_allowlisted(facts: &AccountsFacts, policy: &Policy) -> Outcome {
    let passwd = need!(facts.passwd, "/etc/passwd");
    let groups = need!(facts.groups, "/etc/group");
    let admins_by_group = |name: &str| -> Vec<String> {
        let Some(group) = groups.iter().find(|g| g.name == name) else {
            return Vec::new();
        };
        let primary = passwd
            .iter()
            .filter(|e| e.gid == group.gid)
            .map(|e| e.name.clone());
        group.members.iter().cloned().chain(primary).collect()
    };
    let mut admins: BTreeSet<String> = BTreeSet::new();
    for group in &policy.accounts.admin_groups {
        admins.extend(admins_by_group(group));
    }
    let mut sudo_errors = Vec::new();
    match &facts.sudoers {
        Observation::Observed(sudoers) => {
            sudo_errors.extend(sudoers.errors.iter().cloned());
            for user in sudoers.grants.iter().flat_map(|g| &g.users) {
                if user.starts_with('!') {
                    continue;
                } else if let Some(group) = user.strip_prefix('%').filter(|g| !g.starts_with(':')) {
                    admins.extend(admins_by_group(group));
                } else if let Some(uid) = user.strip_prefix('#').and_then(|u| u.parse::<u32>().ok())
                {
                    admins.extend(
                        passwd
                            .iter()
                            .filter(|e| e.uid == uid)
                            .map(|e| e.name.clone()),
                    );
                } else {
                    admins.insert(user.clone());
                }
            }
        }
        Observation::Error { reason } => sudo_errors.push(reason.clone()),
        Observation::NotApplicable { .. } => {}
    }
    let Some(allowed) = &policy.accounts.allowed_admins else {
        return Outcome {
            status: Status::NotApplicable,
            evidence: json!({ "admins": admins, "allowed_admins": Value::Null }),
            reason: Some(
                "the policy lists no allowed admins (set accounts.allowed_admins to evaluate)"
                    .into(),
            ),
        };
    };
    let offending: Vec<&String> = admins
        .iter()
        .filter(|a| a.as_str() != "root" && !allowed.contains(a))
        .collect();
    let evidence = json!({
        "admins": admins, "allowed_admins": allowed, "offending": offending, "errors": sudo_errors,
    });
    if offending.is_empty() && !sudo_errors.is_empty() {
        return error_with(
            evidence,
            format!(
                "sudoers could not be read completely: {}",
                sudo_errors.join("; ")
            ),
        );
    }
    Outcome::pass_if(
        offending.is_empty(),
        evidence,
        format!("admins not in the allow-list: {}", join(&offending)),
    )
}

fn shadow_of<'a>(shadow: &'a [ShadowEntry], entry: &PasswdEntry) -> Option<&'a ShadowEntry> {
    shadow.iter().find(|s| s.name == entry.name)
}

/// An empty password or a hash: something a password login can match.
fn has_password(shadow: &ShadowEntry) -> bool {
    matches!(
        shadow.password,
        PasswordState::Empty | PasswordState::Hash { .. }
    )
}

fn error_with(evidence: Value, reason: String) -> Outcome {
    Outcome {
        status: Status::Error,
        evidence,
        reason: Some(reason),
    }
}

fn join<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
