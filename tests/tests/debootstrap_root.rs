//! End to end: `evidence-agent collect --root DIR --json` on a Debian bookworm tree built by
//! debootstrap. One copy is changed with the tree's own tools inside a chroot (a second uid-0
//! account, a cleared password, a user added to `sudo`, a NOPASSWD grant checked by visudo,
//! ufw enabled in its config); the report must show exactly those items, and a clean copy none.
//!
//! Needs root, debootstrap, chroot, tar and zstd; the first run builds the cached tree (see
//! `evidence_tests::debian_tree`). Run: `cargo build -p evidence-agent && cargo test -p
//! evidence-tests --test debootstrap_root`.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use evidence_tests::agent_cli::{collect_json, finding, status};
use evidence_tests::debian_tree::{chroot, run, unpack_bookworm, TOOLS};
use serde_json::{json, Value};

/// The policy both trees are judged with: an empty admin allow-list (only root may be admin)
/// and Debian's own `PASS_MAX_DAYS` as the maximum age, so that a clean tree passes.
const POLICY: &str = "[accounts]\nallowed_admins = []\npassword_max_age_days = 99999\n";

const NOPASSWD_GRANT: &str = "carol ALL=(ALL:ALL) NOPASSWD: ALL\n";

/// The changes, each made by the tool an administrator would use.
fn change_with_real_tools(root: &Path) {
    chroot(
        root,
        &[
            "useradd",
            "-o",
            "-u",
            "0",
            "-g",
            "0",
            "-M",
            "-s",
            "/bin/bash",
            "toor",
        ],
    );
    chroot(root, &["useradd", "-m", "-s", "/bin/bash", "alice"]);
    chroot(root, &["passwd", "-d", "alice"]);
    chroot(root, &["useradd", "-m", "-s", "/bin/bash", "bob"]);
    chroot(root, &["usermod", "-aG", "sudo", "bob"]);
    chroot(root, &["useradd", "-m", "-s", "/bin/bash", "carol"]);
    let grant = root.join("etc/sudoers.d/50-carol");
    std::fs::write(&grant, NOPASSWD_GRANT).expect("writing the sudoers drop-in");
    chroot(root, &["chmod", "0440", "/etc/sudoers.d/50-carol"]);
    chroot(root, &["visudo", "-cf", "/etc/sudoers.d/50-carol"]);
    chroot(
        root,
        &[
            "sed",
            "-i",
            "s/^ENABLED=.*/ENABLED=yes/",
            "/etc/ufw/ufw.conf",
        ],
    );
}

fn collect(root: &Path, policy: Option<&Path>) -> Value {
    collect_as(&[], root, policy, &[])
}

/// Runs `collect --json --root` behind `prefix` (e.g. `setpriv` to drop root) and parses it.
fn collect_as(prefix: &[&str], root: &Path, policy: Option<&Path>, extra: &[&str]) -> Value {
    let mut args: Vec<&OsStr> = vec!["--root".as_ref(), root.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    if let Some(policy) = policy {
        args.extend(["--policy".as_ref(), policy.as_os_str()]);
    }
    collect_json(prefix, &args)
}

fn ufw_enabled(report: &Value) -> &Value {
    &report["facts"]["firewall"]["observed"]["ufw"]["observed"]["enabled"]
}

#[test]
fn collect_root_reports_exactly_what_real_tools_set_up_and_a_clean_tree_reports_none_of_it() {
    if !evidence_tests::require("debootstrap_root", true, TOOLS) {
        return;
    }
    let clean = unpack_bookworm();
    let changed = unpack_bookworm();
    change_with_real_tools(changed.path());
    let policy_dir = tempfile::tempdir().unwrap();
    let policy = policy_dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();

    let report = collect(changed.path(), Some(&policy));
    let offending = |check: &str| finding(&report, check)["evidence"]["offending"].clone();
    assert_eq!(status(&report, "accounts.no_extra_uid0"), "fail");
    assert_eq!(offending("accounts.no_extra_uid0"), json!(["toor"]));
    assert_eq!(status(&report, "accounts.no_empty_passwords"), "fail");
    assert_eq!(offending("accounts.no_empty_passwords"), json!(["alice"]));
    assert_eq!(status(&report, "accounts.no_nopasswd_sudo"), "fail");
    let nopasswd = finding(&report, "accounts.no_nopasswd_sudo");
    assert_eq!(nopasswd["evidence"]["offending_users"], json!(["carol"]));
    assert_eq!(
        offending("accounts.no_nopasswd_sudo"),
        json!([{"file": "/etc/sudoers.d/50-carol", "line": 1, "users": ["carol"], "commands": ["ALL"]}])
    );
    assert_eq!(status(&report, "accounts.admins_allowlisted"), "fail");
    assert_eq!(
        offending("accounts.admins_allowlisted"),
        json!(["bob", "carol"])
    );
    for check in ["accounts.password_max_age", "accounts.no_dormant_accounts"] {
        assert_eq!(
            status(&report, check),
            "pass",
            "{check}: {:#}",
            finding(&report, check)
        );
    }
    assert_eq!(
        finding(&report, "accounts.no_extra_uid0")["controls"],
        json!(["5.16", "8.2"])
    );
    assert_eq!(
        ufw_enabled(&report),
        &json!(true),
        "ufw: {:#}",
        report["facts"]["firewall"]
    );

    let report = collect(clean.path(), Some(&policy));
    for check in [
        "accounts.no_extra_uid0",
        "accounts.no_empty_passwords",
        "accounts.no_nopasswd_sudo",
        "accounts.admins_allowlisted",
        "accounts.password_max_age",
        "accounts.no_dormant_accounts",
    ] {
        assert_eq!(
            status(&report, check),
            "pass",
            "{check}: {:#}",
            finding(&report, check)
        );
        let offending = &finding(&report, check)["evidence"]["offending"];
        assert_eq!(offending, &json!([]), "{check}");
    }
    assert_eq!(
        finding(&report, "accounts.admins_allowlisted")["evidence"]["admins"],
        json!(["root"])
    );
    assert_eq!(
        ufw_enabled(&report),
        &json!(false),
        "ufw: {:#}",
        report["facts"]["firewall"]
    );

    // With the built-in policy a clean Debian tree fails only on Debian's PASS_MAX_DAYS 99999,
    // and the allow-list check waits for the organisation's list.
    let report = collect(clean.path(), None);
    assert_eq!(status(&report, "accounts.password_max_age"), "fail");
    assert_eq!(
        finding(&report, "accounts.password_max_age")["evidence"]["offending"],
        json!([{"setting": "PASS_MAX_DAYS", "value": 99999}])
    );
    assert_eq!(
        status(&report, "accounts.admins_allowlisted"),
        "not_applicable"
    );
}

#[test]
fn collect_root_without_root_privileges_reports_shadow_and_sudoers_checks_as_errors() {
    let tools: Vec<&str> = TOOLS.iter().copied().chain(["setpriv"]).collect();
    if !evidence_tests::require("debootstrap_root (non-root)", true, &tools) {
        return;
    }
    let tree = unpack_bookworm();
    // Let `nobody` reach the tree; /etc/shadow (0640 root:shadow) and /etc/sudoers (0440)
    // stay as Debian installs them.
    run(Command::new("chmod").arg("0755").arg(tree.path()));
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let report = collect_as(&nobody, tree.path(), None, &["--only", "accounts"]);
    let shadow = &report["facts"]["accounts"]["observed"]["shadow"]["error"]["reason"];
    assert!(
        shadow
            .as_str()
            .is_some_and(|r| r.contains("permission denied")),
        "shadow: {shadow}"
    );
    for check in [
        "accounts.no_empty_passwords",
        "accounts.password_max_age",
        "accounts.no_dormant_accounts",
        "accounts.no_nopasswd_sudo",
    ] {
        assert_eq!(
            status(&report, check),
            "error",
            "{check}: {:#}",
            finding(&report, check)
        );
        let reason = finding(&report, check)["reason"]
            .as_str()
            .unwrap_or_default();
        assert!(reason.contains("permission denied"), "{check}: {reason}");
    }
    // What /etc/passwd alone shows is still judged.
    assert_eq!(status(&report, "accounts.no_extra_uid0"), "pass");
}
