//! Debian root trees for end-to-end tests: a `debootstrap --variant=minbase` bookworm tree,
//! built once and cached as a zstd tarball, unpacked into scratch directories and changed with
//! the tree's own tools through `chroot`.
//!
//! The cache lives at [`CACHE`] (override with `EVIDENCE_DEBIAN_CACHE`); the first test run
//! that needs it runs debootstrap against deb.debian.org (a few minutes), later runs unpack it
//! in seconds. Needs root and `debootstrap`, `chroot`, `tar`, `zstd`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Default location of the cached tarball.
pub const CACHE: &str = "/var/cache/evidence-tests/bookworm-minbase.tar.zst";
/// Packages added to minbase: what the accounts and firewall end-to-end tests change.
pub const INCLUDE: &str = "sudo,ufw,passwd";
const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";

/// Tools the helpers run on the host.
pub const TOOLS: &[&str] = &["debootstrap", "chroot", "tar", "zstd"];

/// The cached tarball, built with debootstrap first if it is missing. Concurrent callers wait
/// on a lock file; the tarball appears by an atomic rename, so a half-written one is never used.
pub fn bookworm_minbase() -> PathBuf {
    let cache = std::env::var_os("EVIDENCE_DEBIAN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CACHE));
    let dir = cache
        .parent()
        .expect("cache path has a directory")
        .to_path_buf();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let lock = File::create(dir.join(".bookworm-minbase.lock")).expect("lock file");
    lock.lock().expect("locking the debootstrap cache");
    if !cache.exists() {
        build(&cache, &dir);
    }
    cache
}

fn build(cache: &Path, dir: &Path) {
    let stage = dir.join(format!("build-{}", std::process::id()));
    let root = stage.join("root");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).expect("staging directory");
    eprintln!(
        "building {} with debootstrap (once; later runs reuse it)",
        cache.display()
    );
    run(Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--include={INCLUDE}"))
        .arg(SUITE)
        .arg(&root)
        .arg(MIRROR));
    let partial = cache.with_extension("partial");
    run(Command::new("tar")
        .arg("--numeric-owner")
        .arg("--zstd")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&partial)
        .arg("."));
    std::fs::rename(&partial, cache).expect("publishing the tarball");
    let _ = std::fs::remove_dir_all(&stage);
}

/// Unpacks the cached tree into a new scratch directory (removed when dropped).
pub fn unpack_bookworm() -> tempfile::TempDir {
    let tarball = bookworm_minbase();
    let dir = tempfile::Builder::new()
        .prefix("evidence-debian-")
        .tempdir()
        .expect("scratch directory");
    run(Command::new("tar")
        .arg("--numeric-owner")
        .arg("--zstd")
        .arg("-C")
        .arg(dir.path())
        .arg("-xf")
        .arg(&tarball));
    dir
}

/// Runs `args` inside `root` with chroot(8); panics with the tool's stderr when it fails.
pub fn chroot(root: &Path, args: &[&str]) -> String {
    run(Command::new("chroot")
        .arg(root)
        .args(args)
        .env("LC_ALL", "C"))
}

/// Runs a command; panics with its stderr when it fails. Returns its stdout.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
