//! TLS for the API: the operator's PEM certificate and key, or a self-signed certificate
//! generated on first start (rcgen, ring) and kept in the data directory. rustls uses ring only.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

/// How long a generated self-signed certificate is valid.
pub const GENERATED_VALIDITY_DAYS: i64 = 730;
/// Warn in the log when the certificate expires within this many days.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The loaded TLS configuration.
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    /// The leaf certificate's SHA-256 fingerprint (hex, for pinning).
    pub fingerprint: String,
    /// The leaf certificate's expiry, seconds since the Unix epoch.
    pub not_after: i64,
}

/// Loads the operator's PEM pair, or the generated one in the data directory (generating it
/// when `generate_missing`: the data directory holds no store yet).
pub fn load(config: &Config, generate_missing: bool) -> anyhow::Result<Tls> {
    let (cert_path, key_path) = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => {
            let c = config.data_dir.join(crate::datadir::TLS_CERT);
            let k = config.data_dir.join(crate::datadir::TLS_KEY);
            if generate_missing && (!c.exists() || !k.exists()) {
                generate(&c, &k, &config.tls_names)?;
            }
            (c, k)
        }
        _ => anyhow::bail!("give both tls_cert and tls_key, or neither"),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("reading {}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", cert_path.display()))?;
    let leaf = certs
        .first()
        .context("certificate file has no certificate")?;
    let fingerprint = evidence_protocol::Digest::of(leaf).to_hex();
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| anyhow::anyhow!("parsing {}: {e}", cert_path.display()))?;
    let not_after = parsed.validity().not_after.timestamp();
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let mut tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(tls),
        fingerprint,
        not_after,
    })
}

/// Logs a warning when the certificate expires within [`EXPIRY_WARNING_DAYS`] (or has).
pub fn warn_if_expiring(not_after: i64, now: i64) {
    let days = (not_after - now).div_euclid(86_400);
    if days < 0 {
        tracing::error!(
            not_after = crate::time::fmt(not_after * 1_000_000),
            "the TLS certificate has EXPIRED: agents cannot connect; install a new one"
        );
    } else if days < EXPIRY_WARNING_DAYS {
        tracing::warn!(
            not_after = crate::time::fmt(not_after * 1_000_000),
            days,
            "the TLS certificate expires soon: install a new one (agents pin its fingerprint, \
             so re-enroll or re-pin them)"
        );
    }
}

fn generate(cert: &Path, key: &Path, extra: &[String]) -> anyhow::Result<()> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        if !h.trim().is_empty() {
            names.push(h.trim().to_string());
        }
    }
    names.extend(extra.iter().cloned());
    names.sort();
    names.dedup();
    let mut params = rcgen::CertificateParams::new(names)?;
    let now = time::OffsetDateTime::now_utc();
    // A day of slack for hosts whose clocks run behind.
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(GENERATED_VALIDITY_DAYS);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "evidence-server");
    let key_pair = rcgen::KeyPair::generate()?;
    let certificate = params.self_signed(&key_pair)?;
    crate::serve::write_private(key, key_pair.serialize_pem().as_bytes())?;
    std::fs::write(cert, certificate.pem())?;
    Ok(())
}
