//! Every collector declares what it reads: each one runs against this machine and against
//! every fixture tree with a [`ReadLog`], and each path it asked the [`Host`] for must be
//! covered by its `READS` (the agent's watch list is derived from them).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::{ReadLog, RecordedRunner};

/// The home directories in the tree's `/etc/passwd` (where `InHomes` sources live).
fn homes(host: &Host) -> Vec<String> {
    host.read_to_string("/etc/passwd", crate::caps::CONFIG)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(':').nth(5))
        .filter(|home| home.starts_with('/'))
        .map(String::from)
        .collect()
}

/// Runs `collect` on `host` with a read log; panics naming every undeclared path.
fn assert_declared(collector: &Collector, host: &Host, collect: impl FnOnce(&Host)) -> usize {
    let log = ReadLog::new();
    collect(&host.clone().with_read_log(log.clone()));
    let homes = homes(host);
    let read = log.paths();
    let undeclared: Vec<&String> = read
        .iter()
        .filter(|path| !collector.reads.iter().any(|s| s.covers(path, &homes)))
        .collect();
    assert!(
        undeclared.is_empty(),
        "the {} collector reads {undeclared:?} under {} without declaring them in its READS",
        collector.name,
        host.root().display()
    );
    read.len()
}

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// The directories under `dir` (depth first, sorted) that look like a host's root: they hold
/// an `etc`, `proc` or `sys` directory.
fn fixture_roots(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if ["etc", "proc", "sys"].iter().any(|d| dir.join(d).is_dir()) {
        out.push(dir.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for sub in dirs {
        if depth > 0 {
            fixture_roots(&sub, depth - 1, out);
        }
    }
}

/// Every fixture tree under `tests/data`, plus a tree that looks like an RPM host (rpm
/// replayed).
fn trees() -> (Vec<Host>, tempfile::TempDir) {
    let mut roots = Vec::new();
    fixture_roots(&data(""), 4, &mut roots);
    assert!(roots.len() >= 6, "fixture trees: {roots:?}");
    let mut hosts: Vec<Host> = roots
        .into_iter()
        .map(|root| Host::new(root, Arc::new(RecordedRunner::new())))
        .collect();
    let rpm_root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(rpm_root.path().join("var/lib/rpm")).unwrap();
    std::fs::create_dir_all(rpm_root.path().join("etc/dnf")).unwrap();
    std::fs::write(
        rpm_root.path().join("etc/dnf/automatic.conf"),
        "[commands]\napply_updates = yes\n",
    )
    .unwrap();
    let root = rpm_root.path().display();
    let qa = std::fs::read_to_string(data("patch_level/rpm_qa.txt")).unwrap();
    let runner = RecordedRunner::new()
        .with_stdout(
            &format!(
                "rpm --root {root} -qa --queryformat {}",
                crate::patch_level::rpm_host::QA_FORMAT
            ),
            qa,
        )
        .with_stdout(&format!("dnf --installroot {root} -q -C check-update"), "");
    hosts.push(Host::new(rpm_root.path(), Arc::new(runner)));
    (hosts, rpm_root)
}

#[test]
fn every_path_a_collector_reads_on_this_machine_is_in_its_reads() {
    for collector in COLLECTORS {
        let read = assert_declared(collector, &Host::live(), |host| {
            collector.collect(host);
        });
        assert!(read > 0, "{} read nothing", collector.name);
    }
}

#[test]
fn every_path_a_collector_reads_in_the_fixture_trees_is_in_its_reads() {
    let (hosts, _rpm_root) = trees();
    for host in &hosts {
        for collector in COLLECTORS {
            assert_declared(collector, host, |host| {
                collector.collect(host);
            });
        }
    }
}

#[test]
fn the_live_only_reads_of_the_fixture_trees_are_in_the_reads_too() {
    // The trees hold recorded /proc, /sys and /dev; read them as if they were live.
    let disk = collector(CollectorName::DiskEncryption);
    for tree in ["disk_encryption/luks_lvm", "disk_encryption/this_vm"] {
        let host = Host::new(data(tree), Arc::new(RecordedRunner::new()));
        let read = assert_declared(disk, &host, |host| {
            crate::disk_encryption::collect_as_live(host);
        });
        assert!(read > 10, "{tree}: only {read} paths read");
    }
}

#[test]
fn every_collector_declares_its_platforms_and_is_not_applicable_elsewhere() {
    for collector in COLLECTORS {
        assert!(!collector.platforms.is_empty(), "{}", collector.name);
        assert!(!collector.reads.is_empty(), "{}", collector.name);
    }
    assert_eq!(
        on_platform("x", &[], || Observation::Observed(1)),
        Observation::not_applicable(format!(
            "the x collector does not run on {}",
            Platform::current().map_or(std::env::consts::OS, Platform::as_str)
        ))
    );
    if let Some(here) = Platform::current() {
        assert_eq!(
            on_platform("x", &[here], || Observation::Observed(1)),
            Observation::Observed(1)
        );
    }
}
