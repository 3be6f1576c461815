//! TLS for the API: the operator's PEM certificate and key, or a self-signed certificate
//! generated on first start (rcgen, ring) and kept in the data directory. rustls uses ring only.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

/// The TLS server configuration and the leaf certificate's SHA-256 fingerprint (hex, for pinning).
pub fn load(config: &Config) -> anyhow::Result<(Arc<rustls::ServerConfig>, String)> {
    let (cert_path, key_path) = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => {
            let c = config.data_dir.join("tls-cert.pem");
            let k = config.data_dir.join("tls-key.pem");
            if !c.exists() || !k.exists() {
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
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let mut tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(tls), fingerprint))
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
    let certified = rcgen::generate_simple_self_signed(names)?;
    std::fs::write(cert, certified.cert.pem())?;
    crate::serve::write_private(key, certified.signing_key.serialize_pem().as_bytes())?;
    Ok(())
}
