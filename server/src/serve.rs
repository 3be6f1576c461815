//! `evidence-server serve`: binds the listener first (a busy port loses nothing), then takes
//! the data directory (0700, locked: one server per directory), checks that a store holding
//! data has every key it needs (nothing is silently regenerated), opens or creates the store,
//! server key and TLS certificate, prints what an operator needs once (admin token on first
//! start, also saved 0600 in the data directory; certificate fingerprint; address), starts the
//! ingest writer and serves the API over HTTPS with explicit connection limits.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use evidence_protocol::SigningKey;

use crate::config::Config;
use crate::datadir::{DataDir, StoreState};
use crate::http::{HttpState, TransportLimits};
use crate::service::Services;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, TokenRecord};

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = crate::datadir::private_file(path)?;
    f.set_len(0)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn server_key(dir: &DataDir, state: StoreState) -> anyhow::Result<SigningKey> {
    let path = dir.file(crate::datadir::SERVER_KEY);
    if state == StoreState::Existing {
        return crate::datadir::existing_server_key(&dir.path);
    }
    let key = SigningKey::generate()?;
    write_private(&path, key.pkcs8())?;
    Ok(key)
}

/// Opens (creating, mode 0600) the store in a held data directory.
fn open_store(dir: &DataDir) -> anyhow::Result<SqliteStore> {
    let db = dir.file(crate::datadir::DATABASE);
    // Created 0600 before SQLite sees it: SQLite gives its WAL and -shm files the same mode.
    crate::datadir::private_file(&db).with_context(|| format!("creating {}", db.display()))?;
    SqliteStore::open(&db).with_context(|| format!("opening the store {}", db.display()))
}

/// Mints an admin token in `store` (first start, or `evidence-server admin-token`), recorded
/// in the audit trail with `actor`; returns the token to show once.
pub async fn mint_admin_token(
    store: &dyn Store,
    name: &str,
    actor: &str,
) -> anyhow::Result<String> {
    let cred = crate::auth::generate("evt");
    let now = crate::time::now_us();
    store
        .create_token(&TokenRecord {
            id: cred.id.clone(),
            hash: cred.hash,
            role: crate::auth::Role::Admin,
            name: name.into(),
            created_at: now,
            revoked_at: None,
        })
        .await?;
    crate::audit::change(
        store,
        None,
        "token_created",
        actor,
        &cred.id,
        &format!("role admin ({name})"),
    )
    .await?;
    Ok(cred.value)
}

/// Raises the open-file limit towards what `max_connections` needs; warns when it cannot.
fn raise_open_file_limit(config: &Config) {
    let wanted = config.max_connections as u64 + 256;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(got) if got < wanted => tracing::warn!(
            open_files = got,
            max_connections = config.max_connections,
            "the open-file limit is below max_connections: raise it (LimitNOFILE=) or lower \
             max_connections, or accepts will fail before the limit is reached"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("could not read or raise the open-file limit: {e}"),
    }
}

/// A data directory taken and checked, with its store, receipt key and TLS certificate.
pub struct Prepared {
    pub dir: DataDir,
    pub store: SqliteStore,
    pub server_key: SigningKey,
    pub tls: crate::tls::Tls,
}

/// Takes the data directory (0700, locked), checks it, and opens or creates the store, the
/// receipt key and the TLS certificate; tightens every state file to 0600.
pub fn prepare(config: &Config) -> anyhow::Result<Prepared> {
    let dir = DataDir::open(&config.data_dir)?;
    let store_state = dir.check(config.tls_cert.is_none())?;
    let store = open_store(&dir)?;
    let server_key = server_key(&dir, store_state)?;
    let tls = crate::tls::load(config, store_state == StoreState::New)?;
    dir.tighten()?;
    Ok(Prepared {
        dir,
        store,
        server_key,
        tls,
    })
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    config.validate().context("configuration")?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Bound before anything is created: a busy port stops the start with nothing changed.
    let listener = TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    raise_open_file_limit(&config);
    let Prepared {
        dir,
        store,
        server_key,
        tls,
    } = prepare(&config)?;
    let store: Arc<dyn Store> = Arc::new(store);
    let mut out = std::io::stdout().lock();
    if store.tokens().await?.is_empty() {
        let token =
            mint_admin_token(store.as_ref(), "initial admin", "server (first start)").await?;
        let path = dir.file(crate::datadir::ADMIN_TOKEN);
        write_private(&path, format!("{token}\n").as_bytes())?;
        writeln!(out, "admin token (shown once, store it now): {token}")?;
        writeln!(
            out,
            "admin token also saved in {} (mode 0600)",
            path.display()
        )?;
    }
    let metrics = Arc::new(crate::metrics::Metrics::default());
    metrics
        .tls_not_after
        .store(tls.not_after, std::sync::atomic::Ordering::Relaxed);
    let receipt_key = format!("{} ({})", server_key.key_id(), server_key.public_key_b64());
    let services = Services::start(config.clone(), store, server_key, metrics.clone())
        .await
        .context("loading the server's state from the store")?;
    let limits = Arc::new(TransportLimits::new(&config));
    writeln!(
        out,
        "tls certificate sha256 fingerprint: {}",
        tls.fingerprint
    )?;
    writeln!(
        out,
        "tls certificate valid until {}",
        crate::time::fmt(tls.not_after * 1_000_000)
    )?;
    writeln!(out, "server receipt key: {receipt_key}")?;
    out.flush()?;
    drop(out);
    let not_after = tls.not_after;
    tokio::spawn(async move {
        let mut daily = tokio::time::interval(Duration::from_secs(86_400));
        loop {
            daily.tick().await;
            crate::tls::warn_if_expiring(not_after, crate::time::now_us() / 1_000_000);
        }
    });

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
        h.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let limit = crate::connections::LimitAcceptor::new(
        limits.connections.clone(),
        metrics,
        Duration::from_secs(config.idle_timeout_secs),
    );
    let app = crate::http::router(Arc::new(HttpState { services, limits }));
    let handshake = Duration::from_secs(config.tls_handshake_timeout_secs);
    let header_read = Duration::from_secs(config.header_read_timeout_secs);
    let mut server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(tls.config),
    )?
    .map(|rustls| rustls.handshake_timeout(handshake).acceptor(limit))
    .first_request_timeout(header_read)
    .handle(handle);
    server
        .http_builder()
        .http1()
        .header_read_timeout(header_read);
    server
        .http_builder()
        .http2()
        .max_concurrent_streams(Some(64))
        .max_header_list_size(64 << 10);
    server.serve(app.into_make_service()).await?;
    drop(dir);
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
