//! The `accounts` collector: local accounts and who may become root, read from the files
//! under the host's root (so it works on a mounted image or a debootstrap tree as well).
//!
//! Sources: `/etc/passwd`, `/etc/shadow`, `/etc/group`, `/etc/login.defs`, `/etc/sudoers` and
//! its includes, `/etc/security/pwquality.conf{,.d/*.conf}`, `/var/log/lastlog`,
//! `/var/log/wtmp`, and `~/.ssh/authorized_keys{,2}` of every account. Each source becomes its
//! own [`Observation`]; only an unreadable `/etc/passwd` fails the collector as a whole. The
//! parsing lives in one pure sub-module per source; this file only reads and assembles.

mod authorized_keys;
mod colon_file;
mod group;
mod lastlog;
mod login_defs;
mod passwd;
mod pwquality;
mod shadow;
mod sudoers;
mod sudoers_tree;
mod wtmp;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::time::{SystemTime, UNIX_EPOCH};

use evidence_protocol::facts::accounts::{
    AuthorizedKeysFile, LastLogin, LoginDefs, PasswdEntry, PwQuality, Sudoers,
};
use evidence_protocol::facts::AccountsFacts;
use evidence_protocol::{Observation, Platform};

use crate::{caps, Host, ReadError, Source};

/// A line of an account file that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl ParseError {
    fn line(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

const PASSWD: &str = "/etc/passwd";
const SHADOW: &str = "/etc/shadow";
const GROUP: &str = "/etc/group";
const LOGIN_DEFS: &str = "/etc/login.defs";
const SUDOERS: &str = "/etc/sudoers";
const PWQUALITY: &str = "/etc/security/pwquality.conf";
const PWQUALITY_DIR: &str = "/etc/security/pwquality.conf.d";
const LASTLOG: &str = "/var/log/lastlog";
const WTMP: &str = "/var/log/wtmp";

pub const PLATFORMS: &[Platform] = &[Platform::Linux];

/// What the collector reads. sudoers may also `#include` files elsewhere, which are read but
/// not watched (Debian's and RHEL's sudoers only include `/etc/sudoers.d`).
pub const READS: &[Source] = &[
    Source::Watched(PASSWD),
    Source::Watched(SHADOW),
    Source::Watched(GROUP),
    Source::Watched(LOGIN_DEFS),
    Source::Watched(SUDOERS),
    Source::Watched("/etc/sudoers.d"),
    Source::Watched(PWQUALITY),
    Source::Watched(PWQUALITY_DIR),
    Source::Polled(LASTLOG),
    Source::Polled(WTMP),
    Source::InHomes(".ssh/authorized_keys"),
    Source::InHomes(".ssh/authorized_keys2"),
];

/// Observes the host's accounts now.
pub fn collect(host: &Host) -> Observation<AccountsFacts> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    collect_at(host, now)
}

/// Observes the host's accounts, stamping the facts with `observed_at` (Unix seconds).
pub fn collect_at(host: &Host, observed_at: i64) -> Observation<AccountsFacts> {
    let passwd = match parsed(host, PASSWD, passwd::parse) {
        Observation::Observed(entries) => entries,
        Observation::Error { reason } | Observation::NotApplicable { reason } => {
            return Observation::error(reason)
        }
    };
    Observation::Observed(AccountsFacts {
        observed_at,
        shadow: parsed(host, SHADOW, shadow::parse),
        groups: parsed(host, GROUP, group::parse),
        login_defs: read_login_defs(host),
        sudoers: read_sudoers(host),
        pwquality: read_pwquality(host),
        last_logins: read_last_logins(host, &passwd),
        authorized_keys: read_authorized_keys(host, &passwd),
        passwd: Observation::Observed(passwd),
    })
}

/// Reads a text file and parses it; any failure is an error naming the file.
fn parsed<T>(host: &Host, path: &str, parse: fn(&str) -> Result<T, ParseError>) -> Observation<T> {
    match host.read_to_string(path, caps::CONFIG) {
        Ok(text) => parse(&text).map_err(|e| format!("{path}: {e}")).into(),
        Err(err) => Observation::error(read_reason(&err)),
    }
}

fn read_reason(err: &ReadError) -> String {
    match err {
        ReadError::PermissionDenied { .. } => {
            format!("{err} (reading it needs root; the agent is not running as root)")
        }
        _ => err.to_string(),
    }
}

/// A missing `login.defs` reads as one with no settings, as shadow-utils treats it.
fn read_login_defs(host: &Host) -> Observation<LoginDefs> {
    match host.read_to_string(LOGIN_DEFS, caps::CONFIG) {
        Err(err) if err.is_not_found() => Observation::Observed(LoginDefs::default()),
        _ => parsed(host, LOGIN_DEFS, login_defs::parse),
    }
}

fn read_sudoers(host: &Host) -> Observation<Sudoers> {
    let mut read_file = |path: &str| {
        host.read_to_string(path, caps::CONFIG)
            .map_err(|e| (read_reason(&e), e.is_not_found()))
    };
    let mut list_dir = |path: &str| {
        host.read_dir(path)
            .map_err(|e| (read_reason(&e), e.is_not_found()))
    };
    let mut reader = sudoers_tree::Reader {
        read_file: &mut read_file,
        list_dir: &mut list_dir,
    };
    match host.read(SUDOERS, caps::CONFIG) {
        Err(err) if err.is_not_found() => {
            Observation::not_applicable("sudo is not installed (no /etc/sudoers)")
        }
        _ => sudoers_tree::read(SUDOERS, &mut reader).into(),
    }
}

fn read_pwquality(host: &Host) -> Observation<PwQuality> {
    let mut files = vec![PWQUALITY.to_string()];
    match host.read_dir(PWQUALITY_DIR) {
        Ok(names) => files.extend(
            names
                .iter()
                .filter(|n| n.ends_with(".conf"))
                .map(|n| format!("{PWQUALITY_DIR}/{n}")),
        ),
        Err(err) if err.is_not_found() => {}
        Err(err) => return Observation::error(read_reason(&err)),
    }
    let mut quality = PwQuality::default();
    for file in files {
        match host.read_to_string(&file, caps::CONFIG) {
            Ok(text) => {
                if let Err(err) = pwquality::parse_into(&text, &mut quality.settings) {
                    return Observation::error(format!("{file}: {err}"));
                }
                quality.files.push(file);
            }
            Err(err) if err.is_not_found() => {}
            Err(err) => return Observation::error(read_reason(&err)),
        }
    }
    if quality.files.is_empty() {
        return Observation::not_applicable(
            "libpwquality is not configured (no /etc/security/pwquality.conf)",
        );
    }
    Observation::Observed(quality)
}

/// The later of lastlog (per uid) and wtmp (per name) for each account.
fn read_last_logins(
    host: &Host,
    passwd: &[PasswdEntry],
) -> Observation<BTreeMap<String, LastLogin>> {
    let mut found_any = false;
    let mut logins: BTreeMap<String, LastLogin> = BTreeMap::new();
    let mut keep = |name: &str, login: LastLogin| {
        if logins.get(name).is_none_or(|seen| seen.time < login.time) {
            logins.insert(name.to_string(), login);
        }
    };
    match read_lastlog(host, passwd) {
        Ok(Some(by_uid)) => {
            found_any = true;
            for entry in passwd {
                if let Some(login) = by_uid.get(&entry.uid) {
                    keep(&entry.name, login.clone());
                }
            }
        }
        Ok(None) => {}
        Err(reason) => return Observation::error(reason),
    }
    match host.read(WTMP, caps::WTMP) {
        Ok(bytes) => {
            found_any = true;
            match wtmp::last_logins(&bytes) {
                Ok(by_name) => by_name.into_iter().for_each(|(name, l)| keep(&name, l)),
                Err(why) => return Observation::error(format!("{WTMP}: {why}")),
            }
        }
        Err(err) if err.is_not_found() => {}
        Err(err) => return Observation::error(read_reason(&err)),
    }
    if !found_any {
        return Observation::error(format!(
            "neither {LASTLOG} nor {WTMP} exists, so last logins are unknown (lastlog2 and wtmpdb databases are not read)"
        ));
    }
    Observation::Observed(logins)
}

/// Reads each account's lastlog record by seeking to it: the file is sparse and indexed by
/// uid, so its apparent size can be far beyond what is worth reading whole. `Ok(None)` when
/// the file does not exist.
fn read_lastlog(
    host: &Host,
    passwd: &[PasswdEntry],
) -> Result<Option<BTreeMap<u32, LastLogin>>, String> {
    let path = host.path(LASTLOG);
    let shown = path.display();
    // Only a regular file: a FIFO would hang the open, a device is not a lastlog.
    let (mut file, len) = match host.open_records(LASTLOG) {
        Ok(opened) => opened,
        Err(err) if err.is_not_found() => return Ok(None),
        Err(err) => return Err(read_reason(&err)),
    };
    let mut by_uid = BTreeMap::new();
    for entry in passwd {
        let offset = u64::from(entry.uid) * lastlog::RECORD_SIZE as u64;
        if offset >= len {
            continue;
        }
        let mut record = Vec::with_capacity(lastlog::RECORD_SIZE);
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| {
                (&mut file)
                    .take(lastlog::RECORD_SIZE as u64)
                    .read_to_end(&mut record)
            })
            .map_err(|e| format!("{shown}: {e}"))?;
        if let Some(login) =
            lastlog::decode_at(entry.uid, &record, len).map_err(|e| format!("{shown}: {e}"))?
        {
            by_uid.insert(entry.uid, login);
        }
    }
    Ok(Some(by_uid))
}

fn read_authorized_keys(host: &Host, passwd: &[PasswdEntry]) -> Vec<AuthorizedKeysFile> {
    let mut files = Vec::new();
    for entry in passwd {
        if !entry.home.starts_with('/') {
            continue;
        }
        for name in ["authorized_keys", "authorized_keys2"] {
            let path = format!("{}/.ssh/{name}", entry.home.trim_end_matches('/'));
            let keys = match host.read_to_string(&path, caps::CONFIG) {
                Ok(text) => Observation::Observed(authorized_keys::parse(&text)),
                Err(err) if err.is_not_found() => continue,
                Err(err) => Observation::error(read_reason(&err)),
            };
            files.push(AuthorizedKeysFile {
                account: entry.name.clone(),
                path,
                keys,
            });
        }
    }
    files.sort_by(|a, b| (&a.account, &a.path).cmp(&(&b.account, &b.path)));
    files
}

#[cfg(test)]
mod tests;
