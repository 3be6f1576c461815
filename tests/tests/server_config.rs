//! Start-up configuration of the real server: the operator's PEM certificate and key instead of
//! the generated one, settings from a TOML file (flags still override it), and refusal of a file
//! with an unknown key.
//!
//! Needs the binary: `cargo build -p evidence-server && cargo test -p evidence-tests --test server_config`.

mod server_common;

use std::process::Command;

use server_common::{runtime, start, temp_dir};

#[test]
fn a_given_pem_certificate_and_a_config_file_are_used() {
    let (tmp, first_dir) = temp_dir();
    // A first start generates a self-signed certificate: reuse it as "the operator's" PEM pair.
    let first = start(&first_dir, None, &[]);
    let generated_fingerprint = first.fingerprint.clone();
    drop(first);
    let pem_dir = tmp.path().join("pem");
    std::fs::create_dir_all(&pem_dir).unwrap();
    std::fs::copy(first_dir.join("tls-cert.pem"), pem_dir.join("cert.pem")).unwrap();
    std::fs::copy(first_dir.join("tls-key.pem"), pem_dir.join("key.pem")).unwrap();
    let config = tmp.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:1\"\nreport_interval_secs = 120\nstale_after_intervals = 5\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            pem_dir.join("cert.pem").display(),
            pem_dir.join("key.pem").display()
        ),
    )
    .unwrap();
    let second_dir = tmp.path().join("second");
    // `--listen` from start() overrides the file's unusable port.
    let server = start(&second_dir, None, &["--config", config.to_str().unwrap()]);
    assert_eq!(
        server.fingerprint, generated_fingerprint,
        "the given certificate is served"
    );
    assert!(
        !second_dir.join("tls-cert.pem").exists(),
        "no certificate generated when one is given"
    );
    runtime().block_on(async {
        let secret = server.api.create_secret(&server.admin).await.unwrap();
        let key = evidence_protocol::SigningKey::generate().unwrap();
        let enrolled = server.api.enroll(&secret, &key, "m", "h").await.unwrap();
        assert_eq!(
            (
                enrolled.report_interval_secs,
                enrolled.stale_after_intervals
            ),
            (120, 5),
            "settings from the file"
        );
    });
}

#[test]
fn a_config_file_with_an_unknown_key_is_refused_with_its_name() {
    let (tmp, data) = temp_dir();
    let config = tmp.path().join("bad.toml");
    std::fs::write(&config, "report_intervall_secs = 60\n").unwrap();
    let out = Command::new(evidence_tests::binary("evidence-server"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("report_intervall_secs"), "{err}");
}
