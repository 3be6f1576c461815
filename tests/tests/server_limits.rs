//! Connection and body limits against the real server over TLS: 1,100 idle TLS connections
//! and 200 stalled 1 MiB uploads (each stalls after 512 KiB) from one client, while a legitimate client keeps getting
//! `/healthz` and report receipts well before the stalled uploads time out (never waiting
//! behind them); connections past the limit are refused on
//! arrival, bodies past the in-flight memory bound get 503 at once, and the idle connections
//! are closed within the header-read timeout.
//!
//! Needs the binary: `cargo build -p evidence-server && cargo test -p evidence-tests --test server_limits`.

mod server_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use evidence_loadgen::client::{sample_facts, SimHost};
use evidence_protocol::pinning::{parse_fingerprint, PinnedCert};
use evidence_protocol::ReportKind;
use server_common::{runtime, start, temp_dir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

const IDLE: usize = 1_100;
const STALLED: usize = 200;
const HEADER_READ_TIMEOUT_SECS: u64 = 3;
const BODY_READ_TIMEOUT_SECS: u64 = 5;

fn connector(fingerprint: &str) -> TlsConnector {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCert::new(
            parse_fingerprint(fingerprint).unwrap(),
        )))
        .with_no_client_auth();
    TlsConnector::from(Arc::new(tls))
}

/// A TLS connection (HTTP/1.1, nothing sent), or `None` when the server closed it on arrival.
async fn open(addr: &str, tls: &TlsConnector) -> Option<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await.ok()?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(Duration::from_secs(20), tls.connect(name, tcp))
        .await
        .ok()?
        .ok()
}

/// True when the server has closed the connection (EOF or an error on read).
async fn closed(conn: &mut TlsStream<TcpStream>) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_millis(200), conn.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An answer (408/503): keep reading until the close.
            Ok(Ok(_)) => continue,
        }
    }
}

#[test]
fn idle_and_stalled_connections_do_not_starve_a_legitimate_client() {
    let (_tmp, data) = temp_dir();
    let server = start(
        &data,
        None,
        &[
            "--max-connections",
            "1000",
            "--header-read-timeout-secs",
            &HEADER_READ_TIMEOUT_SECS.to_string(),
            "--body-read-timeout-secs",
            &BODY_READ_TIMEOUT_SECS.to_string(),
            "--max-inflight-body-bytes",
            &(64u64 << 20).to_string(),
        ],
    );
    let addr = server.base.trim_start_matches("https://").to_string();
    runtime().block_on(async {
        let secret = server.api.create_secret(&server.admin).await.unwrap();
        let mut host = SimHost::enroll(&server.api, &secret, "legit").await.unwrap();
        // The legitimate client: a healthz and a report every 100 ms, each timed.
        let stop = Arc::new(AtomicBool::new(false));
        let legit = {
            let (api, stop) = (server.api.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut slowest, mut rounds) = (Duration::ZERO, 0u32);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let health = api.http.get(format!("{}/healthz", api.base)).send().await.map(|r| r.status().as_u16());
                    assert_eq!(health.ok(), Some(200), "healthz during the flood");
                    let report = host.next_report(ReportKind::Full { facts: sample_facts("legit") });
                    let (status, body) = api.submit(&report).await.unwrap();
                    assert_eq!(status, 200, "a receipt during the flood: {}", String::from_utf8_lossy(&body));
                    host.check_receipt(&report, &body).unwrap();
                    slowest = slowest.max(t.elapsed());
                    rounds += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                (slowest, rounds)
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;

        let tls = connector(&server.fingerprint);
        // 200 uploads that declare 1 MiB, send 512 KiB and stall: 200 x 448 KiB counted bytes are
        // more than the 64 MiB allowed, so some are refused at once; the others wait for the
        // body-read timeout.
        let mut stalled = Vec::new();
        for _ in 0..STALLED {
            if let Some(mut c) = open(&addr, &tls).await {
                let head = format!("POST /v1/reports HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-evidence-key-id: k\r\nx-evidence-signature: s\r\n\r\n", 1 << 20);
                c.write_all(head.as_bytes()).await.unwrap();
                if c.write_all(&[b' '; 512 << 10]).await.is_err() {
                    continue; // refused with 503 mid-body and closed
                }
                c.flush().await.unwrap();
                stalled.push(c);
            }
        }
        // 1,100 connections that complete the handshake and send nothing.
        let opened_at = Instant::now();
        let attempts: Vec<_> = (0..IDLE)
            .map(|_| {
                let (addr, tls) = (addr.clone(), tls.clone());
                async move { open(&addr, &tls).await }
            })
            .collect();
        let results = futures_join(attempts).await;
        let refused = results.iter().filter(|c| c.is_none()).count();
        let mut idle: Vec<_> = results.into_iter().flatten().collect();
        assert!(refused > 0, "connections past max_connections are refused on arrival");

        // Within the header-read timeout (plus slack for a loaded machine) every idle one is closed.
        tokio::time::sleep(Duration::from_secs(HEADER_READ_TIMEOUT_SECS + 2).saturating_sub(opened_at.elapsed())).await;
        let mut still_open = 0;
        for c in idle.iter_mut() {
            if !closed(c).await {
                still_open += 1;
            }
        }
        assert_eq!(still_open, 0, "idle connections closed within the header-read timeout ({} open)", idle.len());

        let m = server.api.http.get(format!("{}/metrics", server.base)).bearer_auth(&server.admin).send().await.unwrap().text().await.unwrap();
        let value = |name: &str| -> u64 { m.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or(0) };
        assert!(value("evidence_connections_refused_total ") > 0, "{m}");
        assert!(value("evidence_bodies_refused_total ") > 0, "stalled bodies past 64 MiB are refused at once: {m}");
        stop.store(true, Ordering::Relaxed);
        let (slowest, rounds) = legit.await.unwrap();
        assert!(rounds >= 10, "the legitimate client kept going ({rounds} rounds)");
        // Starved, the client would wait for the stalled uploads to time out (the body-read
        // timeout) or be refused; served, it answers in well under that. Not a latency target
        // (that is the benchmark's): debug builds on two shared cores take 0.5-1.3 s here.
        let starved = Duration::from_secs(BODY_READ_TIMEOUT_SECS) / 2;
        assert!(slowest < starved, "every healthz and receipt within {starved:?}; slowest {slowest:?}");
        drop(stalled);
        eprintln!("{refused} refused on arrival, {} idle closed, slowest legitimate round {slowest:?} over {rounds} rounds", idle.len());
    });
}

/// Runs the futures concurrently and collects their outputs in order.
async fn futures_join<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}
