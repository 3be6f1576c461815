//! Facts of the `accounts` collector: local accounts, groups, password policy, sudo grants,
//! last logins and SSH authorized keys, as read from `/etc/passwd`, `/etc/shadow`, `/etc/group`,
//! `/etc/login.defs`, sudoers (with its includes), pwquality, `/var/log/lastlog`, `/var/log/wtmp`
//! and each account's `~/.ssh/authorized_keys`.
//!
//! Each source is its own [`Observation`], so an unreadable `/etc/shadow` (agent not running as
//! root) makes only the checks that need it report `error`. Password hashes are never copied
//! into facts: only what kind of password field an account has.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Observation;

/// What the `accounts` collector observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsFacts {
    /// Unix time (seconds) when the collector ran; ages (dormancy, expiry) are measured from it.
    pub observed_at: i64,
    /// `/etc/passwd`, in file order.
    pub passwd: Observation<Vec<PasswdEntry>>,
    /// `/etc/shadow`, in file order (`Error` when unreadable, e.g. not running as root).
    pub shadow: Observation<Vec<ShadowEntry>>,
    /// `/etc/group`, in file order.
    pub groups: Observation<Vec<GroupEntry>>,
    /// `/etc/login.defs`.
    pub login_defs: Observation<LoginDefs>,
    /// `/etc/sudoers` and everything it includes (`NotApplicable` when sudo is not installed).
    pub sudoers: Observation<Sudoers>,
    /// `/etc/security/pwquality.conf` and `pwquality.conf.d/*.conf` (`NotApplicable` when absent).
    pub pwquality: Observation<PwQuality>,
    /// Last login per account: `/var/log/lastlog` and `/var/log/wtmp` merged, by account name.
    pub last_logins: Observation<BTreeMap<String, LastLogin>>,
    /// Every account's authorized SSH keys, for accounts whose home holds such a file.
    pub authorized_keys: Vec<AuthorizedKeysFile>,
}

/// One `/etc/passwd` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
    /// The password field of `/etc/passwd` itself (`x` means "see shadow").
    pub password: PasswordState,
    /// True when the shell is a real login shell (not nologin, false, sync, shutdown, halt).
    pub interactive: bool,
}

/// What a password field holds, without the hash itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum PasswordState {
    /// Empty field: no password is needed to authenticate.
    Empty,
    /// `x`: the password is in `/etc/shadow` (only meaningful in `/etc/passwd`).
    Shadowed,
    /// Starts with `!`: locked (`passwd -l`, `usermod -L`, or never set by `useradd`).
    Locked,
    /// `*` or another value that no password can match: password login disabled.
    NoPassword,
    /// A crypt(3) hash; `scheme` names its algorithm (`yescrypt`, `sha512crypt`, ...).
    Hash { scheme: String },
}

/// One `/etc/shadow` line. Day counts are days since 1970-01-01; an empty field is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowEntry {
    pub name: String,
    pub password: PasswordState,
    /// Day of the last password change (`Some(0)`: must change at next login).
    pub last_change: Option<i64>,
    pub min_days: Option<i64>,
    pub max_days: Option<i64>,
    pub warn_days: Option<i64>,
    pub inactive_days: Option<i64>,
    /// Day the account expires.
    pub expire: Option<i64>,
}

/// One `/etc/group` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    /// Secondary members as listed, in file order.
    pub members: Vec<String>,
}

/// `/etc/login.defs`: every setting, plus the password-aging ones parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginDefs {
    pub pass_max_days: Option<i64>,
    pub pass_min_days: Option<i64>,
    pub pass_warn_age: Option<i64>,
    /// Every `KEY value` line (the last one wins, as in shadow-utils).
    pub settings: BTreeMap<String, String>,
}

/// `/etc/sudoers` and its includes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sudoers {
    /// Files read, in the order sudo reads them.
    pub files: Vec<String>,
    /// User specifications (grants), in file order.
    pub grants: Vec<SudoGrant>,
    /// `User_Alias` definitions, expanded recursively.
    pub user_aliases: BTreeMap<String, Vec<String>>,
    /// `Defaults` lines that turn authentication off (`!authenticate`), as written.
    pub no_authenticate_defaults: Vec<String>,
    /// Include files or lines that could not be read or parsed; the rest was still read.
    pub errors: Vec<String>,
}

/// One sudoers user specification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SudoGrant {
    pub file: String,
    pub line: u32,
    /// The user list as written (`alice`, `%sudo`, `ADMINS`, `!bob`, `ALL`).
    pub principals: Vec<String>,
    /// The user list with `User_Alias` names expanded; `%group` items stay as they are.
    pub users: Vec<String>,
    pub commands: Vec<SudoCommand>,
}

/// One command of a grant, with the tags in force for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SudoCommand {
    pub hosts: String,
    /// The `(runas)` list as written, if any.
    pub runas: Option<String>,
    pub command: String,
    /// True when the `NOPASSWD` tag is in force for this command.
    pub nopasswd: bool,
}

/// pwquality settings: `key = value` lines, later files overriding earlier ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PwQuality {
    pub files: Vec<String>,
    /// Settings; a bare flag such as `enforce_for_root` has an empty value.
    pub settings: BTreeMap<String, String>,
}

/// An account's most recent login, as far as lastlog and wtmp tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastLogin {
    /// Unix time (seconds).
    pub time: i64,
    /// Terminal line, e.g. `pts/0`.
    pub line: String,
    /// Remote host, empty for local logins.
    pub host: String,
    /// `lastlog` or `wtmp`.
    pub source: String,
}

/// One account's authorized keys file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizedKeysFile {
    pub account: String,
    /// The path as on the host, e.g. `/home/alice/.ssh/authorized_keys`.
    pub path: String,
    pub keys: Observation<AuthorizedKeys>,
}

/// The keys of one authorized keys file, and the lines that are not keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizedKeys {
    pub keys: Vec<AuthorizedKey>,
    /// `line N: why` for each line that is neither a key, a comment nor blank.
    pub invalid_lines: Vec<String>,
}

/// One authorized key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizedKey {
    pub line: u32,
    /// e.g. `ssh-ed25519`.
    pub key_type: String,
    /// `SHA256:` + unpadded base64 of the SHA-256 of the key blob (as `ssh-keygen -lf` prints).
    pub fingerprint: String,
    pub comment: String,
    /// Options as written, e.g. `from="10.0.0.0/8"`, `command="/bin/true"`, `no-pty`.
    pub options: Vec<String>,
}
