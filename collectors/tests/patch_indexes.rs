//! apt index decoding with files made by the real tools, Debian version ordering against
//! `dpkg --compare-versions` on real version pairs from this machine's indexes, and corrupt
//! or truncated inputs turning into errors with their reason (never a pass).

mod apt_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use evidence_collectors::patch_level::apt_indexes::{self, Compression, IndexEntry};
use evidence_collectors::patch_level::{self, deb_version};
use evidence_collectors::{caps, Host, SystemRunner};
use evidence_protocol::Observation;

use apt_support::ensure_lists;

const SLICE: &[u8] = include_bytes!("data/patch_level/packages_slice");
const STATUS: &[u8] = include_bytes!("data/patch_level/status_slice");
const INRELEASE: &[u8] = include_bytes!("data/patch_level/security_InRelease");

/// Skips loudly, or fails under CI, when a tool is missing (apt packages gzip, xz-utils, lz4,
/// dpkg).
fn require(test: &str, tools: &[&str]) -> bool {
    evidence_tests::require(test, false, tools)
}

fn compress(tool: &str, data: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("Packages");
    std::fs::write(&plain, data).unwrap();
    let out = Command::new(tool)
        .args(["-c", "-q"])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(out.status.success(), "{tool} failed");
    out.stdout
}

fn scan_all(
    data: &[u8],
    compression: Compression,
) -> Result<(Vec<IndexEntry>, u64), apt_indexes::IndexError> {
    apt_indexes::scan(data, compression, &|_| true, caps::APT_INDEX)
}

#[test]
fn gzip_xz_and_lz4_made_by_the_real_tools_decode_to_the_same_entries_as_plain() {
    if !require("gzip_xz_and_lz4_decode", &["gzip", "xz", "lz4"]) {
        return;
    }
    let (plain, seen) = scan_all(SLICE, Compression::Plain).unwrap();
    assert_eq!(seen, 60);
    assert_eq!(plain.len(), 60);
    for (tool, compression) in [
        ("gzip", Compression::Gzip),
        ("xz", Compression::Xz),
        ("lz4", Compression::Lz4),
    ] {
        let packed = compress(tool, SLICE);
        let (entries, seen) = scan_all(&packed, compression).unwrap();
        assert_eq!((entries.as_slice(), seen), (plain.as_slice(), 60), "{tool}");
        // Truncated and bit-flipped files are errors, never a shorter list.
        let cut = &packed[..packed.len() * 2 / 3];
        assert!(
            scan_all(cut, compression).is_err(),
            "{tool}: truncated file accepted"
        );
        let mut flipped = packed.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        assert!(
            scan_all(&flipped, compression).is_err(),
            "{tool}: corrupt file accepted"
        );
    }
}

#[test]
fn the_real_main_index_is_scanned_keeping_only_wanted_names() {
    ensure_lists();
    let path = Path::new("/var/lib/apt/lists");
    let Some(main) = std::fs::read_dir(path).ok().and_then(|d| {
        d.flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains("_Packages"))
            .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
    }) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have apt lists (apt-get update)"
        );
        eprintln!("\n*** SKIPPED: no apt lists on this machine ***\n");
        return;
    };
    let name = main.file_name().unwrap().to_string_lossy().into_owned();
    let compression = Compression::of(&name).unwrap();
    let file = std::fs::File::open(&main).unwrap();
    let (kept, seen) = apt_indexes::scan(
        file,
        compression,
        &|n| n == "bash" || n == "dpkg",
        caps::APT_INDEX,
    )
    .unwrap();
    assert!(seen > 1000, "{seen} stanzas");
    let names: BTreeSet<&str> = kept.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["bash", "dpkg"]));
}

/// Real versions: every version of every package in this machine's indexes, in file order.
fn real_versions() -> Vec<(String, String)> {
    ensure_lists();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/var/lib/apt/lists")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(compression) = Compression::of(&name) else {
            continue;
        };
        if !name.contains("_Packages") {
            continue;
        }
        let file = std::fs::File::open(entry.path()).unwrap();
        let (entries, _) =
            apt_indexes::scan(file, compression, &|_| true, caps::APT_INDEX).unwrap();
        out.extend(entries.into_iter().map(|e| (e.name, e.version)));
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn version_order_equals_dpkg_compare_versions_on_real_pairs() {
    if !require("version_order_equals_dpkg", &["dpkg"]) {
        return;
    }
    let versions = real_versions();
    if versions.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have apt lists (apt-get update)"
        );
        eprintln!("\n*** SKIPPED: no apt lists on this machine ***\n");
        return;
    }
    // Same-package pairs (the comparisons that matter), then pairs across packages.
    let mut pairs: Vec<(&str, &str)> = versions
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| (&*w[0].1, &*w[1].1))
        .collect();
    let step = (versions.len() / 1500).max(1);
    let sample: Vec<&str> = versions
        .iter()
        .step_by(step)
        .map(|(_, v)| v.as_str())
        .collect();
    pairs.extend(sample.windows(2).map(|w| (w[0], w[1])));
    pairs.extend(
        sample
            .iter()
            .zip(sample.iter().rev())
            .take(300)
            .map(|(a, b)| (*a, *b)),
    );
    pairs.truncate(2500);
    let mut script = String::new();
    for (a, b) in &pairs {
        assert!(!a.contains('\'') && !b.contains('\''));
        script.push_str(&format!(
            "if dpkg --compare-versions '{a}' lt '{b}'; then echo lt; elif dpkg --compare-versions '{a}' eq '{b}'; then echo eq; else echo gt; fi\n"
        ));
    }
    let mut child = Command::new("sh")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer =
        std::thread::spawn(move || std::io::Write::write_all(&mut stdin, script.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let answers: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(answers.len(), pairs.len());
    let mut mismatches = Vec::new();
    for ((a, b), dpkg) in pairs.iter().zip(&answers) {
        let ours = match deb_version::compare(a, b) {
            std::cmp::Ordering::Less => "lt",
            std::cmp::Ordering::Equal => "eq",
            std::cmp::Ordering::Greater => "gt",
        };
        if ours != dpkg {
            mismatches.push(format!("{a} vs {b}: dpkg {dpkg}, ours {ours}"));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    let orders: BTreeSet<&String> = answers.iter().collect();
    assert_eq!(orders.len(), 3, "the pairs exercise lt, eq and gt");
    eprintln!(
        "{} real version pairs agree with dpkg --compare-versions",
        pairs.len()
    );
}

/// A small tree: the status slice and one security index, compressed by `tool`.
fn small_tree(tool: &str, index: &[u8], status: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let lists = dir.path().join("var/lib/apt/lists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/dpkg")).unwrap();
    std::fs::create_dir_all(dir.path().join("etc/apt")).unwrap();
    std::fs::write(dir.path().join("var/lib/dpkg/status"), status).unwrap();
    std::fs::write(
        dir.path().join("etc/apt/sources.list"),
        "deb http://deb.debian.org/debian-security bookworm-security main\n",
    )
    .unwrap();
    let prefix = "deb.debian.org_debian-security_dists_bookworm-security_";
    std::fs::write(lists.join(format!("{prefix}InRelease")), INRELEASE).unwrap();
    std::fs::write(
        lists.join(format!("{prefix}main_binary-amd64_Packages.lz4")),
        compress(tool, index),
    )
    .unwrap();
    dir
}

fn host(root: &Path) -> Host {
    Host::new(root, Arc::new(SystemRunner))
}

#[test]
fn a_truncated_index_makes_updates_an_error_with_the_file_and_reason() {
    if !require("a_truncated_index_is_an_error", &["lz4"]) {
        return;
    }
    let tree = small_tree("lz4", SLICE, STATUS);
    let Observation::Observed(facts) = patch_level::collect(&host(tree.path())) else {
        panic!("not observed")
    };
    assert!(
        matches!(facts.updates, Observation::Observed(_)),
        "{:?}",
        facts.updates
    );
    assert!(
        matches!(facts.kernel, Observation::NotApplicable { .. }),
        "--root: the running kernel is not the tree's"
    );
    assert!(matches!(facts.reboot, Observation::NotApplicable { .. }));
    let file = tree.path().join("var/lib/apt/lists/deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages.lz4");
    let packed = std::fs::read(&file).unwrap();
    std::fs::write(&file, &packed[..packed.len() / 2]).unwrap();
    let Observation::Observed(facts) = patch_level::collect(&host(tree.path())) else {
        panic!("not observed")
    };
    match facts.updates {
        Observation::Error { reason } => assert!(
            reason.contains("Packages.lz4") && reason.contains("decompressing"),
            "{reason}"
        ),
        other => panic!("truncated index accepted: {other:?}"),
    }
}

#[test]
fn a_truncated_status_file_is_an_error_for_the_whole_collector() {
    if !require("a_truncated_status_file_is_an_error", &["lz4"]) {
        return;
    }
    let tree = small_tree("lz4", SLICE, &STATUS[..STATUS.len() - 20]);
    match patch_level::collect(&host(tree.path())) {
        Observation::Error { reason } => assert!(
            reason.contains("status") && reason.contains("truncated"),
            "{reason}"
        ),
        other => panic!("truncated status accepted: {other:?}"),
    }
}

#[test]
fn a_tree_without_lists_reports_unknown_updates_as_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/dpkg")).unwrap();
    std::fs::write(dir.path().join("var/lib/dpkg/status"), STATUS).unwrap();
    let Observation::Observed(facts) = patch_level::collect(&host(dir.path())) else {
        panic!("not observed")
    };
    assert!(matches!(facts.updates, Observation::Error { .. }));
    assert!(matches!(facts.index_refresh, Observation::Error { .. }));
}

#[test]
fn index_age_follows_the_last_update_not_the_mirror_timestamp() {
    if !require("index_age_follows_the_last_update", &["lz4"]) {
        return;
    }
    let tree = small_tree("lz4", SLICE, STATUS);
    let lists = tree.path().join("var/lib/apt/lists");
    let release = lists.join("deb.debian.org_debian-security_dists_bookworm-security_InRelease");
    let month_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&release)
        .unwrap()
        .set_modified(month_ago)
        .unwrap();
    let refresh = |tree: &Path| match patch_level::collect(&host(tree)) {
        Observation::Observed(facts) => facts.index_refresh,
        other => panic!("{other:?}"),
    };
    match refresh(tree.path()) {
        Observation::Observed(r) => assert!(r.age_seconds >= 29 * 86_400, "{r:?}"),
        other => panic!("{other:?}"),
    }
    std::fs::create_dir_all(lists.join("partial")).unwrap();
    match refresh(tree.path()) {
        Observation::Observed(r) => {
            assert!(r.age_seconds < 3600, "{r:?}");
            assert!(r.source.ends_with("partial"));
        }
        other => panic!("{other:?}"),
    }
}

/// The security index of `small_tree` replaced by a gzip one: the real slice followed by
/// `blank_mib` MiB of blank lines (each MiB its own gzip member, ~1 KiB), so it is small on
/// disk and, under the cap, a valid index.
fn with_gzip_index(tree: &Path, blank_mib: usize) -> std::path::PathBuf {
    use std::io::Write;
    let lists = tree.join("var/lib/apt/lists");
    let prefix = "deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_";
    let _ = std::fs::remove_file(lists.join(format!("{prefix}Packages.lz4")));
    let gzip = |data: &[u8]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    };
    let mut packed = gzip(SLICE);
    packed.extend(gzip(&vec![b'\n'; 1 << 20]).repeat(blank_mib));
    let path = lists.join(format!("{prefix}Packages.gz"));
    std::fs::write(&path, packed).unwrap();
    path
}

#[test]
fn a_gzip_index_decompressing_past_its_cap_makes_updates_an_error_naming_it() {
    if !require("a_gzip_bomb_is_an_error", &["lz4"]) {
        return;
    }
    let tree = small_tree("lz4", SLICE, STATUS);
    with_gzip_index(tree.path(), 1);
    let Observation::Observed(facts) = patch_level::collect(&host(tree.path())) else {
        panic!("not observed")
    };
    assert!(
        matches!(facts.updates, Observation::Observed(_)),
        "under its cap the gzip index reads: {:?}",
        facts.updates
    );
    let cap_mib = usize::try_from(caps::APT_INDEX >> 20).unwrap();
    let bomb = with_gzip_index(tree.path(), cap_mib + 1);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 1 << 20);
    let Observation::Observed(facts) = patch_level::collect(&host(tree.path())) else {
        panic!("not observed")
    };
    assert_eq!(
        facts.updates,
        Observation::Error {
            reason: format!(
                "{}: decompresses to more than 268435456 bytes, over its cap (a decompression bomb?)",
                bomb.display()
            )
        }
    );
}

#[test]
fn a_dpkg_status_over_its_cap_is_an_error_for_the_collector_naming_it_and_its_size() {
    if !require("a_dpkg_status_over_its_cap_is_an_error", &["lz4"]) {
        return;
    }
    let tree = small_tree("lz4", SLICE, STATUS);
    let status = tree.path().join("var/lib/dpkg/status");
    std::fs::File::options()
        .write(true)
        .open(&status)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    assert_eq!(
        patch_level::collect(&host(tree.path())),
        Observation::Error {
            reason: format!(
                "dpkg status: {}: 1073741824 bytes, over its cap of 67108864 bytes",
                status.display()
            )
        }
    );
}
