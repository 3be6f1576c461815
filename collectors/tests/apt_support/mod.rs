//! Shared by the `patch_*` tests that read this machine's apt state: making sure the apt lists
//! (`/var/lib/apt/lists/*_Packages`) exist before a test compares against them.

use std::path::Path;
use std::process::Command;

/// Runs `apt-get update` once per test process when this machine has no lists and the test runs
/// as root (CI), so the lists exist.
pub fn ensure_lists() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let has_lists = std::fs::read_dir("/var/lib/apt/lists")
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
            })
            .unwrap_or(false);
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
        if !has_lists && root && Path::new("/usr/bin/apt-get").exists() {
            let status = Command::new("apt-get")
                .args(["-qq", "update"])
                .status()
                .expect("apt-get update");
            assert!(status.success(), "apt-get update failed");
        }
    });
}
