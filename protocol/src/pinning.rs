//! Certificate pinning for clients of `evidence-server` (the agent, the load generator, the
//! tests): a rustls verifier that accepts exactly the server certificate whose SHA-256
//! fingerprint it was given (as `evidence-server serve` prints it), compared in constant time.
//! The chain and host name are not consulted; the handshake signatures still are, so the server
//! must hold the pinned certificate's private key. ring is the only crypto provider.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::Digest;

/// A fingerprint that is not 64 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("a server fingerprint is the SHA-256 of its certificate: 64 hex digits (colons allowed), got {0:?}")]
pub struct FingerprintError(pub String);

/// Reads a fingerprint as users paste it (`AB:CD:...`, `sha256:abcd...`, spaces).
pub fn parse_fingerprint(text: &str) -> Result<Digest, FingerprintError> {
    let trimmed = text.trim();
    let bare = ["sha256:", "SHA256:", "sha256=", "SHA256="]
        .iter()
        .find_map(|prefix| trimmed.strip_prefix(prefix))
        .unwrap_or(trimmed);
    let hex: String = bare
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    hex.parse()
        .map_err(|_| FingerprintError(trimmed.to_string()))
}

/// Accepts exactly one certificate, by the SHA-256 of its DER encoding.
#[derive(Debug)]
pub struct PinnedCert {
    fingerprint: Digest,
    provider: Arc<CryptoProvider>,
}

impl PinnedCert {
    pub fn new(fingerprint: Digest) -> Self {
        Self {
            fingerprint,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }

    /// The provider the verifier checks signatures with (ring), for building the client config.
    pub fn provider(&self) -> Arc<CryptoProvider> {
        self.provider.clone()
    }
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
        let seen = Digest::of(end_entity.as_ref());
        if constant_time_eq(seen.as_bytes(), self.fingerprint.as_bytes()) {
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
        for text in [
            hex.clone(),
            colons,
            format!("sha256:{hex}"),
            format!(" {hex}\n"),
        ] {
            assert_eq!(parse_fingerprint(&text).unwrap().to_hex(), hex, "{text}");
        }
        assert!(parse_fingerprint("abcd").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
    }
}
