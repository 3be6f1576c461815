//! Fleet-size benchmarks for evidence-loadgen: `populate` writes N enrolled hosts with one
//! evaluated full report each straight into a data directory (through the `Store` trait, as
//! the server would, but without HTTP), and `snapshot-bench` times the snapshot computation
//! in-process over N hosts with a given number of checks each.

use std::time::Instant;

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
