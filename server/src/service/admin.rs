//! Admin services (an admin token's [`Caller`]): enrollment secrets, API tokens, the policy
//! and re-evaluation under it, host revocation, key approval, the audit trail, and an
//! end-to-end check of the evidence log. Every change is recorded in the audit trail.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Caller, ErrorCode, ServiceError, ServiceResult, Services};
use crate::auth::{self, Role};
use crate::store::{
    AuditRecord, FindingsUpdate, LogBreak, SecretRecord, TokenRecord, TokenRevocation,
};
use evidence_controls::{OrgPolicy, OrgPolicyError};

fn check_note(field: &str, s: &str) -> ServiceResult<()> {
    if s.len() > 256 || s.chars().any(char::is_control) {
        return Err(ServiceError::invalid(format!(
            "{field} must be at most 256 bytes without control characters"
        )));
    }
    Ok(())
}

/// A request for an enrollment secret.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    /// Lifetime in seconds (default 86,400; at most 366 days).
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
    #[serde(default)]
    pub single_use: bool,
    #[serde(default)]
    pub note: String,
    /// Set: the secret re-keys this one host (single use), for a host that lost its key.
    #[serde(default)]
    pub host_id: Option<String>,
}

/// A new enrollment secret: its value is shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedSecret {
    pub id: String,
    pub secret: String,
    pub expires_at: String,
    pub single_use: bool,
    pub host_id: Option<String>,
}

/// A request for an API token.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// `admin` or `reader`.
    pub role: String,
    #[serde(default)]
    pub name: String,
}

/// A new API token: its value is shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    pub id: String,
    pub token: String,
    pub role: Role,
}

/// The outcome of a policy change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyChanged {
    /// Hosts whose latest facts were evaluated again under the new policy.
    pub reevaluated_hosts: usize,
}

/// The outcome of an end-to-end log check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogVerification {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    #[serde(rename = "break", skip_serializing_if = "Option::is_none")]
    pub broken: Option<LogBreak>,
    /// With `deep`: every host's findings, control status and last transitions recomputed from
    /// its latest signed full report and compared with the stored ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deep: Option<super::verify::DeepVerification>,
}

impl Services {
    pub async fn create_secret(
        &self,
        caller: &Caller,
        req: NewSecret,
    ) -> ServiceResult<CreatedSecret> {
        check_note("note", &req.note)?;
        if let Some(host_id) = &req.host_id {
            match self.caches.host_revoked(host_id) {
                None => return Err(ServiceError::not_found("no such host")),
                Some(true) => {
                    return Err(ServiceError::new(
                        ErrorCode::RevokedHostCannotBeRekeyed,
                        "this host was revoked and cannot be re-keyed",
                    ))
                }
                Some(false) => {}
            }
        }
        let life = req.expires_in_secs.unwrap_or(86_400);
        if life == 0 || life > 366 * 86_400 {
            return Err(ServiceError::invalid(
                "expires_in_secs must be 1 to 31622400",
            ));
        }
        let cred = auth::generate("ens");
        let now = crate::time::now_us();
        let rec = SecretRecord::issued(
            cred.id.clone(),
            cred.hash,
            now,
            life as i64,
            // A host's re-key secret is good for one enrollment.
            req.single_use || req.host_id.is_some(),
            req.note,
            req.host_id,
        );
        self.store.create_secret(&rec).await?;
        let scope = match &rec.host_id {
            Some(h) => format!("re-keys host {h}"),
            None => "fleet".into(),
        };
        self.record_change("secret_created", &caller.token_id, &rec.id, &scope)
            .await?;
        Ok(CreatedSecret {
            id: rec.id,
            secret: cred.value,
            expires_at: crate::time::fmt(rec.expires_at),
            single_use: rec.single_use,
            host_id: rec.host_id,
        })
    }

    pub async fn secrets(&self) -> ServiceResult<Vec<SecretRecord>> {
        Ok(self.store.secrets().await?)
    }

    pub async fn revoke_secret(&self, caller: &Caller, id: &str) -> ServiceResult<()> {
        if !self.store.revoke_secret(id, crate::time::now_us()).await? {
            return Err(ServiceError::not_found("no such secret"));
        }
        self.record_change("secret_revoked", &caller.token_id, id, "")
            .await?;
        Ok(())
    }

    pub async fn create_token(
        &self,
        caller: &Caller,
        req: NewToken,
    ) -> ServiceResult<CreatedToken> {
        check_note("name", &req.name)?;
        let Some(role) = Role::parse(&req.role) else {
            return Err(ServiceError::invalid("role must be admin or reader"));
        };
        let cred = auth::generate("evt");
        let rec = TokenRecord {
            id: cred.id.clone(),
            hash: cred.hash,
            role,
            name: req.name,
            created_at: crate::time::now_us(),
            revoked_at: None,
        };
        self.store.create_token(&rec).await?;
        self.caches.set_tokens(&self.store.tokens().await?);
        self.record_change(
            "token_created",
            &caller.token_id,
            &rec.id,
            &format!("role {}", rec.role.as_str()),
        )
        .await?;
        Ok(CreatedToken {
            id: rec.id,
            token: cred.value,
            role,
        })
    }

    pub async fn tokens(&self) -> ServiceResult<Vec<TokenRecord>> {
        Ok(self.store.tokens().await?)
    }

    pub async fn revoke_token(&self, caller: &Caller, id: &str) -> ServiceResult<()> {
        let outcome = self.store.revoke_token(id, crate::time::now_us()).await?;
        self.caches.set_tokens(&self.store.tokens().await?);
        match outcome {
            TokenRevocation::Revoked => {
                self.record_change("token_revoked", &caller.token_id, id, "")
                    .await?;
                Ok(())
            }
            TokenRevocation::NotFound => Err(ServiceError::not_found("no such token")),
            TokenRevocation::LastAdmin => Err(ServiceError::new(
                ErrorCode::LastAdminToken,
                "this is the last active admin token: create another admin token first (or mint \
                 one with `evidence-server admin-token --data-dir DIR` on the server)",
            )),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<OrgPolicy> {
        self.caches.policy().1
    }

    /// Replaces the policy (a JSON document) and re-evaluates every host's latest stored facts
    /// under it; answers how many hosts were evaluated again.
    pub async fn put_policy(
        &self,
        caller: &Caller,
        document: &[u8],
    ) -> ServiceResult<PolicyChanged> {
        let policy = OrgPolicy::from_json(document).map_err(|e| match e {
            OrgPolicyError::Schema(_) => {
                match serde_json::from_slice::<serde_json::Value>(document) {
                    Err(je) => ServiceError::json("policy", &je),
                    Ok(_) => ServiceError::new(ErrorCode::InvalidPolicy, e.to_string()),
                }
            }
            other => ServiceError::new(ErrorCode::InvalidPolicy, other.to_string()),
        })?;
        let not_applicable = policy
            .applicability
            .iter()
            .filter(|(_, a)| !a.applicable)
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let hosts = self.reevaluate(policy).await?;
        self.record_change(
            "policy_changed",
            &caller.token_id,
            "policy",
            &format!("controls declared not applicable: [{not_applicable}]"),
        )
        .await?;
        Ok(PolicyChanged {
            reevaluated_hosts: hosts,
        })
    }

    /// Records `policy` as in force from now, and evaluates every host's latest full report
    /// again under it (the stored signed bytes: facts of collectors this server did not know
    /// when the report arrived are evaluated now).
    pub async fn reevaluate(&self, policy: OrgPolicy) -> ServiceResult<usize> {
        let now = crate::time::now_us();
        self.store
            .set_policy(
                &serde_json::to_string(&policy).map_err(ServiceError::internal)?,
                now,
                &self.server_key.key_id(),
            )
            .await?;
        let policy = Arc::new(policy);
        self.caches.set_policy(policy.clone());
        let mut updates = Vec::new();
        for (host_id, bytes) in self.store.latest_facts().await? {
            let report =
                evidence_protocol::Report::from_bytes(&bytes).map_err(ServiceError::internal)?;
            let Some(facts) = report.facts() else {
                continue;
            };
            updates.push(FindingsUpdate {
                host_id,
                findings: super::ingest::evaluate(facts, &policy.checks),
            });
        }
        self.store.apply_findings(&updates, now).await?;
        self.caches.findings_replaced(
            updates
                .iter()
                .map(|u| (u.host_id.as_str(), u.findings.as_slice())),
        );
        Ok(updates.len())
    }

    pub async fn revoke_host(&self, caller: &Caller, host_id: &str) -> ServiceResult<()> {
        let found = self
            .store
            .revoke_host(host_id, &caller.token_id, crate::time::now_us())
            .await?;
        self.reload_credentials().await?;
        if !found {
            return Err(ServiceError::not_found("no such host"));
        }
        self.record_change("host_revoked", &caller.token_id, host_id, "")
            .await?;
        self.caches.host_revoked_now(host_id);
        Ok(())
    }

    pub async fn approve_key(
        &self,
        caller: &Caller,
        host_id: &str,
        key_id: &str,
    ) -> ServiceResult<()> {
        let found = self
            .store
            .approve_key(host_id, key_id, crate::time::now_us(), &caller.token_id)
            .await?;
        self.reload_credentials().await?;
        if !found {
            return Err(ServiceError::not_found(
                "no pending key with this id for this host",
            ));
        }
        self.record_change(
            "key_approved",
            &caller.token_id,
            host_id,
            &format!("key {key_id}"),
        )
        .await?;
        Ok(())
    }

    /// Walks the whole evidence log, recomputing every digest and the chain; with `deep`, also
    /// recomputes every host's derived tables from its signed facts (`super::verify`).
    pub async fn verify_log(&self, deep: bool) -> ServiceResult<LogVerification> {
        let mut verification = match self.store.verify_log().await? {
            Ok((entries, head)) => LogVerification {
                ok: true,
                entries: Some(entries),
                head: Some(head.to_hex()),
                broken: None,
                deep: None,
            },
            Err(b) => LogVerification {
                ok: false,
                entries: None,
                head: None,
                broken: Some(b),
                deep: None,
            },
        };
        // The latest checkpoint must carry this server's signature (the store checked its root).
        if verification.ok {
            if let Some(cp) = self.store.latest_checkpoint().await? {
                if let Err(e) = super::checkpoints::check_signature(&self.server_key, &cp) {
                    verification.ok = false;
                    verification.broken = Some(crate::store::LogBreak {
                        log_index: cp.size,
                        problem: format!(
                            "the signed checkpoint of {} entries does not verify with this server's key: {e}",
                            cp.size
                        ),
                    });
                }
            }
        }
        if deep {
            let found = super::verify::deep_verify(self.store.as_ref(), self.caches.index.clone())
                .await
                .map_err(ServiceError::internal)?;
            verification.ok &= found.ok;
            verification.deep = Some(found);
        }
        Ok(verification)
    }

    /// The latest `limit` audit records (1 to 10,000; default 500), newest first.
    pub async fn audit(&self, limit: Option<usize>) -> ServiceResult<Vec<AuditRecord>> {
        let limit = limit.unwrap_or(500).clamp(1, 10_000);
        Ok(self.store.audit(limit).await?)
    }
}
