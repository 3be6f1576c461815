//! The patch_level collector on an RPM tree: detected when dpkg's status file is absent and an
//! rpm database is present; installed packages from `rpm -qa`, pending updates from
//! `dnf check-update` (exit 100) with security ones from `dnf updateinfo list --security`,
//! replayed from the fixtures in `tests/data/patch_level/` through the recorded runner.

use std::path::Path;
use std::sync::Arc;

use evidence_collectors::patch_level::{self, rpm_host};
use evidence_collectors::{CommandOutput, Host, RecordedRunner, RunError};
use evidence_protocol::facts::patch_level::PackageManager;
use evidence_protocol::Observation;

const QA: &str = include_str!("data/patch_level/rpm_qa.txt");
const CHECK_UPDATE: &str = include_str!("data/patch_level/dnf_check_update.txt");
const SECURITY: &str = include_str!("data/patch_level/dnf_updateinfo_security.txt");

fn rpm_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/rpm")).unwrap();
    std::fs::create_dir_all(dir.path().join("etc/dnf")).unwrap();
    std::fs::write(
        dir.path().join("etc/dnf/automatic.conf"),
        "[commands]\napply_updates = yes\n",
    )
    .unwrap();
    let wants = dir.path().join("etc/systemd/system/timers.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::fs::write(wants.join("dnf-automatic.timer"), "").unwrap();
    dir
}

fn exit(code: i32, stdout: &str) -> Result<CommandOutput, RunError> {
    Ok(CommandOutput {
        status: Some(code),
        stdout: stdout.as_bytes().to_vec(),
        stderr: vec![],
    })
}

fn runner(root: &Path, check_update: Result<CommandOutput, RunError>) -> RecordedRunner {
    let r = root.display();
    RecordedRunner::new()
        .with_stdout(
            &format!("rpm --root {r} -qa --queryformat {}", rpm_host::QA_FORMAT),
            QA,
        )
        .with_result(
            &format!("dnf --installroot {r} -q -C check-update"),
            check_update,
        )
        .with_stdout(
            &format!("dnf --installroot {r} -q -C updateinfo list --security"),
            SECURITY,
        )
}

#[test]
fn an_rpm_tree_reports_dnf_updates_with_installed_versions_and_security_flags() {
    let tree = rpm_tree();
    let host = Host::new(
        tree.path(),
        Arc::new(runner(tree.path(), exit(100, CHECK_UPDATE))),
    );
    let Observation::Observed(facts) = patch_level::collect(&host) else {
        panic!("not observed")
    };
    assert_eq!(facts.package_manager, PackageManager::Rpm);
    let Observation::Observed(updates) = &facts.updates else {
        panic!("{:?}", facts.updates)
    };
    assert_eq!(updates.installed_count, 9);
    let names: Vec<&str> = updates.pending.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "glibc",
            "kernel-core",
            "openssl-libs",
            "python3-libselinux-extra-long-package-name",
            "tzdata"
        ]
    );
    let openssl = updates
        .pending
        .iter()
        .find(|p| p.name == "openssl-libs")
        .unwrap();
    assert_eq!(
        (
            openssl.installed_version.as_str(),
            openssl.candidate_version.as_str()
        ),
        ("1:3.0.7-24.el9", "1:3.0.7-27.el9")
    );
    assert!(openssl.security);
    assert_eq!(openssl.archives, ["baseos"]);
    let kernel = updates
        .pending
        .iter()
        .find(|p| p.name == "kernel-core")
        .unwrap();
    assert_eq!(
        kernel.installed_version, "0:5.14.0-362.13.1.el9_3",
        "the newest installed kernel by rpm order"
    );
    assert_eq!(updates.security_count(), 2);
    assert!(matches!(facts.kernel, Observation::NotApplicable { .. }));
    let Observation::Observed(auto) = &facts.automatic_updates else {
        panic!()
    };
    assert!(auto.enabled && auto.installed);
}

#[test]
fn dnf_exit_zero_means_no_update_and_other_exits_are_errors() {
    let tree = rpm_tree();
    let host = Host::new(tree.path(), Arc::new(runner(tree.path(), exit(0, ""))));
    let Observation::Observed(facts) = patch_level::collect(&host) else {
        panic!()
    };
    let Observation::Observed(updates) = &facts.updates else {
        panic!("{:?}", facts.updates)
    };
    assert!(updates.pending.is_empty());
    let host = Host::new(
        tree.path(),
        Arc::new(runner(tree.path(), exit(1, "Error: cache empty"))),
    );
    let Observation::Observed(facts) = patch_level::collect(&host) else {
        panic!()
    };
    assert!(
        matches!(facts.updates, Observation::Error { .. }),
        "{:?}",
        facts.updates
    );
    let host = Host::new(tree.path(), Arc::new(RecordedRunner::new()));
    assert!(
        matches!(patch_level::collect(&host), Observation::Error { .. }),
        "rpm missing"
    );
}

#[test]
fn a_tree_with_neither_dpkg_nor_rpm_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
    match patch_level::collect(&host) {
        Observation::Error { reason } => {
            assert!(reason.contains("no package database"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}
