//! Durable, atomic file writes: the one way the agent puts state on disk.
//!
//! A file is written under a temporary name in the same directory, created with its final mode
//! at open time (so a secret is never readable by others, not even for an instant), fsynced,
//! renamed over the final name, and the directory is fsynced so the rename survives power loss.
//! A reader therefore sees either the old content or the new, never a torn mix.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Creates `dir` (and its parents) with mode 0700 if it does not exist yet.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Atomically replaces `path` with `bytes`, the new file having `mode` from its creation.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{}: no file name", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    // A leftover from a crash is ours to replace; create_new then guarantees the mode below is
    // the one the file was born with.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Fsyncs a directory, making renames and unlinks inside it durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn an_atomic_write_replaces_the_content_and_has_the_requested_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_leftover_temporary_file_from_a_crash_does_not_block_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".state.tmp"), b"torn").unwrap();
        write_atomic(&dir.path().join("state"), b"whole", 0o644).unwrap();
        assert_eq!(std::fs::read(dir.path().join("state")).unwrap(), b"whole");
    }

    #[test]
    fn private_dirs_are_created_with_mode_0700() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b");
        create_private_dir(&state).unwrap();
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
