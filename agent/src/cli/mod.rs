//! The command line: the `collect`, `enroll` and `status` commands (and the hidden spool
//! benchmark), the table `collect` prints, and what they share.

pub mod bench;
pub mod collect;
pub mod enroll;
pub mod render;
pub mod status;

use std::path::PathBuf;

/// Reads a policy file, or the built-in defaults when none is given.
pub(crate) fn load_policy(path: Option<&PathBuf>) -> anyhow::Result<evidence_controls::Policy> {
    use anyhow::Context;
    match path {
        None => Ok(evidence_controls::Policy::default()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading policy file {}", path.display()))?;
            evidence_controls::Policy::from_toml(&text)
                .with_context(|| format!("in policy file {}", path.display()))
        }
    }
}
