//! A small client of the server's API for the load generator and the tests: pinned HTTPS,
//! creating an enrollment secret, enrolling simulated hosts with real Ed25519 keys, building
//! and signing their report chains, submitting reports and checking receipts.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use evidence_protocol::api::{
    EnrollRequest, EnrollResponse, HostIdentity, RotateKeyRequest, ENROLL_PATH, KEY_ID_HEADER,
    NEW_KEY_SIGNATURE_HEADER, REPORTS_PATH, ROTATE_PATH, SIGNATURE_HEADER, WITNESSED_HEADER,
};
use evidence_protocol::{
    signing, Digest, Facts, Receipt, Report, ReportKind, SignedReport, SigningKey, Witnessed,
};

/// A server to talk to.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, fingerprint: &str) -> anyhow::Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http: crate::pin::client(fingerprint)?,
        })
    }

    /// Creates a reusable enrollment secret valid for an hour.
    pub async fn create_secret(&self, admin_token: &str) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(format!("{}/v1/admin/enrollment-secrets", self.base))
            .bearer_auth(admin_token)
            .json(&serde_json::json!({ "expires_in_secs": 3600, "single_use": false, "note": "loadgen" }))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!(
                "creating a secret: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        let v: serde_json::Value = resp.json().await?;
        Ok(v["secret"]
            .as_str()
            .context("secret in answer")?
            .to_string())
    }

    /// Enrolls one host with `key`.
    pub async fn enroll(
        &self,
        secret: &str,
        key: &SigningKey,
        machine_id: &str,
        hostname: &str,
    ) -> anyhow::Result<EnrollResponse> {
        let req = EnrollRequest {
            secret: secret.to_string(),
            public_key: key.public_key_b64(),
            identity: HostIdentity {
                machine_id: machine_id.into(),
                hostname: hostname.into(),
                hardware_serial: None,
            },
            agent_version: "loadgen".into(),
        };
        let body = serde_json::to_vec(&req)?;
        let resp = self
            .http
            .post(format!("{}{ENROLL_PATH}", self.base))
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, key.sign_b64(&body))
            .body(body)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!(
                "enrolling {hostname}: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        Ok(resp.json().await?)
    }

    /// Submits one signed report; the status and the body (receipt or error).
    pub async fn submit(&self, report: &SignedReport) -> anyhow::Result<(u16, Vec<u8>)> {
        self.submit_witnessed(report, None).await
    }

    /// [`Api::submit`], naming the size of the last checkpoint the host verified (the
    /// receipt's consistency proof starts there), as the agent does.
    pub async fn submit_witnessed(
        &self,
        report: &SignedReport,
        witnessed_size: Option<u64>,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut request = self
            .http
            .post(format!("{}{REPORTS_PATH}", self.base))
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, &report.signature)
            .header(KEY_ID_HEADER, &report.key_id);
        if let Some(size) = witnessed_size {
            request = request.header(WITNESSED_HEADER, size.to_string());
        }
        let resp = request.body(report.bytes.clone()).send().await?;
        Ok((resp.status().as_u16(), resp.bytes().await?.to_vec()))
    }
}

/// A simulated enrolled host: its key, ids and the state of its report chain.
pub struct SimHost {
    pub key: SigningKey,
    pub host_id: String,
    pub server_key: [u8; 32],
    pub next_seq: u64,
    pub prev: Option<Digest>,
    pub hostname: String,
    /// The last checkpoint this host verified (it is a witness, as the agent is).
    pub witnessed: Option<Witnessed>,
}

impl SimHost {
    pub async fn enroll(api: &Api, secret: &str, hostname: &str) -> anyhow::Result<Self> {
        let key = SigningKey::generate()?;
        let machine_id = hex::encode(evidence_server::auth::random_bytes::<16>());
        let r = api.enroll(secret, &key, &machine_id, hostname).await?;
        Ok(Self {
            server_key: signing::decode_public_key(&r.server_public_key)?,
            key,
            host_id: r.host_id,
            next_seq: r.last_seq + 1,
            prev: r.last_digest,
            hostname: hostname.into(),
            witnessed: None,
        })
    }

    /// Rotates to `new_key` with a request signed by the current key and the new key; on
    /// success the host signs with the new key from now on. The status and body.
    pub async fn rotate(
        &mut self,
        api: &Api,
        new_key: SigningKey,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let body = serde_json::to_vec(&RotateKeyRequest {
            host_id: self.host_id.clone(),
            new_public_key: new_key.public_key_b64(),
            requested_at: chrono::Utc::now(),
        })?;
        let resp = api
            .http
            .post(format!("{}{ROTATE_PATH}", api.base))
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, self.key.sign_b64(&body))
            .header(KEY_ID_HEADER, self.key.key_id())
            .header(NEW_KEY_SIGNATURE_HEADER, new_key.sign_b64(&body))
            .body(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?.to_vec();
        if status == 200 {
            self.key = new_key;
        }
        Ok((status, body))
    }

    /// Builds this host's next report without advancing its chain.
    pub fn build_report(&self, kind: ReportKind) -> Report {
        Report {
            host_id: self.host_id.clone(),
            key_id: self.key.key_id(),
            seq: self.next_seq,
            prev_digest: self.prev,
            collected_at: chrono::Utc::now(),
            agent_version: "0.1.0".into(),
            collector_versions: [
                "accounts",
                "disk_encryption",
                "firewall",
                "host",
                "patch_level",
            ]
            .iter()
            .map(|c| (c.to_string(), "0.1.0".to_string()))
            .collect::<BTreeMap<_, _>>(),
            dropped_reports: 0,
            kind,
            witnessed: self.witnessed,
        }
    }

    /// Builds and signs this host's next report (advancing its chain).
    pub fn next_report(&mut self, kind: ReportKind) -> SignedReport {
        let signed = self.build_report(kind).sign(&self.key);
        self.next_seq += 1;
        self.prev = Some(signed.digest());
        signed
    }

    /// Checks a receipt body against the report it acknowledges (checkpoint, inclusion, and
    /// consistency with the checkpoint the report names: this client sends no witnessed
    /// header), and witnesses its checkpoint when it is the newest this host has seen.
    pub fn check_receipt(&mut self, report: &SignedReport, body: &[u8]) -> anyhow::Result<Receipt> {
        let since = Report::from_bytes(&report.bytes)?.witnessed;
        let (receipt, checkpoint) = self.verify_receipt(report, body, since.as_ref())?;
        if self.witnessed.is_none_or(|w| w.size < checkpoint.size) {
            self.witnessed = Some(checkpoint);
        }
        Ok(receipt)
    }

    /// Verifies a receipt body for `report`, its consistency proof from `witnessed`; answers
    /// the receipt and its checkpoint.
    pub fn verify_receipt(
        &self,
        report: &SignedReport,
        body: &[u8],
        witnessed: Option<&Witnessed>,
    ) -> anyhow::Result<(Receipt, Witnessed)> {
        let receipt: Receipt = serde_json::from_slice(body)?;
        let checkpoint = receipt
            .verify(&self.server_key, &report.bytes, witnessed)
            .map_err(|e| anyhow::anyhow!("receipt: {e}"))?;
        Ok((receipt, checkpoint))
    }
}

/// Realistic facts of the collectors (a recorded Debian 12 host), with the hostname replaced.
pub fn sample_facts(hostname: &str) -> Facts {
    let text = include_str!("../data/sample-facts.json").replace("SAMPLE-HOSTNAME", hostname);
    serde_json::from_str(&text).expect("embedded sample facts match the protocol")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_facts_parse_and_carry_the_hostname() {
        let json = serde_json::to_string(&sample_facts("host-000042")).unwrap();
        assert!(json.contains("\"host-000042\""), "{json}");
        assert!(!json.contains("SAMPLE-HOSTNAME"), "{json}");
    }

    #[test]
    fn a_malformed_fingerprint_is_refused() {
        assert!(Api::new("https://127.0.0.1:1", "not hex").is_err());
        let api = Api::new("https://127.0.0.1:1/", &"ab".repeat(32)).unwrap();
        assert_eq!(api.base, "https://127.0.0.1:1");
    }

    #[test]
    fn next_report_advances_the_chain() {
        let key = SigningKey::generate().unwrap();
        let mut host = SimHost {
            server_key: [0; 32],
            host_id: "h1".into(),
            next_seq: 1,
            prev: None,
            hostname: "h1".into(),
            witnessed: None,
            key,
        };
        let first = host.next_report(ReportKind::Full {
            facts: sample_facts("h1"),
        });
        let second = host.next_report(ReportKind::Full {
            facts: sample_facts("h1"),
        });
        let second_report: Report = serde_json::from_slice(&second.bytes).unwrap();
        assert_eq!(second_report.seq, 2);
        assert_eq!(second_report.prev_digest, Some(first.digest()));
        assert_eq!(host.next_seq, 3);
        assert_eq!(host.prev, Some(second.digest()));
    }
}
