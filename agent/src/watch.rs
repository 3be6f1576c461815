//! Continuous monitoring: which files each collector reads, and a notify (inotify) watch on them
//! that tells the service loop which collectors to re-run.
//!
//! Files that tools replace by writing a new file and renaming it over the old one (`vipw`,
//! `useradd`, dpkg) lose an inotify watch placed on the file itself, so each watched file's
//! parent directory is watched non-recursively and events are filtered by path. Watched
//! directories (`sudoers.d`, `ufw`, `firewalld`, apt lists) are watched recursively. A target
//! that does not exist yet is covered by its nearest existing ancestor, and [`Watch::refresh`]
//! adds the real watch once it appears. Opening or reading a file (the collectors themselves do)
//! is not a change.
//!
//! Debouncing is done by the service loop (a quiet-time deadline on its timer), not by a
//! polling thread, so an idle agent wakes for nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use evidence_collectors::CollectorName;
use notify::event::{AccessKind, AccessMode, EventKind, MetadataKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// The files and directories each collector reads, relative to the observed root. Names that
/// this build has no collector for (yet) are skipped.
pub const WATCHED_PATHS: &[(&str, &[&str])] = &[
    (
        "accounts",
        &[
            "/etc/passwd",
            "/etc/shadow",
            "/etc/group",
            "/etc/sudoers",
            "/etc/sudoers.d",
        ],
    ),
    (
        "firewall",
        &["/etc/nftables.conf", "/etc/ufw", "/etc/firewalld"],
    ),
    (
        "patch_level",
        &["/var/lib/dpkg/status", "/var/lib/apt/lists"],
    ),
    ("disk_encryption", &["/etc/crypttab", "/etc/fstab"]),
    ("ssh", &["/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d"]),
];

/// Collectors with pending changes, shared between notify's thread and the service loop.
#[derive(Debug, Default)]
pub struct Pending {
    changed: Mutex<BTreeSet<CollectorName>>,
    /// Woken on every relevant change.
    pub notify: tokio::sync::Notify,
}

impl Pending {
    /// Takes the collectors changed since the last call.
    pub fn take(&self) -> BTreeSet<CollectorName> {
        std::mem::take(&mut *self.changed.lock().expect("pending lock"))
    }
}

/// One collector's absolute watch targets.
#[derive(Debug, Clone)]
struct Target {
    collector: CollectorName,
    path: PathBuf,
}

/// The live watch. Dropping it stops watching.
pub struct Watch {
    watcher: RecommendedWatcher,
    targets: Vec<Target>,
    active: BTreeMap<PathBuf, RecursiveMode>,
}

impl Watch {
    /// Starts watching the files of `collectors` under `root`.
    pub fn start(
        root: &Path,
        collectors: &[CollectorName],
        pending: Arc<Pending>,
    ) -> notify::Result<Watch> {
        // notify reports absolute paths; a relative root would never match them.
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let targets = targets(&root, collectors);
        let matcher = targets.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let event = match event {
                Ok(event) => event,
                Err(err) => {
                    tracing::warn!(error = %err, "file watch error");
                    return;
                }
            };
            if !is_change(&event.kind) {
                return;
            }
            let affected = affected(&matcher, &event.paths);
            if affected.is_empty() {
                return;
            }
            tracing::debug!(paths = ?event.paths, kind = ?event.kind, ?affected, "watched file changed");
            pending
                .changed
                .lock()
                .expect("pending lock")
                .extend(affected);
            pending.notify.notify_one();
        })?;
        let mut watch = Watch {
            watcher,
            targets,
            active: BTreeMap::new(),
        };
        watch.refresh();
        Ok(watch)
    }

    /// Adds watches for targets that appeared since the last call; forgets those whose path is
    /// gone (the kernel dropped them) so they are added again when it comes back.
    pub fn refresh(&mut self) {
        self.active.retain(|path, _| path.exists());
        for (path, mode) in plan(&self.targets) {
            if self.active.get(&path) == Some(&mode) {
                continue;
            }
            match self.watcher.watch(&path, mode) {
                Ok(()) => {
                    self.active.insert(path, mode);
                }
                Err(err) => tracing::warn!(path = %path.display(), error = %err, "cannot watch"),
            }
        }
    }

    /// Paths being watched, for logs and tests.
    pub fn watched(&self) -> Vec<PathBuf> {
        self.active.keys().cloned().collect()
    }
}

fn targets(root: &Path, collectors: &[CollectorName]) -> Vec<Target> {
    let mut out = Vec::new();
    for (name, paths) in WATCHED_PATHS {
        let Ok(collector) = name.parse::<CollectorName>() else {
            continue;
        };
        if !collectors.contains(&collector) {
            continue;
        }
        for rel in *paths {
            out.push(Target {
                collector,
                path: root.join(rel.trim_start_matches('/')),
            });
        }
    }
    out
}

/// Which directories to watch, and how: an existing directory target recursively, and the
/// nearest existing ancestor of every target's parent non-recursively (renames over a file and
/// the creation of a missing target land there).
fn plan(targets: &[Target]) -> BTreeMap<PathBuf, RecursiveMode> {
    let mut plan = BTreeMap::new();
    for target in targets {
        if target.path.is_dir() {
            plan.insert(target.path.clone(), RecursiveMode::Recursive);
        }
        let mut dir = target.path.parent();
        while let Some(d) = dir {
            if d.is_dir() {
                plan.entry(d.to_path_buf())
                    .or_insert(RecursiveMode::NonRecursive);
                break;
            }
            dir = d.parent();
        }
    }
    plan
}

/// True for events that can change what a collector reads: not opens, reads or access times.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        _ => true,
    }
}

/// Collectors whose targets an event touches: the target itself, something inside a target
/// directory, or a directory on the way to a target (created, removed or renamed).
fn affected(targets: &[Target], paths: &[PathBuf]) -> BTreeSet<CollectorName> {
    targets
        .iter()
        .filter(|t| {
            paths
                .iter()
                .any(|p| p.starts_with(&t.path) || (t.path.starts_with(p) && p != Path::new("/")))
        })
        .map(|t| t.collector)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn events_map_to_the_collectors_that_read_the_path() {
        let root = Path::new("/srv/root");
        let targets = targets(root, &CollectorName::ALL);
        let one = |p: &str| affected(&targets, &[PathBuf::from(p)]);
        assert_eq!(
            one("/srv/root/etc/passwd"),
            BTreeSet::from([CollectorName::Accounts])
        );
        assert_eq!(
            one("/srv/root/etc/sudoers.d/90-admins"),
            BTreeSet::from([CollectorName::Accounts])
        );
        assert_eq!(
            one("/srv/root/var/lib/dpkg/status"),
            BTreeSet::from([CollectorName::PatchLevel])
        );
        assert_eq!(
            one("/srv/root/etc/firewalld"),
            BTreeSet::from([CollectorName::Firewall])
        );
        assert!(
            one("/srv/root/etc/passwd-").is_empty(),
            "backup files are not read"
        );
        assert!(one("/srv/root/etc/hosts").is_empty());
        assert!(one("/etc/passwd").is_empty(), "outside the root");
    }

    #[test]
    fn only_the_selected_collectors_are_watched() {
        let targets = targets(Path::new("/"), &[CollectorName::Firewall]);
        assert!(targets
            .iter()
            .all(|t| t.collector == CollectorName::Firewall));
        assert!(affected(&targets, &[PathBuf::from("/etc/shadow")]).is_empty());
    }

    #[test]
    fn reads_and_opens_are_not_changes_but_writes_and_renames_are() {
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Modify(ModifyKind::Name(
            notify::event::RenameMode::Both
        ))));
    }

    /// Waits (at most 5 s) until some collector is pending, and takes the set.
    async fn next_change(pending: &Pending) -> BTreeSet<CollectorName> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let changed = pending.take();
            if !changed.is_empty() {
                return changed;
            }
            tokio::time::timeout_at(deadline, pending.notify.notified())
                .await
                .expect("a change event within 5 s");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_file_replaced_by_rename_and_a_new_sudoers_dir_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(etc.join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        let pending = Arc::new(Pending::default());
        let mut watch =
            Watch::start(dir.path(), &[CollectorName::Accounts], pending.clone()).unwrap();
        assert!(watch.watched().contains(&etc));

        // Reading is not a change.
        std::fs::read(etc.join("passwd")).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(pending.take().is_empty(), "a read is not a change");

        // Replace by rename, as shadow-utils does.
        let new = "root:x:0:0::/root:/bin/sh\nx:x:0:0::/:/bin/sh\n";
        std::fs::write(etc.join("passwd+"), new).unwrap();
        std::fs::rename(etc.join("passwd+"), etc.join("passwd")).unwrap();
        assert_eq!(
            next_change(&pending).await,
            BTreeSet::from([CollectorName::Accounts])
        );

        std::fs::create_dir(etc.join("sudoers.d")).unwrap();
        assert_eq!(
            next_change(&pending).await,
            BTreeSet::from([CollectorName::Accounts])
        );
        watch.refresh();
        assert!(watch.watched().contains(&etc.join("sudoers.d")));
        tokio::time::sleep(Duration::from_millis(200)).await;
        pending.take();
        std::fs::write(etc.join("sudoers.d/admins"), "%adm ALL=(ALL) ALL\n").unwrap();
        assert_eq!(
            next_change(&pending).await,
            BTreeSet::from([CollectorName::Accounts])
        );
    }
}
