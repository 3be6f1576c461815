//! Continuous monitoring: an inotify watch on the files each collector reads that tells the
//! service loop which collectors to re-run.
//!
//! What is watched is derived from each collector's `READS` (its [`Source::Watched`] paths,
//! declared next to the collector and proved complete by the collectors' tests): there is no
//! second list here. Kernel state, logs and home directories (`Source::Polled`,
//! `Source::InHomes`) are re-read at every scheduled collection instead.
//!
//! Files that tools replace by writing a new file and renaming it over the old one (`vipw`,
//! `useradd`, dpkg) lose an inotify watch placed on the file itself, so each watched file's
//! parent directory is watched and events are filtered by path. Watched directories
//! (`sudoers.d`, `ufw`, `firewalld`, apt lists) are watched with their subdirectories. A target
//! that does not exist yet is covered by its nearest existing ancestor, and [`Watch::refresh`]
//! adds the real watch once it appears.
//!
//! The inotify mask holds only changes (close after write, create, delete, rename, metadata):
//! not opens or reads. The `notify` crate's inotify backend always adds `IN_OPEN`, and on `/etc`
//! that wakes the agent for every program started anywhere on the host; with this mask an idle
//! host costs nothing. One thread blocks in `read(2)` on the inotify descriptor. Debouncing is
//! done by the service loop (a quiet-time deadline on its timer), not by a polling thread.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use evidence_collectors::{CollectorName, Source};
use inotify::{Event, EventMask, Inotify, WatchDescriptor, WatchMask, Watches};

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

/// One collector's absolute watch target.
#[derive(Debug, Clone)]
struct Target {
    collector: CollectorName,
    path: PathBuf,
}

/// Changes only: see the module doc.
const MASK: WatchMask = WatchMask::CLOSE_WRITE
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::ONLYDIR);

/// Deepest subdirectory watched under a directory target.
const MAX_DEPTH: usize = 4;

type Dirs = Arc<Mutex<HashMap<WatchDescriptor, PathBuf>>>;

/// The live watch; its reader thread lives as long as the process.
pub struct Watch {
    watches: Watches,
    dirs: Dirs,
    targets: Arc<Vec<Target>>,
}

impl Watch {
    /// Starts watching the files of `collectors` under `root`.
    pub fn start(
        root: &Path,
        collectors: &[CollectorName],
        pending: Arc<Pending>,
    ) -> std::io::Result<Watch> {
        // Event paths are built from absolute directory names; a relative root would not match.
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let targets = Arc::new(targets(&root, collectors));
        let mut inotify = Inotify::init()?;
        let watch = Watch {
            watches: inotify.watches(),
            dirs: Dirs::default(),
            targets: targets.clone(),
        };
        let dirs = watch.dirs.clone();
        std::thread::Builder::new()
            .name("evidence-watch".into())
            .spawn(move || {
                let mut buffer = vec![0u8; 16 * 1024];
                loop {
                    let events = match inotify.read_events_blocking(&mut buffer) {
                        Ok(events) => events,
                        Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(err) => {
                            tracing::error!(error = %err, "file watch stopped");
                            return;
                        }
                    };
                    let mut changed = BTreeSet::new();
                    for event in events {
                        changed.extend(on_event(&targets, &dirs, &event));
                    }
                    if !changed.is_empty() {
                        pending
                            .changed
                            .lock()
                            .expect("pending lock")
                            .extend(changed);
                        pending.notify.notify_one();
                    }
                }
            })?;
        let mut watch = watch;
        watch.refresh();
        Ok(watch)
    }

    /// (Re-)adds a watch on every directory the targets need now: new directories get one,
    /// existing ones keep theirs (inotify returns the same descriptor for the same directory).
    pub fn refresh(&mut self) {
        for dir in plan(&self.targets) {
            match self.watches.add(&dir, MASK) {
                Ok(wd) => {
                    self.dirs.lock().expect("dirs lock").insert(wd, dir);
                }
                Err(err) => tracing::warn!(path = %dir.display(), error = %err, "cannot watch"),
            }
        }
    }

    /// Directories being watched, for logs and tests.
    pub fn watched(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .dirs
            .lock()
            .expect("dirs lock")
            .values()
            .cloned()
            .collect();
        dirs.sort();
        dirs
    }
}

/// The collectors one inotify event concerns.
fn on_event(
    targets: &[Target],
    dirs: &Dirs,
    event: &Event<&std::ffi::OsStr>,
) -> BTreeSet<CollectorName> {
    if event.mask.contains(EventMask::Q_OVERFLOW) {
        // The kernel's queue overflowed: anything may have changed.
        return targets.iter().map(|t| t.collector).collect();
    }
    let mut dirs = dirs.lock().expect("dirs lock");
    if event.mask.contains(EventMask::IGNORED) {
        // The directory is gone; refresh() watches it again if it comes back.
        dirs.remove(&event.wd);
        return BTreeSet::new();
    }
    let Some(dir) = dirs.get(&event.wd) else {
        return BTreeSet::new();
    };
    let path = match event.name {
        Some(name) => dir.join(name),
        None => dir.clone(),
    };
    let affected = affected(targets, std::slice::from_ref(&path));
    if !affected.is_empty() {
        tracing::debug!(path = %path.display(), mask = ?event.mask, ?affected, "watched file changed");
    }
    affected
}

/// The watched sources of `collectors`, under `root`.
fn targets(root: &Path, collectors: &[CollectorName]) -> Vec<Target> {
    let mut out = Vec::new();
    for &collector in collectors {
        for source in evidence_collectors::collector(collector).reads {
            if let Source::Watched(rel) = source {
                out.push(Target {
                    collector,
                    path: root.join(rel.trim_start_matches('/')),
                });
            }
        }
    }
    out
}

/// Which directories to watch: an existing directory target and its subdirectories, and the
/// nearest existing ancestor of every target's parent (renames over a file and the creation of
/// a missing target land there).
fn plan(targets: &[Target]) -> BTreeSet<PathBuf> {
    let mut plan = BTreeSet::new();
    for target in targets {
        if target.path.is_dir() {
            subdirs(&target.path, MAX_DEPTH, &mut plan);
        }
        let mut dir = target.path.parent();
        while let Some(d) = dir {
            if d.is_dir() {
                plan.insert(d.to_path_buf());
                break;
            }
            dir = d.parent();
        }
    }
    plan
}

/// `dir` and its subdirectories down to `depth` levels, not following symbolic links.
fn subdirs(dir: &Path, depth: usize, out: &mut BTreeSet<PathBuf>) {
    out.insert(dir.to_path_buf());
    if depth == 0 {
        return;
    }
    let Ok(items) = std::fs::read_dir(dir) else {
        return;
    };
    for item in items.flatten() {
        if item.file_type().is_ok_and(|t| t.is_dir()) {
            subdirs(&item.path(), depth - 1, out);
        }
    }
}

/// Collectors whose targets one of `paths` touches: the target itself, something inside a
/// target directory, or a directory on the way to a target (created, removed or renamed).
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
        let targets = targets(root, CollectorName::ALL);
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
    fn every_file_a_collector_reads_as_configuration_is_watched_and_logs_are_not() {
        let root = Path::new("/srv/root");
        let targets = targets(root, CollectorName::ALL);
        let one = |p: &str| affected(&targets, &[PathBuf::from(p)]);
        for (path, collector) in [
            ("/srv/root/etc/login.defs", CollectorName::Accounts),
            (
                "/srv/root/etc/security/pwquality.conf",
                CollectorName::Accounts,
            ),
            ("/srv/root/etc/default/ufw", CollectorName::Firewall),
            ("/srv/root/etc/ufw/user.rules", CollectorName::Firewall),
            (
                "/srv/root/etc/apt/preferences.d/pin",
                CollectorName::PatchLevel,
            ),
            (
                "/srv/root/etc/apt/sources.list.d/x.list",
                CollectorName::PatchLevel,
            ),
        ] {
            assert_eq!(one(path), BTreeSet::from([collector]), "{path}");
        }
        assert!(
            one("/srv/root/var/log/wtmp").is_empty(),
            "a login is not a change"
        );
        assert!(
            one("/srv/root/proc/swaps").is_empty(),
            "kernel state is polled"
        );
        let names: BTreeSet<CollectorName> = targets.iter().map(|t| t.collector).collect();
        for name in CollectorName::ALL {
            let declared = evidence_collectors::collector(*name)
                .reads
                .iter()
                .any(|s| matches!(s, Source::Watched(_)));
            assert_eq!(names.contains(name), declared, "{name}");
        }
    }

    #[test]
    fn only_the_selected_collectors_are_watched() {
        let targets = targets(Path::new("/"), &[CollectorName::Firewall]);
        assert!(targets
            .iter()
            .all(|t| t.collector == CollectorName::Firewall));
        assert!(affected(&targets, &[PathBuf::from("/etc/shadow")]).is_empty());
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
