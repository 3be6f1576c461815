//! The agent's TLS configuration: it talks only to the server it enrolled with.
//!
//! Two ways to recognise the server, chosen at `enroll` and stored in the enrollment state:
//! * a SHA-256 fingerprint of the server's end-entity certificate (DER), compared in constant
//!   time; the certificate chain and host name are not consulted, only that exact certificate
//!   is accepted (self-signed servers, as `evidence-server serve` makes on first start);
//! * a CA certificate (PEM): normal WebPKI validation against that CA alone, host name included,
//!   never the system trust store.
//!
//! In both cases the handshake signatures are verified with ring's algorithms: a server must
//! hold the private key of the pinned certificate. ring is the only crypto provider.

use std::sync::Arc;

use anyhow::Context;
use evidence_protocol::pinning::PinnedCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;

use crate::state::Pin;

/// Installs ring as the process's rustls provider (idempotent).
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Normalises a fingerprint as users paste it (`AB:CD:...`, `sha256:abcd...`, spaces) into 64
/// lowercase hex characters.
pub fn parse_fingerprint(text: &str) -> anyhow::Result<String> {
    Ok(evidence_protocol::pinning::parse_fingerprint(text)?.to_hex())
}

/// The rustls client configuration for `pin`.
pub fn client_config(pin: &Pin) -> anyhow::Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let config = match pin {
        Pin::Fingerprint(hex) => {
            let fingerprint = evidence_protocol::pinning::parse_fingerprint(hex)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedCert::new(fingerprint)))
                .with_no_client_auth()
        }
        Pin::CaPem(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots
                    .add(cert.context("CA file: bad PEM")?)
                    .context("CA file: not a usable CA certificate")?;
            }
            anyhow::ensure!(!roots.is_empty(), "CA file holds no certificate");
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};

    #[test]
    fn fingerprints_are_stored_as_lowercase_hex() {
        let hex = "ab".repeat(32);
        assert_eq!(parse_fingerprint(&vec!["AB"; 32].join(":")).unwrap(), hex);
        assert!(parse_fingerprint("abcd").is_err());
    }

    #[test]
    fn the_pinned_verifier_accepts_only_the_certificate_with_that_digest() {
        let cert = CertificateDer::from(b"pretend DER".to_vec());
        let other = CertificateDer::from(b"another DER".to_vec());
        let verifier = PinnedCert::new(evidence_protocol::Digest::of(cert.as_ref()));
        let name = ServerName::try_from("localhost").unwrap();
        let now = UnixTime::now();
        assert!(verifier
            .verify_server_cert(&cert, &[], &name, &[], now)
            .is_ok());
        let err = verifier
            .verify_server_cert(&other, &[], &name, &[], now)
            .unwrap_err();
        assert!(err.to_string().contains("not the pinned one"), "{err}");
    }

    #[test]
    fn a_ca_pin_without_a_certificate_is_refused() {
        assert!(client_config(&Pin::CaPem("not pem".into())).is_err());
        assert!(client_config(&Pin::Fingerprint("ab".repeat(32))).is_ok());
    }
}
