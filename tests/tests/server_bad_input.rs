//! Bad input against the real server over TLS: every malformed, forged, replayed, oversized or
//! unauthorised request gets the right 4xx status with a clear message, and the store is
//! byte-for-byte unchanged afterwards (evidence log head, hosts, secrets, tokens, policy).
//!
//! Needs the binary: `cargo build -p evidence-server && cargo test -p evidence-tests --test server_bad_input`.

mod server_common;

use evidence_loadgen::client::{sample_facts, SimHost};
use evidence_protocol::api::HostIdentity;
use evidence_protocol::{ReportKind, SignedReport, SigningKey};
use serde_json::{json, Value};
use server_common::{runtime, start, temp_dir, Server};

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    token: Option<String>,
    content_type: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn report_case(name: &'static str, r: &SignedReport, status: u16, code: &'static str) -> Case {
    Case {
        name,
        method: "POST",
        path: "/v1/reports".into(),
        token: None,
        content_type: Some("application/json"),
        headers: vec![
            ("x-evidence-signature", r.signature.clone()),
            ("x-evidence-key-id", r.key_id.clone()),
        ],
        body: r.bytes.clone(),
        status,
        code,
    }
}

/// Signs arbitrary bytes as `host` would.
fn signed_bytes(host: &SimHost, bytes: Vec<u8>) -> SignedReport {
    SignedReport {
        signature: host.key.sign_b64(&bytes),
        key_id: host.key.key_id(),
        bytes,
    }
}

/// A report of `host` with the next sequence number, edited as JSON by `edit`, then signed.
fn edited(host: &SimHost, edit: impl FnOnce(&mut Value)) -> SignedReport {
    let report = host.build_report(ReportKind::Full {
        facts: sample_facts("bad-input"),
    });
    let mut v = serde_json::to_value(&report).unwrap();
    edit(&mut v);
    signed_bytes(host, serde_json::to_vec(&v).unwrap())
}

async fn run(server: &Server, case: Case) {
    let before = server.store_fingerprint().await;
    let mut req = server
        .api
        .http
        .request(
            case.method.parse().unwrap(),
            format!("{}{}", server.base, case.path),
        )
        .body(case.body);
    if let Some(t) = &case.token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = case.content_type {
        req = req.header("content-type", ct);
    }
    for (k, v) in &case.headers {
        req = req.header(*k, v);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: request failed: {e}", case.name));
    let status = resp.status().as_u16();
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or(Value::Null);
    assert_eq!(status, case.status, "{}: status (body {body})", case.name);
    assert_eq!(
        body["error"], case.code,
        "{}: error code (body {body})",
        case.name
    );
    let message = body["message"].as_str().unwrap_or("");
    assert!(
        message.len() > 10,
        "{}: a clear message, got {body}",
        case.name
    );
    let after = server.store_fingerprint().await;
    assert_eq!(before, after, "{}: the store changed", case.name);
}

#[test]
fn every_bad_request_gets_its_4xx_and_leaves_the_store_unchanged() {
    let (_tmp, data) = temp_dir();
    let server = start(&data, None, &["--max-body-bytes", "262144"]);
    runtime().block_on(async {
        let admin = server.admin.clone();
        let secret = server.api.create_secret(&admin).await.unwrap();
        let mut a = SimHost::enroll(&server.api, &secret, "host-a").await.unwrap();
        let b = SimHost::enroll(&server.api, &secret, "host-b").await.unwrap();
        let mut c = SimHost::enroll(&server.api, &secret, "host-c").await.unwrap();
        // One accepted report each for a and c, then c is revoked.
        for h in [&mut a, &mut c] {
            let r = h.next_report(ReportKind::Full { facts: sample_facts(&h.hostname) });
            let (status, body) = server.api.submit(&r).await.unwrap();
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            h.check_receipt(&r, &body).unwrap();
        }
        let (s, _) = server.send("POST", &format!("/v1/admin/hosts/{}/revoke", c.host_id), Some(&admin), None, vec![]).await;
        assert_eq!(s, 204);
        let (s, reader) = server.send("POST", "/v1/admin/tokens", Some(&admin), Some("application/json"), br#"{"role":"reader","name":"r"}"#.to_vec()).await;
        assert_eq!(s, 201);
        let reader = reader["token"].as_str().unwrap().to_string();
        let stranger = SimHost {
            key: SigningKey::generate().unwrap(),
            host_id: a.host_id.clone(),
            server_key: a.server_key,
            next_seq: 5,
            prev: None,
            hostname: "stranger".into(),
            witnessed: None,
        };
        let long = "x".repeat(100_000);
        let sql = "'; DROP TABLE evidence_log; --";

        let good = edited(&a, |_| {});
        let mut cases = vec![
            report_case("malformed JSON", &signed_bytes(&a, br#"{"host_id": "#.to_vec()), 400, "malformed_json"),
            Case { content_type: Some("text/plain"), ..report_case("wrong content type", &good, 415, "unsupported_media_type") },
            report_case("oversized body", &signed_bytes(&a, vec![b' '; 300_000]), 413, "body_too_large"),
            report_case("body not UTF-8", &signed_bytes(&a, vec![0xff, 0xfe, 0x7b, 0x7d]), 400, "bad_encoding"),
            Case { headers: vec![("x-evidence-signature", "!!not base64!!".into()), ("x-evidence-key-id", good.key_id.clone())], ..report_case("signature not base64", &good, 400, "bad_encoding") },
            Case { headers: vec![("x-evidence-key-id", good.key_id.clone())], ..report_case("signature missing", &good, 401, "missing_signature") },
            Case { headers: vec![("x-evidence-signature", a.key.sign_b64(b"other bytes")), ("x-evidence-key-id", good.key_id.clone())], ..report_case("signature does not match", &good, 401, "bad_signature") },
            Case { headers: vec![("x-evidence-signature", good.signature.clone()), ("x-evidence-key-id", good.key_id.clone()), ("x-evidence-witnessed", "-1".into())], ..report_case("witnessed size not an integer", &good, 422, "invalid_field") },
            Case { headers: vec![("x-evidence-signature", good.signature.clone()), ("x-evidence-key-id", good.key_id.clone()), ("x-evidence-witnessed", "99999999999999999999".into())], ..report_case("witnessed size beyond u64", &good, 422, "invalid_field") },
            report_case("report of host a signed by host b's key", &{
                let r = edited(&a, |_| {});
                SignedReport { signature: b.key.sign_b64(&r.bytes), key_id: b.key.key_id(), bytes: r.bytes }
            }, 403, "identity_mismatch"),
            report_case("host a's key id, host b's signature", &{
                let r = edited(&a, |_| {});
                SignedReport { signature: b.key.sign_b64(&r.bytes), ..r }
            }, 401, "bad_signature"),
            report_case("unknown host (key never enrolled)", &edited(&stranger, |_| {}), 401, "unknown_key"),
            report_case("revoked host", &edited(&c, |_| {}), 403, "host_revoked"),
            report_case("replayed sequence", &edited(&a, |v| v["seq"] = json!(1)), 409, "replayed_sequence"),
            report_case("sequence zero", &edited(&a, |v| v["seq"] = json!(0)), 422, "invalid_field"),
            report_case("timestamp far in the future", &edited(&a, |v| v["collected_at"] = json!("2099-01-01T00:00:00Z")), 422, "clock_skew"),
            report_case("timestamp not RFC 3339", &edited(&a, |v| v["collected_at"] = json!("yesterday")), 422, "schema_mismatch"),
            report_case("missing field seq", &edited(&a, |v| { v.as_object_mut().unwrap().remove("seq"); }), 422, "schema_mismatch"),
            report_case("missing field kind", &edited(&a, |v| { v.as_object_mut().unwrap().remove("kind"); }), 422, "schema_mismatch"),
            report_case("unknown top-level field", &edited(&a, |v| v["extra"] = json!(1)), 422, "schema_mismatch"),
            // An unknown collector is accepted and kept (version tolerance, server_flow); an
            // unknown field inside a known collector's facts is not.
            report_case("unknown field inside a known collector's facts", &edited(&a, |v| v["kind"]["full"]["facts"]["host"]["observed"]["antivirus"] = json!({})), 422, "schema_mismatch"),
            report_case("unknown report kind", &edited(&a, |v| v["kind"] = json!({"partial": {}})), 422, "schema_mismatch"),
            report_case("negative sequence", &edited(&a, |v| v["seq"] = json!(-1)), 422, "schema_mismatch"),
            report_case("prev_digest not hex", &edited(&a, |v| v["prev_digest"] = json!("zz")), 422, "schema_mismatch"),
            report_case("attestation of a digest that is not the last full report", &edited(&a, |v| v["kind"] = json!({"attestation": {"still_holds": "0".repeat(64)}})), 409, "attestation_mismatch"),
            report_case("SQL in host_id", &edited(&a, |v| v["host_id"] = json!(sql)), 403, "identity_mismatch"),
            report_case("SQL in key_id", &edited(&a, |v| v["key_id"] = json!(sql)), 403, "identity_mismatch"),
            report_case("long host_id", &edited(&a, |v| v["host_id"] = json!(long)), 403, "identity_mismatch"),
            report_case("long agent_version", &edited(&a, |v| v["agent_version"] = json!(long)), 422, "invalid_field"),
            report_case("long collector version", &edited(&a, |v| v["collector_versions"] = json!({"firewall": long})), 422, "invalid_field"),
            report_case("long collector name", &edited(&a, |v| v["collector_versions"] = json!({long.clone(): "1"})), 422, "invalid_field"),
            Case { headers: vec![("x-evidence-signature", good.signature.clone()), ("x-evidence-key-id", sql.into())], ..report_case("SQL in key id header", &good, 401, "unknown_key") },
            // Numbers the store could not keep: refused, never wrapped to negatives (2^64 - 1
            // would lock the host out for ever).
            report_case("sequence 2^63", &edited(&a, |v| v["seq"] = json!(1u64 << 63)), 422, "invalid_field"),
            report_case("sequence 2^64 - 1", &edited(&a, |v| v["seq"] = json!(u64::MAX)), 422, "invalid_field"),
            report_case("dropped_reports 2^63", &edited(&a, |v| v["dropped_reports"] = json!(1u64 << 63)), 422, "invalid_field"),
            report_case("collected long before the host enrolled", &edited(&a, |v| v["collected_at"] = json!("2001-01-01T00:00:00Z")), 422, "collected_before_enrollment"),
        ];
        // Enrollment.
        let enroll_case = |name: &'static str, key: &SigningKey, body: Value, status: u16, code: &'static str| {
            let bytes = serde_json::to_vec(&body).unwrap();
            Case {
                name,
                method: "POST",
                path: "/v1/enroll".into(),
                token: None,
                content_type: Some("application/json"),
                headers: vec![("x-evidence-signature", key.sign_b64(&bytes))],
                body: bytes,
                status,
                code,
            }
        };
        let k = SigningKey::generate().unwrap();
        let req = |secret: &str, machine: &str, host: &str| {
            json!({"secret": secret, "public_key": k.public_key_b64(), "agent_version": "1",
                   "identity": serde_json::to_value(HostIdentity { machine_id: machine.into(), hostname: host.into(), hardware_serial: None }).unwrap()})
        };
        cases.extend([
            enroll_case("enroll with a wrong secret", &k, req("ens_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "m-new", "new"), 403, "bad_secret"),
            enroll_case("enroll with SQL as secret", &k, req(sql, "m-new", "new"), 403, "bad_secret"),
            enroll_case("enroll with SQL in machine id (wrong secret)", &k, req(sql, sql, sql), 403, "bad_secret"),
            enroll_case("enroll with a long hostname", &k, req(&secret, "m-new", &long), 422, "invalid_field"),
            enroll_case("enroll with a long machine id", &k, req(&secret, &long, "new"), 422, "invalid_field"),
            enroll_case("enroll signed by another key", &SigningKey::generate().unwrap(), req(&secret, "m-new", "new"), 401, "bad_signature"),
            enroll_case("enroll with an unknown field", &k, { let mut v = req(&secret, "m-new", "new"); v["extra"] = json!(1); v }, 422, "schema_mismatch"),
            enroll_case("enroll with a missing field", &k, { let mut v = req(&secret, "m-new", "new"); v.as_object_mut().unwrap().remove("identity"); v }, 422, "schema_mismatch"),
            enroll_case("enroll with a public key of the wrong length", &k, { let mut v = req(&secret, "m-new", "new"); v["public_key"] = json!("AAAA"); v }, 422, "invalid_field"),
        ]);
        // The eight small-order points (one constant signature would verify every report under
        // them) and a non-canonical encoding: refused before any signature is looked at.
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        let weak: Vec<[u8; 32]> = evidence_protocol::signing::small_order_points().into_iter().chain([p]).collect();
        assert_eq!(weak.len(), 9);
        for key in weak {
            let mut v = req(&secret, "m-weak", "weak");
            v["public_key"] = json!(evidence_protocol::signing::b64(&key));
            let bytes = serde_json::to_vec(&v).unwrap();
            let mut identity_signature = [0u8; 64];
            identity_signature[0] = 1; // R = the identity point, S = 0
            cases.push(Case {
                headers: vec![("x-evidence-signature", evidence_protocol::signing::b64(&identity_signature))],
                body: bytes,
                ..enroll_case("enroll with a small-order or non-canonical public key", &k, json!({}), 422, "weak_public_key")
            });
        }
        // Revoked host enrolling again (same machine id as host-c would need its machine id: use the API).
        let hosts = server.get("/v1/hosts", Some(&admin)).await.1;
        let c_machine = hosts["hosts"].as_array().unwrap().iter().find(|h| h["host_id"] == c.host_id.as_str()).unwrap()["machine_id"].as_str().unwrap().to_string();
        let fresh = server.api.create_secret(&admin).await.unwrap();
        cases.push(enroll_case("revoked host enrolling again", &k, req(&fresh, &c_machine, "host-c"), 403, "host_revoked"));
        // Tokens and roles.
        let admin_call = |name: &'static str, method: &'static str, path: &str, token: Option<&str>, body: &[u8], status: u16, code: &'static str| Case {
            name,
            method,
            path: path.into(),
            token: token.map(String::from),
            content_type: Some("application/json"),
            headers: vec![],
            body: body.to_vec(),
            status,
            code,
        };
        let secret_body = br#"{"expires_in_secs":60}"#;
        let wrong = "evt_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        cases.extend([
            admin_call("create secret without a token", "POST", "/v1/admin/enrollment-secrets", None, secret_body, 401, "missing_token"),
            admin_call("create secret with a wrong token", "POST", "/v1/admin/enrollment-secrets", Some(wrong), secret_body, 401, "bad_token"),
            admin_call("create secret with SQL as token", "POST", "/v1/admin/enrollment-secrets", Some(sql), secret_body, 401, "bad_token"),
            admin_call("create secret with a reader token", "POST", "/v1/admin/enrollment-secrets", Some(&reader), secret_body, 403, "forbidden"),
            admin_call("create token with a reader token", "POST", "/v1/admin/tokens", Some(&reader), br#"{"role":"admin"}"#, 403, "forbidden"),
            admin_call("put policy with a reader token", "PUT", "/v1/admin/policy", Some(&reader), b"{}", 403, "forbidden"),
            admin_call("revoke host with a reader token", "POST", &format!("/v1/admin/hosts/{}/revoke", a.host_id), Some(&reader), b"", 403, "forbidden"),
            admin_call("list tokens with a reader token", "GET", "/v1/admin/tokens", Some(&reader), b"", 403, "forbidden"),
            admin_call("read hosts without a token", "GET", "/v1/hosts", None, b"", 401, "missing_token"),
            admin_call("read snapshot with a wrong token", "GET", "/v1/snapshot", Some(wrong), b"", 401, "bad_token"),
            admin_call("read metrics without a token", "GET", "/metrics", None, b"", 401, "missing_token"),
            admin_call("create token with an unknown role", "POST", "/v1/admin/tokens", Some(&admin), br#"{"role":"root"}"#, 422, "invalid_field"),
            admin_call("create token with an unknown field", "POST", "/v1/admin/tokens", Some(&admin), br#"{"role":"reader","x":1}"#, 422, "schema_mismatch"),
            admin_call("create secret with a long note", "POST", "/v1/admin/enrollment-secrets", Some(&admin), format!("{{\"note\":\"{long}\"}}").as_bytes(), 422, "invalid_field"),
            admin_call("policy with an unknown check threshold", "PUT", "/v1/admin/policy", Some(&admin), br#"{"checks":{"firewall":{"no_such_threshold":1}}}"#, 422, "invalid_policy"),
            admin_call("policy with an unknown collector", "PUT", "/v1/admin/policy", Some(&admin), br#"{"checks":{"antivirus":{}}}"#, 422, "invalid_policy"),
            admin_call("policy with an unknown control", "PUT", "/v1/admin/policy", Some(&admin), br#"{"applicability":{"99.9":{"applicable":false,"justification":"x"}}}"#, 422, "invalid_policy"),
            admin_call("policy with SQL as control id", "PUT", "/v1/admin/policy", Some(&admin), format!("{{\"applicability\":{{\"{}\":{{\"applicable\":false,\"justification\":\"x\"}}}}}}", sql.replace('"', "")).as_bytes(), 422, "invalid_policy"),
            admin_call("policy without justification", "PUT", "/v1/admin/policy", Some(&admin), br#"{"applicability":{"8.20":{"applicable":false,"justification":""}}}"#, 422, "invalid_policy"),
            admin_call("policy malformed", "PUT", "/v1/admin/policy", Some(&admin), b"{\"checks\":", 400, "malformed_json"),
            admin_call("policy wrong content type", "PUT", "/v1/admin/policy", Some(&admin), b"{}", 415, "unsupported_media_type"),
            admin_call("SQL in host path", "GET", "/v1/hosts/'%20OR%201=1;--", Some(&admin), b"", 404, "not_found"),
            admin_call("SQL in control path", "GET", "/v1/controls/8.1'%20OR%20'1'='1", Some(&admin), b"", 404, "not_found"),
            admin_call("revoke an unknown host", "POST", "/v1/admin/hosts/'%3B%20DROP%20TABLE%20hosts/revoke", Some(&admin), b"", 404, "not_found"),
            admin_call("snapshot at a bad date", "GET", "/v1/snapshot?at=';DROP", Some(&admin), b"", 400, "bad_time"),
            admin_call("revoke the last admin token", "DELETE", &format!("/v1/admin/tokens/{}", admin.split('_').nth(1).unwrap()), Some(&admin), b"", 409, "last_admin_token"),
            admin_call("a re-key secret for an unknown host", "POST", "/v1/admin/enrollment-secrets", Some(&admin), br#"{"host_id":"h_nobody"}"#, 404, "not_found"),
        ]);
        // The wrong-content-type policy case needs another content type.
        for case in cases.iter_mut() {
            if case.name == "policy wrong content type" {
                case.content_type = Some("application/x-www-form-urlencoded");
            }
        }
        let n = cases.len();
        for case in cases {
            run(&server, case).await;
        }
        eprintln!("{n} bad-input cases refused with the store unchanged");

        // SQL metacharacters in text fields that ARE valid are stored verbatim and read back intact.
        let r = edited(&a, |v| {
            v["agent_version"] = json!(sql);
            v["collector_versions"] = json!({"firewall": "1.0'\"; --"});
            v["kind"]["full"]["facts"]["host"]["observed"]["hostname"] = json!("x'); DELETE FROM hosts; --");
        });
        let (status, body) = server.api.submit(&r).await.unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        a.check_receipt(&r, &body).unwrap();
        let detail = server.get(&format!("/v1/hosts/{}", a.host_id), Some(&reader)).await.1;
        assert_eq!(detail["host"]["agent_version"], sql);
        assert_eq!(detail["facts"]["host"]["observed"]["hostname"], "x'); DELETE FROM hosts; --");
        let idx = detail["history"]["reports"][0]["log_index"].as_u64().unwrap();
        let raw = server.api.http.get(format!("{}/v1/reports/{idx}", server.base)).bearer_auth(&reader).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(raw.as_ref(), r.bytes.as_slice(), "stored verbatim");
        let log = server.get("/v1/admin/log/verify", Some(&admin)).await.1;
        assert_eq!(log["ok"], true);
        // Three reports, the three hosts' enrollments and c's revocation (key events).
        assert_eq!(log["entries"], 7);
    });
}
