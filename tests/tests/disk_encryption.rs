//! `evidence-agent collect --only disk_encryption` end to end: on a plain directory with `--root`
//! (live kernel state not applicable, `/etc/crypttab` and `/etc/fstab` still read), and on this
//! machine with an unencrypted ext4 loop mount that the data-volume check must list.
//!
//! Build the agent first: `cargo build -p evidence-agent`. The live test needs root, `losetup`,
//! `mkfs.ext4` and `mount` (Debian: mount, e2fsprogs).

use std::path::{Path, PathBuf};
use std::process::Command;

use evidence_tests::agent_cli::{collect_json, finding};
use evidence_tests::{debian_tree, require};
use serde_json::Value;

fn agent(args: &[&str]) -> Value {
    collect_json(&[], &[&["--only", "disk_encryption"], args].concat())
}

#[test]
fn root_on_a_plain_directory_reads_crypttab_and_marks_live_state_not_applicable() {
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir(tree.path().join("etc")).unwrap();
    std::fs::write(
        tree.path().join("etc/crypttab"),
        "# comment\nsda3_crypt UUID=3ab5dda2-adf1-4319-8849-c8f1b893528a none luks,discard\n",
    )
    .unwrap();
    std::fs::write(
        tree.path().join("etc/fstab"),
        "/dev/mapper/sda3_crypt / ext4 defaults 0 1\n",
    )
    .unwrap();
    let report = agent(&["--root", tree.path().to_str().unwrap()]);
    let facts = &report["facts"]["disk_encryption"]["observed"];
    for live in ["mounts", "swaps", "block_devices"] {
        let reason = facts[live]["not_applicable"]["reason"]
            .as_str()
            .unwrap_or_else(|| panic!("{live} should be not applicable: {}", facts[live]));
        assert!(reason.contains(tree.path().to_str().unwrap()), "{reason}");
    }
    assert_eq!(facts["crypttab"]["observed"][0]["name"], "sda3_crypt");
    assert_eq!(
        facts["crypttab"]["observed"][0]["options"],
        serde_json::json!(["luks", "discard"])
    );
    assert_eq!(
        facts["fstab"]["observed"][0]["crypttab_mapping"],
        "sda3_crypt"
    );
    for check in [
        "disk_encryption.root_volume_encrypted",
        "disk_encryption.data_volumes_encrypted",
        "disk_encryption.swap_encrypted",
    ] {
        assert_eq!(
            finding(&report, check)["status"],
            "not_applicable",
            "{check}"
        );
    }
}

struct LoopMount {
    device: String,
    mount_point: PathBuf,
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount_point).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

fn run(program: &str, args: &[&str]) -> String {
    debian_tree::run(Command::new(program).args(args))
        .trim()
        .to_string()
}

fn loop_mount(dir: &Path) -> LoopMount {
    let image = dir.join("data.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    run("mkfs.ext4", &["-q", image.to_str().unwrap()]);
    let device = run("losetup", &["-f", "--show", image.to_str().unwrap()]);
    let guard = LoopMount {
        device,
        mount_point: dir.join("mnt"),
    };
    std::fs::create_dir(&guard.mount_point).unwrap();
    run(
        "mount",
        &[&guard.device, guard.mount_point.to_str().unwrap()],
    );
    guard
}

#[test]
fn an_unencrypted_loop_mount_is_judged_by_the_data_volume_check() {
    let test = "an_unencrypted_loop_mount_is_judged_by_the_data_volume_check";
    if !require(test, true, &["losetup", "mkfs.ext4", "mount"]) {
        return;
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mounted = loop_mount(dir.path());
    let mount_point = mounted.mount_point.to_str().unwrap();
    let report = agent(&[]);
    let volumes = &report["facts"]["disk_encryption"]["observed"]["mounts"]["observed"]["volumes"];
    let volume = volumes
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["mount_point"] == mount_point)
        .unwrap_or_else(|| panic!("{mount_point} not listed: {volumes}"));
    let name = mounted.device.trim_start_matches("/dev/");
    assert_eq!(volume["backing"]["chain"][0]["name"], name);
    assert_eq!(volume["backing"]["chain"][0]["kind"], "loop");
    let state = volume["backing"]["protection"]["state"].as_str().unwrap();

    let data = finding(&report, "disk_encryption.data_volumes_encrypted");
    let listed_as_offender = data["evidence"]["offending"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| {
            o["mount_points"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m == mount_point)
        });
    // The image file's filesystem decides: unencrypted (this VM) fails the check with our mount
    // listed; an encrypted one (a LUKS laptop) does not list it.
    assert_eq!(listed_as_offender, state == "unencrypted", "{data}");
    if state == "unencrypted" {
        assert_eq!(data["status"], "fail");
    }
}
