//! End to end: `evidence-agent collect --root DIR --json` on a tree whose `/etc/shadow` is a
//! 1 GiB sparse file. The agent must refuse it by its size (not read it into memory), report
//! the checks that need it as `error` naming the file and its size, and exit normally.
//!
//! Needs nothing but the built agent. Run: `cargo build -p evidence-agent && cargo test -p
//! evidence-tests --test oversized_files`.

use std::ffi::OsStr;

use evidence_tests::agent_cli::{collect_json, finding, status};

/// The accounts checks that read `/etc/shadow`.
const SHADOW_CHECKS: [&str; 3] = [
    "accounts.no_empty_passwords",
    "accounts.password_max_age",
    "accounts.no_dormant_accounts",
];

#[test]
fn a_sparse_one_gib_shadow_is_an_error_finding_naming_it_and_its_size() {
    let root = tempfile::tempdir().expect("temp dir");
    let etc = root.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\n").unwrap();
    let shadow = std::fs::File::create(etc.join("shadow")).unwrap();
    shadow.set_len(1 << 30).unwrap();

    let args: [&OsStr; 4] = [
        "--root".as_ref(),
        root.path().as_os_str(),
        "--only".as_ref(),
        "accounts".as_ref(),
    ];
    // `collect_json` panics unless the agent exits 0 and prints JSON.
    let report = collect_json(&[], &args);

    let reason = format!(
        "/etc/shadow: {}: 1073741824 bytes, over its cap of 16777216 bytes",
        etc.join("shadow").display()
    );
    for check in SHADOW_CHECKS {
        assert_eq!(status(&report, check), "error", "{check}");
        assert_eq!(
            finding(&report, check)["reason"],
            reason.as_str(),
            "{check}"
        );
    }
    // The checks that need only passwd still evaluate.
    assert_eq!(status(&report, "accounts.no_extra_uid0"), "pass");
    let facts = &report["facts"]["accounts"]["observed"];
    assert_eq!(
        facts["shadow"]["error"]["reason"],
        format!(
            "{}: 1073741824 bytes, over its cap of 16777216 bytes",
            etc.join("shadow").display()
        )
        .as_str(),
        "{:#}",
        facts["shadow"]
    );
}
