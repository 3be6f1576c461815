//! The patch_level collector against apt itself on this machine: the pending and security
//! counts and the package names equal `apt list --upgradable`, on the live tree and on
//! constructed trees (an older version edited into a copy of the real status file; a
//! NotAutomatic suite; a pin) where apt is pointed at the same tree with `-o Dir=<root>`.

mod apt_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use evidence_collectors::patch_level;
use evidence_collectors::Host;
use evidence_protocol::facts::patch_level::PendingUpdates;
use evidence_protocol::Observation;

use apt_support::ensure_lists;

/// Skips loudly, or fails under CI, when apt and dpkg (whose status file apt reads) are missing.
fn require_apt(test: &str) -> bool {
    evidence_tests::require(test, false, &["apt", "dpkg"])
}

/// `apt list --upgradable` parsed into (name, security) pairs.
fn apt_upgradable(extra: &[&str]) -> BTreeSet<(String, bool)> {
    let out = Command::new("apt")
        .args(["list", "--upgradable"])
        .args(extra)
        .env("LC_ALL", "C")
        .output()
        .expect("apt list runs");
    assert!(
        out.status.success(),
        "apt list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("[upgradable from:"))
        .map(|l| {
            let (name, rest) = l.split_once('/').expect("name/archives");
            let archives = rest.split_whitespace().next().unwrap_or("");
            (name.to_string(), archives.contains("-security"))
        })
        .collect()
}

/// Our pending updates as apt names them: `name`, or `name:arch` for a foreign architecture.
fn ours(updates: &PendingUpdates) -> BTreeSet<(String, bool)> {
    let native = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .expect("dpkg runs");
    let native = String::from_utf8_lossy(&native.stdout).trim().to_string();
    updates
        .pending
        .iter()
        .map(|p| {
            let name = if p.arch == native {
                p.name.clone()
            } else {
                format!("{}:{}", p.name, p.arch)
            };
            (name, p.security)
        })
        .collect()
}

fn collect_updates(root: &Path) -> PendingUpdates {
    let host = Host::new(root, std::sync::Arc::new(evidence_collectors::SystemRunner));
    match patch_level::collect(&host) {
        Observation::Observed(facts) => match facts.updates {
            Observation::Observed(updates) => updates,
            other => panic!("updates not observed: {other:?}"),
        },
        other => panic!("patch_level not observed: {other:?}"),
    }
}

fn assert_same(what: &str, ours: BTreeSet<(String, bool)>, apt: BTreeSet<(String, bool)>) {
    let count = |s: &BTreeSet<(String, bool)>| (s.len(), s.iter().filter(|(_, sec)| *sec).count());
    assert_eq!(ours, apt, "{what}: (name, security) sets differ");
    assert_eq!(count(&ours), count(&apt));
    eprintln!(
        "{what}: {} pending, {} security, identical to apt",
        count(&ours).0,
        count(&ours).1
    );
}

#[test]
fn live_pending_updates_equal_apt_list_upgradable() {
    if !require_apt("live_pending_updates_equal_apt_list_upgradable") {
        return;
    }
    ensure_lists();
    let updates = collect_updates(Path::new("/"));
    assert_same("live tree", ours(&updates), apt_upgradable(&[]));
}

/// Writes `text` to `path` compressed with the real tool (`gzip`, `xz`, `lz4`) or plain.
fn write_index(path: &Path, text: &str, tool: Option<&str>) {
    let Some(tool) = tool else {
        std::fs::write(path, text).unwrap();
        return;
    };
    let ext = match tool {
        "gzip" => "gz",
        other => other,
    };
    let plain = path.with_extension("plain");
    std::fs::write(&plain, text).unwrap();
    let out = Command::new(tool)
        .args(["-c", "-q"])
        .arg(&plain)
        .output()
        .expect("compressor runs");
    assert!(out.status.success(), "{tool} failed");
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{ext}"));
    std::fs::write(name, out.stdout).unwrap();
    std::fs::remove_file(plain).unwrap();
}

/// A copy of this machine's apt state under `root`, plus fake suites and edits.
fn constructed_tree(root: &Path) -> Vec<String> {
    for dir in [
        "etc/apt/sources.list.d",
        "etc/apt/preferences.d",
        "etc/apt/apt.conf.d",
        "var/lib/dpkg",
        "var/lib/apt/lists",
        "var/cache/apt",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for entry in std::fs::read_dir("/etc/apt/sources.list.d")
        .unwrap()
        .flatten()
    {
        std::fs::copy(
            entry.path(),
            root.join("etc/apt/sources.list.d").join(entry.file_name()),
        )
        .unwrap();
    }
    if Path::new("/etc/apt/sources.list").exists() {
        std::fs::copy("/etc/apt/sources.list", root.join("etc/apt/sources.list")).unwrap();
    }
    for entry in std::fs::read_dir("/var/lib/apt/lists").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains("_Packages") || name.ends_with("Release") {
            std::fs::copy(entry.path(), root.join("var/lib/apt/lists").join(&name)).unwrap();
        }
    }
    // Older versions of three installed, currently up-to-date amd64 packages.
    let live = apt_upgradable(&[]);
    let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
    let mut edited = Vec::new();
    let mut stanzas: Vec<String> = status.split("\n\n").map(str::to_string).collect();
    for stanza in stanzas.iter_mut() {
        let name = stanza
            .lines()
            .find_map(|l| l.strip_prefix("Package: "))
            .unwrap_or("")
            .to_string();
        let installed = stanza.contains("\nStatus: install ok installed");
        if edited.len() < 3
            && installed
            && stanza.contains("\nArchitecture: amd64")
            && !live.iter().any(|(n, _)| *n == name)
        {
            *stanza = stanza
                .lines()
                .map(|l| {
                    if l.starts_with("Version: ") {
                        "Version: 0.0.1-0".to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            edited.push(name);
        }
    }
    let mut status = stanzas.join("\n\n");
    for fake in [
        "evidence-fake-na",
        "evidence-fake-bau",
        "evidence-fake-pinned",
        "evidence-fake-sec",
    ] {
        status.push_str(&format!("Package: {fake}\nStatus: install ok installed\nPriority: optional\nSection: misc\nMaintainer: Test <t@example.org>\nArchitecture: amd64\nVersion: 1.0-1\nDescription: fake\n\n"));
    }
    std::fs::write(
        root.join("var/lib/dpkg/status"),
        status.trim_end().to_string() + "\n",
    )
    .unwrap();
    // Fake suites: NotAutomatic, NotAutomatic+ButAutomaticUpgrades, a security suite.
    let suites = [
        (
            "na",
            "Suite: na\nCodename: na\nNotAutomatic: yes\n",
            &["evidence-fake-na", "evidence-fake-pinned"][..],
            Some("gzip"),
        ),
        (
            "nabau",
            "Suite: nabau\nCodename: nabau\nNotAutomatic: yes\nButAutomaticUpgrades: yes\n",
            &["evidence-fake-bau"][..],
            Some("xz"),
        ),
        (
            "fake-security",
            "Suite: fake-security\nCodename: fake-security\nLabel: Fake-Security\n",
            &["evidence-fake-sec"][..],
            Some("lz4"),
        ),
    ];
    let lists = root.join("var/lib/apt/lists");
    let mut sources = String::new();
    for (suite, release, packages, tool) in suites {
        sources.push_str(&format!(
            "deb [trusted=yes] http://fake.invalid/debian {suite} main\n"
        ));
        std::fs::write(
            lists.join(format!("fake.invalid_debian_dists_{suite}_Release")),
            format!("Origin: Fake\n{release}Architectures: amd64\nComponents: main\n"),
        )
        .unwrap();
        let text: String = packages.iter().map(|p| format!("Package: {p}\nVersion: 2.0-1\nArchitecture: amd64\nFilename: pool/{p}_2.0-1_amd64.deb\nSize: 1\n\n")).collect();
        write_index(
            &lists.join(format!(
                "fake.invalid_debian_dists_{suite}_main_binary-amd64_Packages"
            )),
            &text,
            tool,
        );
    }
    std::fs::write(root.join("etc/apt/sources.list.d/fake.list"), sources).unwrap();
    // A list left behind by a removed source: apt ignores it, and so must we.
    std::fs::write(
        lists.join("stale.invalid_debian_dists_gone_Release"),
        "Origin: Stale\nSuite: gone\nCodename: gone\n",
    )
    .unwrap();
    std::fs::write(
        lists.join("stale.invalid_debian_dists_gone_main_binary-amd64_Packages"),
        "Package: evidence-fake-na\nVersion: 9.0-1\nArchitecture: amd64\n\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/apt/sources.list.d/gone.list.disabled"),
        "deb http://stale.invalid/debian gone main\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/apt/preferences.d/fake"),
        "Package: evidence-fake-pinned\nPin: release n=na\nPin-Priority: 600\n\n\
         Explanation: a glob pin with a bare release name holds the apt packages back\n\
         Package: apt*\nPin: release bookworm-security\nPin-Priority: 50\n\n\
         Package: bash\nPin: origin deb.debian.org\nPin-Priority: -1\n",
    )
    .unwrap();
    // apt ignores this file (extension), and so must we: it would hold every fake package back.
    std::fs::write(
        root.join("etc/apt/preferences.d/ignored.disabled"),
        "Package: *\nPin: release o=Fake\nPin-Priority: -1\n",
    )
    .unwrap();
    edited
}

#[test]
fn constructed_tree_pending_updates_equal_apt_pointed_at_the_same_tree() {
    if !require_apt("constructed_tree_pending_updates_equal_apt_pointed_at_the_same_tree") {
        return;
    }
    ensure_lists();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let edited = constructed_tree(root);
    let dir_opt = format!("Dir={}", root.display());
    let status_opt = format!(
        "Dir::State::status={}",
        root.join("var/lib/dpkg/status").display()
    );
    let apt = apt_upgradable(&["-o", &dir_opt, "-o", &status_opt]);
    let names: BTreeSet<&str> = apt.iter().map(|(n, _)| n.as_str()).collect();
    // The tree exercises what it claims to: apt itself sees these effects.
    assert!(
        edited.iter().all(|n| names.contains(n.as_str())),
        "edited {edited:?} not upgradable in apt"
    );
    assert!(
        !names.contains("evidence-fake-na"),
        "NotAutomatic must not be a candidate"
    );
    assert!(
        names.contains("evidence-fake-bau"),
        "ButAutomaticUpgrades upgrades"
    );
    assert!(
        names.contains("evidence-fake-pinned"),
        "a 600 pin overrides NotAutomatic"
    );
    assert!(apt.contains(&("evidence-fake-sec".to_string(), true)));
    assert!(!names.contains("bash"), "a -1 origin pin holds bash back");
    assert_same("constructed tree", ours(&collect_updates(root)), apt);
}
