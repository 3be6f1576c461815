//! Evidence bundles from the real server: two enrolled hosts send full reports and an
//! attestation, an admin sets a policy with a Statement of Applicability entry, and the bundle
//! is exported over the API (`GET /v1/admin/bundle`) and with `evidence-server export-bundle`
//! beside the running server: the archive holds every entry the selection needs, the same
//! export gives the same bytes (API and command line alike), a host selection narrows it, bad
//! selections are refused as JSON, and `evidence-verify` accepts it and names the one entry
//! body whose byte was flipped.
//!
//! Needs the binaries: `cargo build -p evidence-server -p evidence-verify && cargo test -p
//! evidence-tests --test server_bundle`.

mod server_common;

use std::path::Path;
use std::process::Output;

use evidence_loadgen::client::{sample_facts, SimHost};
use evidence_protocol::bundle::{entry_body_path, Bundle, EntryKind, EntryMeta, StatusRow};
use evidence_protocol::ReportKind;
use serde_json::json;
use server_common::{runtime, start, temp_dir, Server};

/// The bundle over the API: status, content type and bytes.
async fn fetch(server: &Server, query: &str, token: &str) -> (u16, String, Vec<u8>) {
    let resp = server
        .api
        .http
        .get(format!("{}/v1/admin/bundle?{query}", server.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, resp.bytes().await.unwrap().to_vec())
}

fn export_cli(data: &Path, out: &Path, args: &[&str]) -> Output {
    std::process::Command::new(server_common::server_bin())
        .args(["export-bundle", "--data-dir"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .expect("run evidence-server export-bundle")
}

fn entries(bundle: &Bundle) -> Vec<EntryMeta> {
    bundle
        .files
        .keys()
        .filter(|p| p.starts_with("entries/") && p.ends_with(".json"))
        .map(|p| bundle.json(p).unwrap())
        .collect()
}

#[test]
fn an_exported_bundle_holds_the_selection_is_byte_identical_again_and_verifies() {
    let (tmp, data) = temp_dir();
    let server = start(&data, None, &[]);
    let admin = server.admin.clone();
    let a_ = Some(admin.as_str());
    let rt = runtime();
    let (a, b, server_key) = rt.block_on(async {
        let (s, v) = server
            .send("POST", "/v1/admin/enrollment-secrets", a_, Some("application/json"), b"{}".to_vec())
            .await;
        assert_eq!(s, 201, "{v}");
        let secret = v["secret"].as_str().unwrap().to_string();
        let mut a = SimHost::enroll(&server.api, &secret, "host-a").await.unwrap();
        let mut b = SimHost::enroll(&server.api, &secret, "host-b").await.unwrap();
        // a: full, attestation of it, full; b: full.
        let full = a.next_report(ReportKind::Full { facts: sample_facts("host-a") });
        let reports = [
            full.clone(),
            a.next_report(ReportKind::Attestation { still_holds: full.digest() }),
            a.next_report(ReportKind::Full { facts: sample_facts("host-a") }),
        ];
        for r in &reports {
            let (s, body) = server.api.submit(r).await.unwrap();
            assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
            a.check_receipt(r, &body).unwrap();
        }
        let r = b.next_report(ReportKind::Full { facts: sample_facts("host-b") });
        let (s, body) = server.api.submit(&r).await.unwrap();
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
        b.check_receipt(&r, &body).unwrap();
        let policy = json!({
            "checks": {},
            "applicability": { "8.22": { "applicable": false, "justification": "single flat office network" } }
        });
        let (s, v) = server
            .send("PUT", "/v1/admin/policy", a_, Some("application/json"), serde_json::to_vec(&policy).unwrap())
            .await;
        assert_eq!(s, 200, "{v}");
        // The auditor's copy of the log key, as the server prints it (C2SP verifier key).
        let out = std::process::Command::new(evidence_tests::binary("evidence-server"))
            .args(["log-key", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success());
        let server_key = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(server_key.starts_with("evidence-server/ed25519:"), "{server_key}");
        (a.host_id.clone(), b.host_id.clone(), server_key)
    });
    let to = "2100-01-01T00:00:00Z";
    let query = format!("to={to}");

    // Over the API, twice: the same bytes.
    let (first, second) = rt.block_on(async {
        let first = fetch(&server, &query, &admin).await;
        let second = fetch(&server, &query, &admin).await;
        (first, second)
    });
    assert_eq!((first.0, first.1.as_str()), (200, "application/x-tar"));
    assert!(
        first.2 == second.2,
        "two exports of the same log and period differ"
    );
    let bundle = Bundle::read(first.2.as_slice()).expect("a bundle");
    let all = entries(&bundle);
    let kinds = |host: &str| {
        all.iter()
            .filter(|e| e.host_id == host)
            .map(|e| e.kind)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(&a),
        vec![
            EntryKind::KeyEvent,
            EntryKind::Full,
            EntryKind::Attestation,
            EntryKind::Full
        ]
    );
    assert_eq!(kinds(&b), vec![EntryKind::KeyEvent, EntryKind::Full]);
    assert_eq!(kinds("-"), vec![EntryKind::Policy]);
    let policy_entry = all.iter().find(|e| e.kind == EntryKind::Policy).unwrap();
    assert_eq!(policy_entry.key_id, bundle.manifest.server_key_id);
    for name in [
        "chains.json",
        "consistency.json",
        "findings.csv",
        "findings.json",
        "status.csv",
        "status.json",
        "checkpoints/final.note",
    ] {
        assert!(
            bundle.files.contains_key(name),
            "{name} in {:?}",
            bundle.files.keys()
        );
    }
    assert_eq!(
        bundle.manifest.checkpoint.size, 7,
        "2 key events, 4 reports, 1 policy"
    );
    let status: Vec<StatusRow> = bundle.json("status.json").unwrap();
    let soa = status
        .iter()
        .find(|r| r.host_id == a && r.control == "8.22")
        .expect("a status row for the control the Statement of Applicability excludes");
    assert_eq!(soa.status.as_str(), "not_applicable", "{soa:?}");

    // The command line, beside the running server: the same bytes as the API.
    let out = tmp.path().join("bundle.tar");
    let cli = export_cli(&data, &out, &["--to", to]);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(
        std::fs::read(&out).unwrap() == first.2,
        "the command line wrote other bytes"
    );

    // One host selected: its entries and the policy only.
    let only_b = tmp.path().join("b.tar");
    let cli = export_cli(&data, &only_b, &["--to", to, "--host", &b]);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let narrowed = Bundle::read(std::fs::File::open(&only_b).unwrap()).unwrap();
    assert!(entries(&narrowed)
        .iter()
        .all(|e| e.host_id == b || e.host_id == "-"));
    assert_eq!(entries(&narrowed).len(), 3);

    // Refusals, as JSON, before any byte of archive.
    rt.block_on(async {
        let (s, _, body) = fetch(&server, "host=no-such-host", &admin).await;
        assert_eq!(s, 404, "{}", String::from_utf8_lossy(&body));
        let (s, _, body) = fetch(&server, "from=2030-01-02&to=2030-01-01", &admin).await;
        assert_eq!(s, 422, "{}", String::from_utf8_lossy(&body));
        let (s, _, body) = fetch(&server, "control=99.99", &admin).await;
        assert_eq!(s, 422, "{}", String::from_utf8_lossy(&body));
        let (s, _, body) = fetch(&server, "since=2030-01-01", &admin).await;
        assert_eq!(s, 400, "{}", String::from_utf8_lossy(&body));
        let (s, _, _) = fetch(&server, "", "not-a-token").await;
        assert_eq!(s, 401);
    });

    // evidence-verify, when built: exit 0; one flipped byte in one body: exit 1 naming the file.
    let verify_bin = evidence_tests::binary("evidence-verify");
    if !verify_bin.exists() {
        eprintln!("evidence-verify not built: skipping the offline verification");
        return;
    }
    let verify = |path: &Path| {
        std::process::Command::new(&verify_bin)
            .arg(path)
            .args(["--server-key", &server_key])
            .output()
            .expect("run evidence-verify")
    };
    let ok = verify(&out);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut tampered = bundle.clone();
    let target = entry_body_path(
        all.iter()
            .find(|e| e.kind == EntryKind::Full)
            .unwrap()
            .log_index,
    );
    tampered.files.get_mut(&target).unwrap()[10] ^= 1;
    let bad = tmp.path().join("tampered.tar");
    std::fs::write(&bad, tampered.to_archive().unwrap()).unwrap();
    let failed = verify(&bad);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&failed.stdout),
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(failed.status.code(), Some(1), "{said}");
    assert!(said.contains(&target), "names {target}: {said}");
}
