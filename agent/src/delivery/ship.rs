//! Talking to the server: enrollment and report delivery over pinned HTTPS (reqwest + rustls
//! with ring), one keep-alive connection reused for every request.
//!
//! [`Client::deliver`] sends one spooled report's exact bytes with its detached signature and
//! the size of the last log checkpoint this agent verified, and classifies the answer: a
//! receipt whose checkpoint the server's key signed, which includes exactly these bytes and
//! extends the checkpoint this agent verified before (the only outcome that lets the report
//! leave the spool), a receipt that proves the server rewrote or rolled back its log (refused,
//! and said loudly: the report stays), a reason to retry
//! (network, TLS, 5xx, 429 with its Retry-After), a report the server will never take (it is
//! dropped and counted), or a stop (unknown key, revoked host: nothing is deleted).

use std::time::Duration;

use anyhow::Context;
use evidence_protocol::api::{self, ApiError, EnrollRequest, EnrollResponse};
use evidence_protocol::signing::{self, SigningKey, PUBLIC_KEY_LEN};
use evidence_protocol::{Receipt, ReceiptError, Witnessed};
use reqwest::StatusCode;

use crate::delivery::spool::Entry;
use crate::state::Pin;

/// What became of one delivery attempt.
#[derive(Debug)]
pub enum Delivery {
    /// Stored by the server; the receipt verified for these bytes. The checkpoint is the one
    /// to witness from now on.
    Accepted(Receipt, Witnessed),
    /// Try again later (after `after` if the server said so).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The server will never accept this report (e.g. a replayed sequence number): drop it
    /// and count it as lost.
    Rejected { reason: String },
    /// The server refuses this host (revoked, unknown key): keep everything, retry rarely.
    Refused { reason: String },
}

/// An HTTPS client bound to one server and one pin.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client that only talks to a server presenting the pinned certificate.
    pub fn new(server_url: &str, pin: &Pin, request_timeout: Duration) -> anyhow::Result<Client> {
        crate::delivery::tls::install_provider();
        let url = reqwest::Url::parse(server_url)
            .with_context(|| format!("server URL {server_url:?}"))?;
        anyhow::ensure!(
            url.scheme() == "https",
            "server URL must be https://, got {server_url}"
        );
        let tls = crate::delivery::tls::client_config(pin)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .timeout(request_timeout)
            .connect_timeout(request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60))
            .user_agent(concat!("evidence-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTPS client")?;
        Ok(Client {
            http,
            base: server_url.trim_end_matches('/').to_string(),
        })
    }

    /// `POST /v1/enroll`, signed with the host key.
    pub async fn enroll(
        &self,
        key: &SigningKey,
        request: &EnrollRequest,
    ) -> anyhow::Result<EnrollResponse> {
        let body = serde_json::to_vec(request)?;
        let response = self
            .http
            .post(format!("{}{}", self.base, api::ENROLL_PATH))
            .header(reqwest::header::CONTENT_TYPE, api::CONTENT_TYPE_JSON)
            .header(api::SIGNATURE_HEADER, key.sign_b64(&body))
            .header(api::KEY_ID_HEADER, key.key_id())
            .body(body)
            .send()
            .await
            .map_err(|err| anyhow::anyhow!("cannot reach {}: {}", self.base, error_chain(&err)))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| anyhow::anyhow!(error_chain(&err)))?;
        if !status.is_success() {
            anyhow::bail!("enrollment refused: {}", describe(status, &bytes));
        }
        serde_json::from_slice(&bytes).context("enrollment answer is not an EnrollResponse")
    }

    /// `POST /v1/reports` with one spooled report.
    pub async fn deliver(
        &self,
        entry: &Entry,
        key_id: &str,
        server_key: &[u8; PUBLIC_KEY_LEN],
        witnessed: Option<&Witnessed>,
    ) -> Delivery {
        let mut request = self
            .http
            .post(format!("{}{}", self.base, api::REPORTS_PATH))
            .header(reqwest::header::CONTENT_TYPE, api::CONTENT_TYPE_JSON)
            .header(api::SIGNATURE_HEADER, signing::b64(&entry.signature))
            .header(api::KEY_ID_HEADER, key_id);
        if let Some(w) = witnessed {
            request = request.header(api::WITNESSED_HEADER, w.size.to_string());
        }
        let sent = request.body(entry.body.clone()).send().await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                return Delivery::Retry {
                    reason: format!("cannot reach {}: {}", self.base, error_chain(&err)),
                    after: None,
                }
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(err) => {
                return Delivery::Retry {
                    reason: format!("reading the answer: {}", error_chain(&err)),
                    after: None,
                }
            }
        };
        classify(status, retry_after, &bytes, entry, server_key, witnessed)
    }
}

/// Turns a status and body into a [`Delivery`].
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    entry: &Entry,
    server_key: &[u8; PUBLIC_KEY_LEN],
    witnessed: Option<&Witnessed>,
) -> Delivery {
    if status.is_success() {
        let receipt: Receipt = match serde_json::from_slice(body) {
            Ok(receipt) => receipt,
            Err(err) => {
                return Delivery::Retry {
                    reason: format!("server answered {status} without a receipt: {err}"),
                    after: None,
                }
            }
        };
        if receipt.seq != entry.seq {
            return Delivery::Retry {
                reason: format!(
                    "receipt names sequence {} for report {}",
                    receipt.seq, entry.seq
                ),
                after: None,
            };
        }
        return match receipt.verify(server_key, &entry.body, witnessed) {
            Ok(checkpoint) => Delivery::Accepted(receipt, checkpoint),
            // History this agent saw is gone: never a retry-soon, and never deleted.
            Err(
                err @ (ReceiptError::Inconsistent { .. }
                | ReceiptError::RolledBack { .. }
                | ReceiptError::NoConsistencyProof { .. }),
            ) => Delivery::Refused {
                reason: format!("receipt for report {} refused: {err}", entry.seq),
            },
            Err(err) => Delivery::Retry {
                reason: format!("receipt for report {} does not verify: {err}", entry.seq),
                after: None,
            },
        };
    }
    let reason = describe(status, body);
    match status.as_u16() {
        429 | 408 | 500..=599 => Delivery::Retry {
            reason,
            after: retry_after,
        },
        401 | 403 => Delivery::Refused { reason },
        // Replayed sequence, too large, malformed: this exact report can never be accepted.
        400 | 409 | 413 => Delivery::Rejected { reason },
        // Clock skew and anything unexpected: the condition may clear; keep the report.
        _ => Delivery::Retry {
            reason,
            after: retry_after,
        },
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// "403 host_revoked: this host was revoked" from an [`ApiError`] body, or the raw text.
fn describe(status: StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<ApiError>(body) {
        Ok(err) => format!("{} {}: {}", status.as_u16(), err.error, err.message),
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_string();
            format!("{status} {text}")
        }
    }
}

/// An error with all its causes (reqwest hides the TLS reason in the source chain).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use evidence_protocol::{merkle, Digest};

    fn entry(key: &SigningKey) -> Entry {
        let body = evidence_protocol::Report {
            host_id: "h".into(),
            key_id: key.key_id(),
            seq: 5,
            prev_digest: None,
            collected_at: Utc::now(),
            agent_version: "0.1.0".into(),
            collector_versions: Default::default(),
            dropped_reports: 0,
            kind: evidence_protocol::ReportKind::Attestation {
                still_holds: Digest::of(b"full"),
            },
            witnessed: None,
        }
        .to_bytes();
        Entry {
            seq: 5,
            signature: key.sign(&body),
            body,
        }
    }

    /// A receipt from a log of one earlier entry and this report, signed by `server`.
    fn receipt_for(server: &SigningKey, body: &[u8], seq: u64) -> Vec<u8> {
        let received_at = Utc::now();
        let leaves = vec![
            merkle::leaf_hash(b"earlier"),
            evidence_protocol::receipt::report_leaf_hash(
                &evidence_protocol::Report::from_bytes(body).unwrap_or_else(|_| {
                    evidence_protocol::Report::from_bytes(&entry(server).body).unwrap()
                }),
                &Digest::of(body),
                &received_at,
            ),
        ];
        let origin = evidence_protocol::receipt::server_origin(&server.public_key());
        let receipt = Receipt {
            report_digest: Digest::of(body),
            host_id: "h".into(),
            seq,
            received_at,
            log_index: 1,
            checkpoint: evidence_protocol::Checkpoint::new(
                origin.clone(),
                2,
                merkle::root(&leaves),
            )
            .sign(server, &origin)
            .unwrap(),
            inclusion: merkle::inclusion_proof(1, 2, &leaves).unwrap(),
            consistency: Some(merkle::consistency_proof(1, 2, &leaves).unwrap()),
        };
        serde_json::to_vec(&receipt).unwrap()
    }

    #[test]
    fn only_a_verified_receipt_for_these_bytes_is_accepted() {
        let host = SigningKey::generate().unwrap();
        let server = SigningKey::generate().unwrap();
        let impostor = SigningKey::generate().unwrap();
        let entry = entry(&host);
        let pk = server.public_key();
        let ok = receipt_for(&server, &entry.body, 5);
        assert!(matches!(
            classify(StatusCode::OK, None, &ok, &entry, &pk, None),
            Delivery::Accepted(_, Witnessed { size: 2, .. })
        ));
        let forged = receipt_for(&impostor, &entry.body, 5);
        assert!(matches!(
            classify(StatusCode::OK, None, &forged, &entry, &pk, None),
            Delivery::Retry { .. }
        ));
        let other_bytes = receipt_for(&server, b"other", 5);
        assert!(matches!(
            classify(StatusCode::OK, None, &other_bytes, &entry, &pk, None),
            Delivery::Retry { .. }
        ));
        assert!(matches!(
            classify(StatusCode::OK, None, b"{}", &entry, &pk, None),
            Delivery::Retry { .. }
        ));
    }

    #[test]
    fn a_receipt_from_a_log_that_dropped_what_this_agent_witnessed_is_refused_and_kept() {
        let host = SigningKey::generate().unwrap();
        let server = SigningKey::generate().unwrap();
        let entry = entry(&host);
        let receipt = receipt_for(&server, &entry.body, 5);
        // This agent verified a checkpoint of 1 entry whose root is another than the log's now.
        let seen = Witnessed {
            size: 1,
            root: merkle::leaf_hash(b"the entry the server since replaced"),
        };
        match classify(
            StatusCode::OK,
            None,
            &receipt,
            &entry,
            &server.public_key(),
            Some(&seen),
        ) {
            Delivery::Refused { reason } => {
                assert!(reason.contains("rewrote or forked history"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_codes_map_to_retry_drop_or_stop() {
        let host = SigningKey::generate().unwrap();
        let entry = entry(&host);
        let pk = host.public_key();
        let body = br#"{"error":"host_revoked","message":"revoked by admin"}"#;
        match classify(StatusCode::FORBIDDEN, None, body, &entry, &pk, None) {
            Delivery::Refused { reason } => {
                assert_eq!(reason, "403 host_revoked: revoked by admin")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(StatusCode::CONFLICT, None, b"", &entry, &pk, None),
            Delivery::Rejected { .. }
        ));
        match classify(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(9)),
            b"",
            &entry,
            &pk,
            None,
        ) {
            Delivery::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(9))),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                b"",
                &entry,
                &pk,
                None
            ),
            Delivery::Retry { .. }
        ));
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = (Utc::now() + chrono::Duration::seconds(100)).to_rfc2822();
        let parsed = parse_retry_after(&later).unwrap();
        assert!(parsed > Duration::from_secs(90) && parsed <= Duration::from_secs(100));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
