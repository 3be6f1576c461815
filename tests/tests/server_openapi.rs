//! The OpenAPI document against the real server: schemathesis generates requests from
//! `/v1/openapi.json` (an admin token in every request, a host enrolled and reporting) and
//! checks every answer: no 5xx, every status and content type documented, every body valid
//! against its schema.

mod server_common;

use std::process::Command;

use evidence_loadgen::client::{sample_facts, SimHost};
use evidence_protocol::ReportKind;

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    if !evidence_tests::require("schemathesis_against_openapi", false, &["schemathesis"]) {
        return;
    }
    let (_tmp, dir) = server_common::temp_dir();
    let server = server_common::start(&dir, None, &[]);
    let rt = server_common::runtime();
    rt.block_on(async {
        let secret = server.api.create_secret(&server.admin).await.unwrap();
        let mut host = SimHost::enroll(&server.api, &secret, "openapi-host")
            .await
            .unwrap();
        let report = host.next_report(ReportKind::Full {
            facts: sample_facts("openapi-host"),
        });
        assert_eq!(server.api.submit(&report).await.unwrap().0, 200);
    });
    let output = Command::new("schemathesis")
        .args(["run", &format!("{}/v1/openapi.json", server.base)])
        .args(["--header", &format!("Authorization: Bearer {}", server.admin)])
        .args(["--tls-verify", "false"])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "25", "--generation-deterministic"])
        .args(["--request-timeout", "10"])
        .env("NO_COLOR", "1")
        // Its cache of found failures goes to the scratch directory, not the source tree.
        .current_dir(&dir)
        .output()
        .expect("run schemathesis");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}"
    );
    assert!(
        report.contains("passed"),
        "schemathesis ran no operation:\n{report}"
    );
}
