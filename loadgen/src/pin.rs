//! An HTTPS client pinned to one server certificate (the verifier is
//! `evidence_protocol::pinning`, shared with the agent). Used by the load generator and tests.

use std::sync::Arc;

use evidence_protocol::pinning::{parse_fingerprint, PinnedCert};

/// A reqwest client that trusts only the pinned certificate (keep-alive, HTTP/1.1 or 2).
pub fn client(fingerprint_hex: &str) -> anyhow::Result<reqwest::Client> {
    let fingerprint = parse_fingerprint(fingerprint_hex)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCert::new(fingerprint)))
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .pool_max_idle_per_host(1024)
        .build()
        .map_err(Into::into)
}
