//! `evidence-server serve`: opens (or creates) the data directory, store, server key and TLS
//! certificate, prints what an operator needs once (admin token on first start, certificate
//! fingerprint, address), starts the ingest writer and serves the API over HTTPS.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use evidence_protocol::SigningKey;

use crate::config::Config;
use crate::policy::OrgPolicy;
use crate::state::AppState;
use crate::status::{CheckIndex, Fleet};
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, TokenRecord};

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn server_key(data_dir: &Path) -> anyhow::Result<SigningKey> {
    let path = data_dir.join("server-key.pk8");
    if path.exists() {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        return SigningKey::from_pkcs8(&bytes)
            .with_context(|| format!("{} is not an Ed25519 key", path.display()));
    }
    let key = SigningKey::generate()?;
    write_private(&path, key.pkcs8())?;
    Ok(key)
}

/// Opens the store in `data_dir`.
pub fn open_store(data_dir: &Path) -> anyhow::Result<SqliteStore> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    Ok(SqliteStore::open(&data_dir.join("evidence.db"))?)
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store: Arc<dyn Store> = Arc::new(open_store(&config.data_dir)?);
    let server_key = server_key(&config.data_dir)?;
    let (tls, fingerprint) = crate::tls::load(&config)?;
    let mut out = std::io::stdout().lock();
    if store.tokens()?.is_empty() {
        let cred = crate::auth::generate("evt");
        store.create_token(&TokenRecord {
            id: cred.id,
            hash: cred.hash,
            role: "admin".into(),
            name: "initial admin".into(),
            created_at: crate::time::now_us(),
            revoked_at: None,
        })?;
        writeln!(
            out,
            "admin token (shown once, store it now): {}",
            cred.value
        )?;
    }
    let policy = match store.policy_at(i64::MAX)? {
        Some(json) => OrgPolicy::from_json(json.as_bytes()).context("stored policy")?,
        None => OrgPolicy::default(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16_384);
    let state = Arc::new(AppState {
        config: config.clone(),
        store,
        keys: RwLock::new(Default::default()),
        tokens: Default::default(),
        policy: RwLock::new((0, Arc::new(policy))),
        fleet: Fleet::default(),
        index: CheckIndex::new(),
        writer: tx,
        metrics: Default::default(),
        server_key,
    });
    state.reload_credentials()?;
    state.load_fleet()?;
    crate::writer::spawn(state.clone(), rx);
    writeln!(out, "tls certificate sha256 fingerprint: {fingerprint}")?;
    writeln!(
        out,
        "server receipt key: {} ({})",
        state.server_key.key_id(),
        state.server_key.public_key_b64()
    )?;
    out.flush()?;
    drop(out);

    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        if let Some(addr) = h.listening().await {
            println!("listening on https://{addr}");
        }
    });
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        h.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    let app = crate::api::router(state);
    axum_server::bind_rustls(
        config.listen,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )
    .handle(handle)
    .serve(app.into_make_service())
    .await?;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
