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
    assert_eq!(
        host.read_to_string("/etc/os-release", caps::CONFIG)
            .unwrap(),
        "ID=tree\n"
    );
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
    assert!(host.read("/etc/a", caps::CONFIG).is_err());
}

#[test]
fn oversized_files_are_refused() {
    let dir = tree();
    std::fs::write(dir.path().join("etc/big"), vec![b'x'; 100]).unwrap();
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
    assert!(matches!(
        host.read("/etc/big", 99),
        Err(ReadError::TooLarge { .. })
    ));
    assert_eq!(host.read("/etc/big", 100).unwrap().len(), 100);
}

/// `mkfifo PATH`; false (and a loud skip) when the tool is missing.
fn mkfifo(path: &Path) -> bool {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        assert!(std::env::var_os("CI").is_none(), "CI must have mkfifo");
        eprintln!("\n*** SKIPPED: mkfifo failed ***\n");
    }
    made
}

#[test]
fn a_sparse_file_over_its_cap_is_refused_by_its_length_naming_it_and_its_size() {
    let dir = tree();
    let shadow = std::fs::File::create(dir.path().join("etc/shadow")).unwrap();
    shadow.set_len(1 << 30).unwrap();
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
    let err = host.read("/etc/shadow", caps::CONFIG).unwrap_err();
    assert_eq!(
        err,
        ReadError::TooLarge {
            path: dir.path().join("etc/shadow").display().to_string(),
            limit: caps::CONFIG,
            size: Some(1 << 30),
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: 1073741824 bytes, over its cap of 16777216 bytes",
            dir.path().join("etc/shadow").display()
        )
    );
    let capped = host.open_capped("/etc/shadow", caps::CONFIG).unwrap_err();
    assert_eq!(capped, err);
}

#[test]
fn a_file_longer_than_its_length_says_is_cut_at_its_cap_not_read_whole() {
    // procfs reports length 0 for /proc/self/maps, whose text is far longer than 16 bytes.
    let host = Host::live();
    match host.read("/proc/self/maps", 16) {
        Err(ReadError::TooLarge { path, limit, size }) => {
            assert_eq!((path.as_str(), limit, size), ("/proc/self/maps", 16, None));
        }
        other => panic!("read past its cap: {other:?}"),
    }
    let mut stream = host.open_capped("/proc/self/maps", 16).unwrap();
    let err = stream.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
    assert_eq!(err.to_string(), "more than 16 bytes, over its cap");
    assert!(host.read("/proc/self/maps", caps::KERNEL_TEXT).is_ok());
}

#[test]
fn a_link_to_dev_zero_is_refused_as_a_character_device_without_reading_it() {
    let dir = tree();
    let link = dir.path().join("etc/shadow");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    // The live host follows the link as the kernel does.
    let host = Host::live();
    let shown = link.display().to_string();
    assert_eq!(
        host.read(&shown, caps::CONFIG),
        Err(ReadError::NotRegularFile {
            path: shown.clone(),
            kind: "character device"
        })
    );
    assert!(host.open_capped(&shown, caps::CONFIG).is_err());
    assert!(host.open_records(&shown).is_err());
}

#[test]
fn a_fifo_is_refused_without_opening_it_so_the_read_cannot_hang() {
    let dir = tree();
    if !mkfifo(&dir.path().join("etc/shadow")) {
        return;
    }
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
    let err = host.read("/etc/shadow", caps::CONFIG).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: is a FIFO, not a regular file",
            dir.path().join("etc/shadow").display()
        )
    );
    assert!(host.open_records("/etc/shadow").is_err());
}

#[test]
fn an_error_through_a_symlink_in_a_tree_names_the_link_and_its_target() {
    let dir = tree();
    std::os::unix::fs::symlink("/usr/lib/os-release", dir.path().join("etc/os-release")).unwrap();
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
    let err = host.read("/etc/os-release", 3).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} -> {}: 8 bytes, over its cap of 3 bytes",
            dir.path().join("etc/os-release").display(),
            dir.path().join("usr/lib/os-release").display()
        )
    );
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

#[test]
fn a_dangling_link_exists_for_symlink_metadata_but_not_for_metadata() {
    let dir = tree();
    std::os::unix::fs::symlink("/nowhere", dir.path().join("etc/link")).unwrap();
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
    assert!(host.symlink_metadata("/etc/link").is_ok());
    assert!(!host.exists("/etc/link"));
    assert!(host.is_dir("/etc"));
    assert!(!host.is_dir("/usr/lib/os-release"));
    assert!(host.metadata("/etc/absent").unwrap_err().is_not_found());
}

#[test]
fn canonical_follows_links_inside_the_tree_and_names_the_target_as_on_the_host() {
    let dir = tree();
    std::fs::create_dir_all(dir.path().join("dev/disk/by-uuid")).unwrap();
    std::fs::write(dir.path().join("dev/vda1"), "").unwrap();
    std::os::unix::fs::symlink("../../vda1", dir.path().join("dev/disk/by-uuid/abc")).unwrap();
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
    assert_eq!(
        host.canonical("/dev/disk/by-uuid/abc").unwrap(),
        "/dev/vda1"
    );
    assert!(host.canonical("/dev/absent").is_err());
}

#[test]
fn open_device_reads_an_image_file_up_to_its_limit_and_refuses_character_devices_and_fifos() {
    let dir = tree();
    std::fs::write(dir.path().join("disk.img"), vec![7u8; 100]).unwrap();
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new()));
    let mut head = Vec::new();
    host.open_device("/disk.img", 10)
        .unwrap()
        .read_to_end(&mut head)
        .unwrap();
    assert_eq!(
        head,
        vec![7u8; 10],
        "a file longer than the limit is read up to it"
    );
    let zero = Host::live().open_device("/dev/zero", 10).unwrap_err();
    assert!(matches!(
        zero,
        ReadError::NotRegularFile {
            kind: "character device",
            ..
        }
    ));
    if mkfifo(&dir.path().join("fifo")) {
        assert!(matches!(
            host.open_device("/fifo", 10),
            Err(ReadError::NotRegularFile { kind: "FIFO", .. })
        ));
    }
}

#[test]
fn a_read_log_notes_every_path_asked_of_the_host_by_any_accessor() {
    let dir = tree();
    let log = ReadLog::new();
    let host = Host::new(dir.path(), Arc::new(RecordedRunner::new())).with_read_log(log.clone());
    let _ = host.read("/usr/lib/os-release", caps::CONFIG);
    let _ = host.read_dir("/etc");
    let _ = host.exists("/etc/absent");
    let _ = host.symlink_metadata("/etc/link");
    let _ = host.open_device("/dev/vda", 10);
    assert_eq!(
        log.paths().into_iter().collect::<Vec<_>>(),
        [
            "/dev/vda",
            "/etc",
            "/etc/absent",
            "/etc/link",
            "/usr/lib/os-release"
        ]
    );
}
