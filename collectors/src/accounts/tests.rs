//! The collector on two fixture trees copied from a debootstrap bookworm root: as installed
//! (`clean`) and after real tools changed it in a chroot (`modified`, see the fixtures' README).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use evidence_protocol::facts::accounts::{PasswordState, Sudoers};
use evidence_protocol::facts::AccountsFacts;
use evidence_protocol::Observation;

use super::collect_at;
use crate::{Host, RecordedRunner};

/// 2026-11-28T00:00:00Z, a day after the fixtures were made.
const NOW: i64 = 1_796_256_000;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/accounts")
        .join(name)
}

fn collect_tree(root: &Path) -> AccountsFacts {
    let host = Host::new(root, Arc::new(RecordedRunner::new()));
    match collect_at(&host, NOW) {
        Observation::Observed(facts) => facts,
        other => panic!("collector failed: {other:?}"),
    }
}

fn sudoers(facts: &AccountsFacts) -> &Sudoers {
    facts.sudoers.observed().expect("sudoers observed")
}

#[test]
fn clean_tree_reads_every_source_and_finds_no_logins_keys_or_pwquality() {
    let facts = collect_tree(&fixture("clean"));
    assert_eq!(facts.observed_at, NOW);
    assert_eq!(facts.passwd.observed().unwrap().len(), 18);
    assert_eq!(facts.shadow.observed().unwrap().len(), 18);
    assert_eq!(
        facts.login_defs.observed().unwrap().pass_max_days,
        Some(99999)
    );
    let sudo = sudoers(&facts);
    assert_eq!(sudo.files, ["/etc/sudoers", "/etc/sudoers.d/README"]);
    assert_eq!(
        sudo.grants
            .iter()
            .map(|g| g.users.join(","))
            .collect::<Vec<_>>(),
        ["root", "%sudo"]
    );
    assert!(sudo.errors.is_empty(), "{:?}", sudo.errors);
    assert!(matches!(facts.pwquality, Observation::NotApplicable { .. }));
    assert_eq!(facts.last_logins.observed().unwrap().len(), 0);
    assert!(facts.authorized_keys.is_empty());
}

#[test]
fn modified_tree_follows_includes_expands_aliases_and_merges_lastlog_with_wtmp() {
    let facts = collect_tree(&fixture("modified"));
    let sudo = sudoers(&facts);
    assert_eq!(
        sudo.files,
        [
            "/etc/sudoers",
            "/etc/sudoers.d/10-ops",
            "/etc/sudoers.d/sudoers.local-ops",
            "/etc/sudoers.d/README"
        ]
    );
    let ops = sudo
        .grants
        .iter()
        .find(|g| g.principals == ["OPS"])
        .unwrap();
    assert_eq!(ops.users, ["carol", "%wheel"]);
    assert_eq!(sudo.user_aliases["ALLOPS"], ["carol", "%wheel", "dave"]);
    assert_eq!(
        sudo.no_authenticate_defaults,
        ["/etc/sudoers.d/10-ops:7: Defaults:ALLOPS !authenticate"]
    );
    // `20-backup~` is skipped, as sudo skips it.
    assert!(!sudo.grants.iter().any(|g| g.file.ends_with('~')));

    let logins = facts.last_logins.observed().unwrap();
    assert_eq!(
        logins["bob"].source, "lastlog",
        "lastlog -S is later than bob's wtmp session"
    );
    assert_eq!(logins["dave"].source, "wtmp");
    assert_eq!(logins["dave"].time, 1_735_787_045);
    assert!(!logins.contains_key("alice"));

    let quality = facts.pwquality.observed().unwrap();
    assert_eq!(quality.settings["minlen"], "14");

    assert_eq!(facts.authorized_keys.len(), 1);
    let bob = &facts.authorized_keys[0];
    assert_eq!(
        (bob.account.as_str(), bob.path.as_str()),
        ("bob", "/home/bob/.ssh/authorized_keys")
    );
    assert_eq!(bob.keys.observed().unwrap().keys.len(), 3);
}

#[test]
fn an_unreadable_shadow_is_an_error_for_shadow_only() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("clean"), dir.path());
    // A directory where the file should be fails to read even as root (unlike chmod 000).
    std::fs::remove_file(dir.path().join("etc/shadow")).unwrap();
    std::fs::create_dir(dir.path().join("etc/shadow")).unwrap();
    let facts = collect_tree(dir.path());
    match &facts.shadow {
        Observation::Error { reason } => assert!(reason.contains("/etc/shadow"), "{reason}"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(facts.passwd.observed().is_some());
    assert!(facts.groups.observed().is_some());
}

#[test]
fn permission_denied_says_root_is_needed() {
    let err = crate::ReadError::PermissionDenied {
        path: "/etc/shadow".into(),
    };
    assert_eq!(
        super::read_reason(&err),
        "/etc/shadow: permission denied (reading it needs root; the agent is not running as root)"
    );
}

#[test]
fn a_missing_passwd_fails_the_collector_and_missing_sudoers_is_not_applicable() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
    assert!(matches!(collect_at(&host, NOW), Observation::Error { .. }));
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::copy(fixture("clean/etc/passwd"), dir.path().join("etc/passwd")).unwrap();
    let facts = collect_tree(dir.path());
    assert!(matches!(facts.sudoers, Observation::NotApplicable { .. }));
    assert!(matches!(facts.shadow, Observation::Error { .. }));
    assert!(matches!(facts.last_logins, Observation::Error { .. }));
    let root = &facts.passwd.observed().unwrap()[0];
    assert_eq!(root.password, PasswordState::Shadowed);
}

#[test]
fn a_truncated_lastlog_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("modified"), dir.path());
    let lastlog = dir.path().join("var/log/lastlog");
    let bytes = std::fs::read(&lastlog).unwrap();
    std::fs::write(&lastlog, &bytes[..bytes.len() - 100]).unwrap();
    let facts = collect_tree(dir.path());
    match &facts.last_logins {
        Observation::Error { reason } => assert!(reason.contains("truncated"), "{reason}"),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The clean fixture copied into a scratch tree, with `file` (relative) removed for the
/// test to replace.
fn clean_tree_without(file: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("clean"), dir.path());
    let path = dir.path().join(file);
    if path.exists() {
        std::fs::remove_file(&path).unwrap();
    }
    dir
}

fn error_reason<T: std::fmt::Debug>(observation: &Observation<T>) -> &str {
    match observation {
        Observation::Error { reason } => reason,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Runs a tool that makes a special file; false (and a loud skip) when it fails.
fn made(program: &str, args: &[&std::ffi::OsStr]) -> bool {
    let ok = std::process::Command::new(program)
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run {program} (as root)"
        );
        eprintln!("\n*** SKIPPED: {program} failed (mknod needs root) ***\n");
    }
    ok
}

#[test]
fn a_shadow_file_over_its_cap_is_an_error_naming_it_and_its_size() {
    let dir = clean_tree_without("etc/shadow");
    let shadow = std::fs::File::create(dir.path().join("etc/shadow")).unwrap();
    shadow.set_len(1 << 30).unwrap();
    let facts = collect_tree(dir.path());
    assert_eq!(
        error_reason(&facts.shadow),
        format!(
            "{}: 1073741824 bytes, over its cap of 16777216 bytes",
            dir.path().join("etc/shadow").display()
        )
    );
    assert!(facts.passwd.observed().is_some());
    assert!(facts.groups.observed().is_some());
}

#[test]
fn a_shadow_link_to_dev_zero_is_an_error_naming_it() {
    let dir = clean_tree_without("etc/shadow");
    let dev = dir.path().join("dev");
    std::fs::create_dir(&dev).unwrap();
    let zero = dev.join("zero");
    if !made(
        "mknod",
        &[zero.as_os_str(), "c".as_ref(), "1".as_ref(), "5".as_ref()],
    ) {
        return;
    }
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("etc/shadow")).unwrap();
    let facts = collect_tree(dir.path());
    assert_eq!(
        error_reason(&facts.shadow),
        format!(
            "{} -> {}: is a character device, not a regular file",
            dir.path().join("etc/shadow").display(),
            zero.display()
        )
    );
}

#[test]
fn a_fifo_as_shadow_is_an_error_naming_it_not_a_hang() {
    let dir = clean_tree_without("etc/shadow");
    let shadow = dir.path().join("etc/shadow");
    if !made("mkfifo", &[shadow.as_os_str()]) {
        return;
    }
    let facts = collect_tree(dir.path());
    assert_eq!(
        error_reason(&facts.shadow),
        format!("{}: is a FIFO, not a regular file", shadow.display())
    );
}

#[test]
fn a_fifo_as_lastlog_is_an_error_naming_it_not_a_hang() {
    let dir = clean_tree_without("var/log/lastlog");
    let lastlog = dir.path().join("var/log/lastlog");
    if !made("mkfifo", &[lastlog.as_os_str()]) {
        return;
    }
    let facts = collect_tree(dir.path());
    assert_eq!(
        error_reason(&facts.last_logins),
        format!("{}: is a FIFO, not a regular file", lastlog.display())
    );
}

#[test]
fn a_sparse_lastlog_of_a_high_uid_is_read_by_seeking_not_refused() {
    let dir = clean_tree_without("var/log/lastlog");
    // Records up to uid 2^32 - 2 (nobody on some systems): ~1.2 TiB apparent, nothing stored.
    let lastlog = std::fs::File::create(dir.path().join("var/log/lastlog")).unwrap();
    lastlog.set_len(u64::from(u32::MAX) * 292).unwrap();
    let facts = collect_tree(dir.path());
    assert!(
        facts.last_logins.observed().is_some(),
        "{:?}",
        facts.last_logins
    );
}

#[test]
fn a_wtmp_over_its_cap_is_an_error_naming_it_and_its_size() {
    let dir = clean_tree_without("var/log/wtmp");
    let wtmp = std::fs::File::create(dir.path().join("var/log/wtmp")).unwrap();
    wtmp.set_len(1 << 30).unwrap();
    let facts = collect_tree(dir.path());
    assert_eq!(
        error_reason(&facts.last_logins),
        format!(
            "{}: 1073741824 bytes, over its cap of 67108864 bytes",
            dir.path().join("var/log/wtmp").display()
        )
    );
}
