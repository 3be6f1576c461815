//! Request bodies: the content type (415), the size limit (413, after draining a little so the
//! client reads the answer), a read timeout (408), and memory: bytes kept past each body's
//! first [`UNCOUNTED_BODY_BYTES`] take permits from `max_inflight_body_bytes` (503 at once
//! when none are left).

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use evidence_protocol::api::CONTENT_TYPE_JSON;

use super::error::ApiErr;
use super::HttpState;
use crate::service::{ErrorCode, ServiceError};

/// A request body read into memory, holding its share of `max_inflight_body_bytes` until it
/// is dropped.
pub struct BodyBytes {
    pub bytes: Bytes,
    _memory: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl std::ops::Deref for BodyBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The first bytes of every body are not counted against `max_inflight_body_bytes`, so that
/// slow or stalled large uploads can never starve ordinary reports (a few KiB): those bytes are
/// bounded by `max_connections` instead.
pub const UNCOUNTED_BODY_BYTES: usize = 64 << 10;

/// A body up to this many times the limit is read and discarded before the 413 is sent, so a
/// client that is still sending reads the answer instead of a reset connection.
const DRAIN_FACTOR: usize = 4;

fn refused(code: ErrorCode, message: String) -> ApiErr {
    ServiceError::new(code, message).into()
}

/// Reads a JSON body (see the module doc).
pub async fn read_json_body(
    state: &HttpState,
    headers: &HeaderMap,
    body: Body,
) -> Result<BodyBytes, ApiErr> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case(CONTENT_TYPE_JSON) {
        return Err(refused(
            ErrorCode::UnsupportedMediaType,
            format!(
                "content type must be {CONTENT_TYPE_JSON}, got {:?}",
                ct.chars().take(100).collect::<String>()
            ),
        ));
    }
    let config = state.services.config();
    let limit = config.max_body_bytes;
    let too_large = || {
        refused(
            ErrorCode::BodyTooLarge,
            format!("request body exceeds {limit} bytes"),
        )
    };
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit.saturating_mul(DRAIN_FACTOR)) {
        // Far too large: refuse without reading; the client may see the connection close.
        return Err(too_large());
    }
    let timeout = std::time::Duration::from_secs(config.body_read_timeout_secs);
    let read = read_bounded(state, body, limit, declared.unwrap_or(0));
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(refused(
            ErrorCode::BodyTimeout,
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs()
            ),
        )),
        Ok(Read::Body(bytes, memory)) => Ok(BodyBytes {
            bytes,
            _memory: memory,
        }),
        Ok(Read::TooLarge) => Err(too_large()),
        Ok(Read::Busy) => {
            state.services.metrics().body_refused();
            Err(ServiceError::new(
                ErrorCode::ServerBusy,
                "the server is holding as many request body bytes as it allows: retry shortly",
            )
            .retry_after(1)
            .into())
        }
    }
}

/// Reads and parses a JSON body into `T`.
pub async fn json_body<T: serde::de::DeserializeOwned>(
    state: &HttpState,
    headers: &HeaderMap,
    body: Body,
    what: &str,
) -> Result<T, ApiErr> {
    let bytes = read_json_body(state, headers, body).await?;
    serde_json::from_slice(&bytes).map_err(|e| ServiceError::json(what, &e).into())
}

enum Read {
    Body(Bytes, Option<tokio::sync::OwnedSemaphorePermit>),
    TooLarge,
    Busy,
}

/// Reads the body, keeping at most `limit` bytes (discarding up to `limit * DRAIN_FACTOR`
/// before answering TooLarge). Bytes kept past [`UNCOUNTED_BODY_BYTES`] take permits from the
/// in-flight memory bound as they arrive; none left: Busy.
async fn read_bounded(state: &HttpState, body: Body, limit: usize, size_hint: usize) -> Read {
    use axum::body::HttpBody;
    let mut body = std::pin::pin!(body);
    let mut kept = Vec::with_capacity(size_hint.min(limit).min(UNCOUNTED_BODY_BYTES));
    let mut memory: Option<tokio::sync::OwnedSemaphorePermit> = None;
    let mut seen = 0usize;
    loop {
        let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await;
        match frame {
            None => break,
            Some(Err(_)) => return Read::TooLarge,
            Some(Ok(frame)) => {
                let Some(data) = frame.data_ref() else {
                    continue;
                };
                seen = seen.saturating_add(data.len());
                if seen <= limit {
                    let counted = seen.saturating_sub(UNCOUNTED_BODY_BYTES);
                    let held = memory.as_ref().map_or(0, |m| m.num_permits());
                    if counted > held {
                        let more = (counted - held) as u32;
                        match state.limits.body_bytes.clone().try_acquire_many_owned(more) {
                            Ok(permit) => match memory.as_mut() {
                                Some(m) => m.merge(permit),
                                None => memory = Some(permit),
                            },
                            Err(_) => return Read::Busy,
                        }
                    }
                    kept.extend_from_slice(data);
                } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
                    return Read::TooLarge;
                }
            }
        }
    }
    if seen <= limit {
        Read::Body(Bytes::from(kept), memory)
    } else {
        Read::TooLarge
    }
}
