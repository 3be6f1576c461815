//! [`ReadLog`]: every path a [`crate::Host`] was asked for, so tests can prove that a collector
//! declares (in its `READS`) everything it reads.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// The paths asked of a host (absolute, as on the host), shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct ReadLog(Arc<Mutex<BTreeSet<String>>>);

impl ReadLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn note(&self, path: &str) {
        let path = format!("/{}", path.trim_start_matches('/'));
        self.0.lock().expect("read log lock").insert(path);
    }

    /// Every path asked for so far, sorted.
    pub fn paths(&self) -> BTreeSet<String> {
        self.0.lock().expect("read log lock").clone()
    }
}
