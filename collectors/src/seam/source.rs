//! [`Source`]: one host path a collector reads, and how the agent learns that it changed.
//!
//! Each collector lists its sources in its `READS`; the agent's watch list is derived from
//! them (the [`Source::Watched`] ones), and a test records every path a collector asks the
//! [`crate::Host`] for and proves each is covered by its collector's `READS`.

/// One path a collector reads, absolute as on the host (under the host's root). A directory
/// stands for everything under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Configuration or package state: the agent watches it and re-runs the collector when it
    /// changes.
    Watched(&'static str),
    /// Kernel and run-time state (`/proc`, `/sys`, `/dev`, `/run`) and activity logs (`wtmp`,
    /// `lastlog`): read at every collection, never watched (inotify reports no change in
    /// `/proc` or `/sys`, and a log changes with every login without any setting changing).
    Polled(&'static str),
    /// A path relative to every account's home directory (`.ssh/authorized_keys`): read at every
    /// collection, not watched (the homes are only known once `/etc/passwd` is read).
    InHomes(&'static str),
}

impl Source {
    /// The path as written in `READS`.
    pub fn path(&self) -> &'static str {
        match self {
            Source::Watched(path) | Source::Polled(path) | Source::InHomes(path) => path,
        }
    }

    /// Whether reading `path` (absolute, as asked of the host) is declared by this source:
    /// the path itself or something inside it; for [`Source::InHomes`], inside one of `homes`.
    pub fn covers(&self, path: &str, homes: &[String]) -> bool {
        let within = |base: &str, path: &str| {
            let base = base.trim_end_matches('/');
            path == base
                || path
                    .strip_prefix(base)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        match self {
            Source::Watched(base) | Source::Polled(base) => within(base, path),
            Source::InHomes(rel) => homes.iter().any(|home| {
                let base = format!("{}/{rel}", home.trim_end_matches('/'));
                within(&base, path)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_covers_itself_and_what_is_under_it_but_not_its_siblings() {
        let dir = Source::Watched("/etc/sudoers.d");
        assert!(dir.covers("/etc/sudoers.d", &[]));
        assert!(dir.covers("/etc/sudoers.d/README", &[]));
        assert!(!dir.covers("/etc/sudoers.d-old", &[]));
        assert!(!dir.covers("/etc/sudoers", &[]));
        let keys = Source::InHomes(".ssh/authorized_keys");
        let homes = ["/home/bob/".to_string()];
        assert!(keys.covers("/home/bob/.ssh/authorized_keys", &homes));
        assert!(!keys.covers("/home/eve/.ssh/authorized_keys", &homes));
    }
}
