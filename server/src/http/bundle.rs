//! `GET /v1/admin/bundle` (admin token): an evidence bundle (`evidence-bundle-v1`, an
//! uncompressed ustar archive) of the selected hosts, controls and period, streamed as it is
//! written. Every refusal (unknown host or control, an empty period, too many entries) is a
//! JSON error before the first byte; a failure while streaming aborts the response, so a
//! client never takes a truncated archive for a whole one.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use evidence_protocol::api::ApiError;
use tokio::sync::mpsc;

use super::auth::Admin;
use super::error::{ApiErr, Query};
use super::HttpState;
use crate::service::export::{parse_time, BundleRequest};
use crate::service::{ErrorCode, ServiceError};

/// The query of `GET /v1/admin/bundle` (documentation; read as name-value pairs so that
/// `host` and `control` may repeat).
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct BundleQuery {
    /// A host to include (repeat for several, or separate with commas); none: every host.
    pub host: Option<Vec<String>>,
    /// An ISO/IEC 27002:2022 control for the findings and status rows (repeat, or commas);
    /// none: every control.
    pub control: Option<Vec<String>>,
    /// Start of the period: RFC 3339, or a date (its start, UTC); default: the first entry.
    pub from: Option<String>,
    /// End of the period: RFC 3339, or a date (its end, UTC); default: now.
    pub to: Option<String>,
}

/// Parses the bundle query: `host`, `control` (repeatable, comma-separated), `from`, `to`.
pub fn parse_query(pairs: Vec<(String, String)>) -> Result<BundleRequest, ServiceError> {
    let bad = |m: String| ServiceError::new(ErrorCode::BadQuery, m);
    let mut req = BundleRequest::default();
    for (name, value) in pairs {
        let list = || {
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        };
        match name.as_str() {
            "host" => req.hosts.extend(list()),
            "control" => req.controls.extend(list()),
            "from" => req.from = Some(parse_time(&value, true)?),
            "to" => req.to = Some(parse_time(&value, false)?),
            other => return Err(bad(format!("unknown query parameter {other:?}"))),
        }
    }
    Ok(req)
}

/// Collects the archive's bytes in 64 KiB pieces and hands each to the response body (the
/// writer runs on the blocking pool, so it may wait for the client).
struct ChannelWriter {
    buffer: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
}

const PIECE: usize = 64 * 1024;

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(PIECE),
        ));
        self.tx
            .blocking_send(Ok(piece))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= PIECE {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The response body: the pieces as they come; an error ends the response abnormally.
struct Pieces(mpsc::Receiver<Result<Bytes, io::Error>>);

impl futures_core::Stream for Pieces {
    type Item = Result<Bytes, io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// An evidence bundle of the selected hosts, controls and period (`evidence-bundle-v1`: see
/// `evidence-verify`), as `application/x-tar`. The same log and query at the same export time
/// give the same bytes.
#[utoipa::path(get, path = "/v1/admin/bundle", tag = "admin", security(("bearer" = [])),
    params(BundleQuery),
    responses((status = 200, body = Vec<u8>, content_type = "application/x-tar", description = "the bundle archive"),
        (status = "4XX", body = ApiError), (status = "5XX", body = ApiError)))]
pub async fn bundle(
    State(state): State<Arc<HttpState>>,
    Admin(caller): Admin,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiErr> {
    let req = parse_query(pairs)?;
    let services = state.services.clone();
    let plan = services.plan_bundle(&req).await?;
    tracing::info!(
        actor = %caller.token_id,
        entries = plan.entries(),
        size = plan.size(),
        "evidence bundle exported"
    );
    let name = format!(
        "attachment; filename=\"evidence-bundle-{:020}.tar\"",
        plan.size()
    );
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let out = ChannelWriter {
            buffer: Vec::with_capacity(PIECE),
            tx: tx.clone(),
        };
        let written = services.exporter().write(plan, out).await;
        let result = match written {
            Ok(mut out) => tokio::task::spawn_blocking(move || out.flush())
                .await
                .map_err(io::Error::other)
                .and_then(|r| r),
            Err(e) => Err(io::Error::other(e.to_string())),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "evidence bundle export failed while streaming");
            let _ = tx.send(Err(e)).await;
        }
    });
    Ok((
        [
            ("content-type", "application/x-tar".to_string()),
            ("content-disposition", name),
        ],
        Body::from_stream(Pieces(rx)),
    )
        .into_response())
}
