//! Tests of the seam: reading inside a tree, limits, and tool timeouts.

use super::*;

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("usr/lib/os-release"), "ID=tree\n").unwrap();
    dir
}

#[test]
fn absolute_symlinks_in_a_tree_resolve_inside_the_tree() {
    let dir = tree();
    std::os::unix::fs::symlink("/usr/lib/os-release", dir.path().join("etc/os-release")).unwrap();
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
    assert_eq!(host.read_to_string("/etc/os-release").unwrap(), "ID=tree\n");
}

#[test]
fn relative_symlinks_cannot_climb_above_the_tree_root() {
    let dir = tree();
    std::os::unix::fs::symlink(
        "../../../../../../usr/lib/os-release",
        dir.path().join("etc/os-release"),
    )
    .unwrap();
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
    assert_eq!(
        host.path("/etc/os-release"),
        dir.path().join("usr/lib/os-release")
    );
}

#[test]
fn symlink_loops_end_in_a_read_error_not_a_hang() {
    let dir = tree();
    std::os::unix::fs::symlink("/etc/b", dir.path().join("etc/a")).unwrap();
    std::os::unix::fs::symlink("/etc/a", dir.path().join("etc/b")).unwrap();
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
    assert!(host.read("/etc/a").is_err());
}

#[test]
fn oversized_files_are_refused() {
    let dir = tree();
    std::fs::write(dir.path().join("etc/big"), vec![b'x'; 100]).unwrap();
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
    assert!(matches!(
        host.read_limited("/etc/big", 99),
        Err(ReadError::TooLarge { .. })
    ));
    assert_eq!(host.read_limited("/etc/big", 100).unwrap().len(), 100);
}

#[test]
fn a_hung_command_is_killed_at_its_timeout() {
    let started = std::time::Instant::now();
    let result = SystemRunner.run("sleep", &["30"], Duration::from_millis(200));
    assert!(
        matches!(result, Err(RunError::TimedOut { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_missing_tool_is_reported_as_not_installed() {
    let result = SystemRunner.run("no-such-tool-evidence", &[], Duration::from_secs(1));
    assert!(
        matches!(result, Err(RunError::NotInstalled { .. })),
        "{result:?}"
    );
}
