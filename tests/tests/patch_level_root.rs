//! End to end: `evidence-agent collect --root DIR --only patch_level --json` on a debootstrap
//! bookworm tree given this machine's apt lists and sources. The pending updates the agent
//! reports (names, count, security count) must equal what apt itself reports for the same tree
//! (`apt list --upgradable -o Dir=DIR -o Dir::State::status=DIR/var/lib/dpkg/status`); the
//! running kernel and the pending reboot belong to the machine, so they are not applicable.
//!
//! Needs root, debootstrap, chroot, tar, zstd and apt lists (`apt-get update`, run here when
//! missing). Run: `cargo build -p evidence-agent && cargo test -p evidence-tests --test
//! patch_level_root`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use evidence_tests::agent_cli::{collect_json, finding};
use evidence_tests::debian_tree::{run, unpack_bookworm, TOOLS};

fn has_lists() -> bool {
    std::fs::read_dir("/var/lib/apt/lists")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
        })
        .unwrap_or(false)
}

/// Gives the tree this machine's apt sources and lists (Release and Packages files).
fn add_host_apt_state(root: &Path) {
    let parts = root.join("etc/apt/sources.list.d");
    std::fs::create_dir_all(&parts).unwrap();
    for entry in std::fs::read_dir("/etc/apt/sources.list.d")
        .unwrap()
        .flatten()
    {
        std::fs::copy(entry.path(), parts.join(entry.file_name())).unwrap();
    }
    let lists = root.join("var/lib/apt/lists");
    std::fs::create_dir_all(&lists).unwrap();
    for entry in std::fs::read_dir("/var/lib/apt/lists").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains("_Packages") || name.ends_with("Release") {
            std::fs::copy(entry.path(), lists.join(&name)).unwrap();
        }
    }
    std::fs::create_dir_all(root.join("var/cache/apt")).unwrap();
}

fn apt_upgradable(root: &Path) -> BTreeSet<(String, bool)> {
    let out = run(Command::new("apt")
        .args(["list", "--upgradable", "-o"])
        .arg(format!("Dir={}", root.display()))
        .arg("-o")
        .arg(format!(
            "Dir::State::status={}",
            root.join("var/lib/dpkg/status").display()
        ))
        .env("LC_ALL", "C"));
    out.lines()
        .filter(|l| l.contains("[upgradable from:"))
        .map(|l| {
            let (name, rest) = l.split_once('/').unwrap();
            (
                name.to_string(),
                rest.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .contains("-security"),
            )
        })
        .collect()
}

#[test]
fn collect_root_on_a_debian_tree_reports_what_apt_reports_for_that_tree() {
    let tools: Vec<&str> = TOOLS.iter().copied().chain(["apt"]).collect();
    if !evidence_tests::require("patch_level_root", true, &tools) {
        return;
    }
    if !has_lists() {
        run(Command::new("apt-get").args(["-qq", "update"]));
    }
    let tree = unpack_bookworm();
    add_host_apt_state(tree.path());
    let root = tree.path().to_str().expect("UTF-8 scratch path");
    let report = collect_json(&[], &["--only", "patch_level", "--root", root]);
    let facts = &report["facts"]["patch_level"]["observed"];
    assert!(
        facts["kernel"]["not_applicable"].is_object(),
        "{:#}",
        facts["kernel"]
    );
    assert!(
        facts["reboot"]["not_applicable"].is_object(),
        "{:#}",
        facts["reboot"]
    );
    assert_eq!(
        finding(&report, "patch_level.running_newest_kernel")["status"],
        "not_applicable"
    );
    let pending = facts["updates"]["observed"]["pending"]
        .as_array()
        .unwrap_or_else(|| panic!("{:#}", facts["updates"]));
    let ours: BTreeSet<(String, bool)> = pending
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["security"].as_bool().unwrap(),
            )
        })
        .collect();
    let apt = apt_upgradable(tree.path());
    assert_eq!(
        ours, apt,
        "the agent and apt disagree on the tree's pending updates"
    );
    let security = apt.iter().filter(|(_, s)| *s).count();
    let check = finding(&report, "patch_level.security_updates_installed");
    assert_eq!(check["evidence"]["pending"], security);
    assert_eq!(check["status"], if security == 0 { "pass" } else { "fail" });
    let check = finding(&report, "patch_level.updates_installed");
    assert_eq!(check["evidence"]["pending"], apt.len());
    eprintln!(
        "debootstrap tree: {} pending, {security} security, identical to apt",
        apt.len()
    );
}
