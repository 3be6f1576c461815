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
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::state::Pin;

/// Installs ring as the process's rustls provider (idempotent).
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Normalises a fingerprint as users paste it (`AB:CD:...`, `sha256:abcd...`, spaces) into 64
/// lowercase hex characters.
pub fn parse_fingerprint(text: &str) -> anyhow::Result<String> {
    let text = text.trim();
    let text = text
        .strip_prefix("sha256:")
        .or_else(|| text.strip_prefix("SHA256:"))
        .or_else(|| text.strip_prefix("sha256="))
        .or_else(|| text.strip_prefix("SHA256="))
        .unwrap_or(text);
    let hex: String = text
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    anyhow::ensure!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "a server fingerprint is the SHA-256 of its certificate: 64 hex digits (colons allowed), got {text:?}"
    );
    Ok(hex)
}

/// SHA-256 of a DER certificate, lowercase hex.
#[cfg(test)]
fn fingerprint_of(der: &[u8]) -> String {
    evidence_protocol::Digest::of(der).to_hex()
}

/// The rustls client configuration for `pin`.
pub fn client_config(pin: &Pin) -> anyhow::Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let config = match pin {
        Pin::Fingerprint(hex) => {
            let fingerprint = decode_hex32(&parse_fingerprint(hex)?)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedCert {
                    fingerprint,
                    provider,
                }))
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

fn decode_hex32(hex: &str) -> anyhow::Result<[u8; 32]> {
    let mut out = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(chunk)?;
        out[i] = u8::from_str_radix(pair, 16)?;
    }
    Ok(out)
}

/// Accepts exactly one certificate, by the SHA-256 of its DER encoding.
#[derive(Debug)]
struct PinnedCert {
    fingerprint: [u8; 32],
    provider: Arc<CryptoProvider>,
}

/// Equal-length comparison whose time does not depend on where the bytes differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = evidence_protocol::Digest::of(end_entity.as_ref());
        if constant_time_eq(seen.as_bytes(), &self.fingerprint) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "server certificate fingerprint {} is not the pinned one",
                seen.to_hex()
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_accepted_in_the_usual_spellings() {
        let hex = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&hex).unwrap(), hex);
        assert_eq!(parse_fingerprint(&colons).unwrap(), hex);
        assert_eq!(parse_fingerprint(&format!("sha256:{hex}")).unwrap(), hex);
        assert!(parse_fingerprint("abcd").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn the_pinned_verifier_accepts_only_the_certificate_with_that_digest() {
        let cert = CertificateDer::from(b"pretend DER".to_vec());
        let other = CertificateDer::from(b"another DER".to_vec());
        let verifier = PinnedCert {
            fingerprint: decode_hex32(&fingerprint_of(cert.as_ref())).unwrap(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        };
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
