//! Fleet-size benchmarks for evidence-loadgen: `populate` writes N enrolled hosts with one
//! evaluated full report each straight into a data directory (through the `Store` trait, as
//! the server would, but without HTTP), and `snapshot-bench` times the snapshot computation
//! in-process over N hosts with a given number of checks each; `proof-bench` times the
//! evidence log's inclusion and consistency proofs from a store of ten million entries.

use std::time::{Duration, Instant};

use anyhow::Context;

use evidence_controls::OrgPolicy;
use evidence_controls::Status;
use evidence_protocol::api::HostIdentity;
use evidence_protocol::{Digest, Report, ReportKind, SigningKey};
use evidence_server::domain::status::{snapshot, CheckIndex, HostState};
use evidence_server::store::{AppendContent, AppendItem, EnrollAttempt, SecretRecord};

/// Peak and current RSS of this process in MiB (from /proc/self/status).
pub fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmHWM:"), field("VmRSS:"))
}

pub fn populate(data_dir: &std::path::Path, hosts: usize) -> anyhow::Result<()> {
    let config = evidence_server::config::Config {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    let prepared = evidence_server::serve::prepare(&config)?;
    // The synchronous engine: populating is one thread writing as fast as SQLite can.
    let store = prepared.store.engine();
    let signer = evidence_server::service::checkpoints::NoteSigner::new(std::sync::Arc::new(
        SigningKey::from_pkcs8(prepared.server_key.pkcs8())?,
    ));
    store.set_bulk_load()?;
    let now = evidence_server::time::now_us();
    let secret = SecretRecord {
        id: "populate".into(),
        hash: [9; 32],
        created_at: now,
        expires_at: now + 3_600_000_000,
        single_use: false,
        uses: 0,
        revoked_at: None,
        note: "populate".into(),
        host_id: None,
    };
    store.create_secret(&secret)?;
    let policy = evidence_controls::Policy::default();
    let key = SigningKey::generate()?;
    let t = Instant::now();
    let mut batch = Vec::new();
    for i in 0..hosts {
        let key_id = format!("ed25519:populate{i:016}");
        let attempt = EnrollAttempt {
            secret_id: "populate".into(),
            secret_hash: [9; 32],
            public_key: Digest::of(key_id.as_bytes()).0,
            key_id: key_id.clone(),
            identity: HostIdentity {
                machine_id: format!("populate-{i}"),
                hostname: format!("host-{i:06}"),
                hardware_serial: None,
            },
            agent_version: "populate".into(),
            new_host_id: format!("h_populate{i:08}"),
            now,
        };
        let host_id = store
            .enroll(&attempt)?
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .host_id;
        // Vary the fleet: a third without firewall facts, a fifth with an error.
        let mut facts = evidence_loadgen::client::sample_facts(&format!("host-{i:06}"));
        if i % 3 == 0 {
            facts.firewall = None;
        }
        if i % 5 == 0 {
            facts.disk_encryption = Some(evidence_protocol::Observation::error("lsblk timed out"));
        }
        let report = Report {
            host_id: host_id.clone(),
            key_id: key_id.clone(),
            seq: 1,
            prev_digest: None,
            collected_at: chrono::Utc::now(),
            agent_version: "populate".into(),
            collector_versions: Default::default(),
            dropped_reports: 0,
            witnessed: None,
            kind: ReportKind::Full {
                facts: facts.clone(),
            },
        };
        // Signed with one key (verification is not what this measures).
        let signed = report.sign(&key);
        batch.push(AppendItem {
            host_id,
            key_id,
            seq: 1,
            prev_digest: None,
            digest: signed.digest(),
            bytes: signed.bytes,
            collected_at: now,
            received_at: evidence_server::time::now_us(),
            dropped_reports: 0,
            agent_version: "populate".into(),
            content: AppendContent::Full {
                findings: evidence_server::service::ingest::evaluate(&facts, &policy),
            },
            signature: None,
        });
        if batch.len() == 1000 || i + 1 == hosts {
            for r in store.append_reports(&batch, &signer)?.results {
                r.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            }
            batch.clear();
            eprint!("\r{} hosts", i + 1);
        }
    }
    eprintln!(
        "\npopulated {hosts} hosts in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn snapshot_bench(hosts: usize, checks: usize, rounds: usize) {
    let real = CheckIndex::new();
    // `checks` synthetic checks, each mapped to two of the real checks' controls.
    let controls = real.controls.clone();
    let list: Vec<(String, Vec<String>)> = (0..checks)
        .map(|i| {
            (
                format!("bench.check_{i:02}"),
                vec![
                    controls[i % controls.len()].clone(),
                    controls[(i * 7 + 3) % controls.len()].clone(),
                ],
            )
        })
        .collect();
    let index = CheckIndex::from_checks(list);
    let now = evidence_server::time::now_us();
    let statuses = [
        Status::Pass,
        Status::Pass,
        Status::Pass,
        Status::Fail,
        Status::NotApplicable,
        Status::Error,
    ];
    let fleet: Vec<(String, HostState)> = (0..hosts)
        .map(|h| {
            let findings: Vec<_> = (0..checks)
                .map(|c| {
                    let s = statuses[(h * 31 + c * 17) % statuses.len()];
                    (
                        c as u16,
                        s,
                        // Reasons repeat across a fleet (counts vary): 5 variants per check.
                        (s != Status::Pass).then(|| {
                            index.intern(&format!("check {c}: {} offending items", h % 5 + 1))
                        }),
                    )
                })
                .collect();
            (
                format!("h_{h:08}"),
                HostState {
                    hostname: format!("host-{h:06}").into(),
                    last_seen: Some(now - (h as i64 % 7) * 1_000_000_000),
                    revoked: false,
                    findings: findings.into(),
                },
            )
        })
        .collect();
    let (peak, rss) = rss_mib();
    println!(
        "fleet in memory: {hosts} hosts x {checks} checks, RSS {rss:.0} MiB (peak {peak:.0} MiB)"
    );
    let policy = OrgPolicy::default();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let snap = snapshot(
            fleet.iter().map(|(k, v)| (k.as_str(), v)),
            &index,
            &policy,
            now,
            3 * 3_600_000_000,
            100,
        );
        let json = serde_json::to_vec(&snap).expect("serialise");
        times.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(json);
    }
    times.sort_by(f64::total_cmp);
    println!("snapshot (compute + JSON) over {hosts} hosts x {checks} checks: median {:.1} ms, max {:.1} ms ({rounds} rounds)", times[times.len() / 2], times[times.len() - 1]);
}

/// Builds a tree of `entries` synthetic leaves in a fresh SQLite store, then times `queries`
/// inclusion proofs of random entries and consistency proofs from random sizes against the
/// whole tree (each through the store, as the API answers them). Prints medians and p99.
pub fn proof_bench(entries: u64, queries: usize) -> anyhow::Result<()> {
    use evidence_protocol::merkle;
    let dir = tempfile::tempdir()?;
    let store = evidence_server::store::sqlite::Sqlite::open(&dir.path().join("evidence.db"))?;
    store.set_bulk_load()?;
    let t = Instant::now();
    let mut next = 0u64;
    while next < entries {
        let batch: Vec<Digest> = (next..(next + 100_000).min(entries))
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect();
        next += batch.len() as u64;
        store.append_tree_leaves_for_bench(&batch)?;
    }
    let (size, root) = store.tree_head()?;
    eprintln!(
        "built a tree of {size} leaves in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    // A fixed pseudo-random sequence (splitmix64), so runs are comparable.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move |below: u64| {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % below
    };
    let mut inclusion = Vec::with_capacity(queries);
    let mut consistency = Vec::with_capacity(queries);
    for _ in 0..queries {
        let index = random(size);
        let t = Instant::now();
        let (leaf, proof) = store
            .inclusion_proof(index, size)?
            .context("an index below the size has a proof")?;
        inclusion.push(t.elapsed());
        anyhow::ensure!(merkle::verify_inclusion(&leaf, index, size, &proof, &root).is_ok());
        let from = 1 + random(size - 1);
        let t = Instant::now();
        store
            .consistency_proof(from, size)?
            .context("a size below the tree has a proof")?;
        consistency.push(t.elapsed());
    }
    let summary = |name: &str, mut times: Vec<Duration>| {
        times.sort();
        let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
        println!(
            "{name}: entries={size} queries={} median_us={:.0} p99_us={:.0} max_us={:.0}",
            times.len(),
            at(0.5).as_secs_f64() * 1e6,
            at(0.99).as_secs_f64() * 1e6,
            times[times.len() - 1].as_secs_f64() * 1e6
        );
    };
    summary("inclusion_proof", inclusion);
    summary("consistency_proof", consistency);
    Ok(())
}
