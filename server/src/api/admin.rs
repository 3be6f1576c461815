//! Admin API (admin token): enrollment secrets, API tokens, policy, host revocation and key
//! approval, and an end-to-end check of the evidence log's hash chain.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::agent::read_json_body;
use super::auth::require;
use super::error::{json_error, ApiErr};
use crate::auth::{self, Role};
use crate::policy::OrgPolicy;
use crate::state::AppState;
use crate::store::{FindingsUpdate, SecretRecord, TokenRecord, TokenRevocation};

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiErr> + Send + 'static,
) -> Result<T, ApiErr> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiErr::internal)?
}

async fn json_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    what: &str,
) -> Result<T, ApiErr> {
    let bytes = read_json_body(state, headers, body).await?;
    serde_json::from_slice(&bytes).map_err(|e| json_error(what, &e))
}

fn check_note(field: &str, s: &str) -> Result<(), ApiErr> {
    if s.len() > 256 || s.chars().any(char::is_control) {
        return Err(ApiErr::unprocessable(
            "invalid_field",
            format!("{field} must be at most 256 bytes without control characters"),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    /// Lifetime in seconds (default 86,400; at most a year).
    #[serde(default)]
    expires_in_secs: Option<u64>,
    #[serde(default)]
    single_use: bool,
    #[serde(default)]
    note: String,
    /// Set: the secret re-keys this one host (single use), for a host that lost its key.
    #[serde(default)]
    host_id: Option<String>,
}

pub async fn create_secret(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiErr> {
    let caller = require(&state, &headers, Role::Admin)?;
    let req: NewSecret = json_body(&state, &headers, body, "secret request").await?;
    check_note("note", &req.note)?;
    if let Some(host_id) = &req.host_id {
        // Every host has a key in the cache: whether it exists and is revoked, without a read.
        let revoked = state
            .keys
            .read()
            .expect("keys lock")
            .values()
            .find(|k| &k.host_id == host_id)
            .map(|k| k.host_revoked);
        match revoked {
            None => return Err(ApiErr::not_found("no such host")),
            Some(true) => {
                return Err(ApiErr::new(
                    StatusCode::CONFLICT,
                    "host_revoked",
                    "this host was revoked and cannot be re-keyed",
                ))
            }
            Some(false) => {}
        }
    }
    let life = req.expires_in_secs.unwrap_or(86_400);
    if life == 0 || life > 366 * 86_400 {
        return Err(ApiErr::unprocessable(
            "invalid_field",
            "expires_in_secs must be 1 to 31622400",
        ));
    }
    let cred = auth::generate("ens");
    let now = crate::time::now_us();
    let rec = SecretRecord {
        id: cred.id.clone(),
        hash: cred.hash,
        created_at: now,
        expires_at: now + life as i64 * 1_000_000,
        // A host's re-key secret is good for one enrollment.
        single_use: req.single_use || req.host_id.is_some(),
        uses: 0,
        revoked_at: None,
        note: req.note,
        host_id: req.host_id,
    };
    let s = state.clone();
    let r = rec.clone();
    blocking(move || {
        s.store.create_secret(&r)?;
        let scope = match &r.host_id {
            Some(h) => format!("re-keys host {h}"),
            None => "fleet".into(),
        };
        Ok(crate::audit::change(
            &s,
            "secret_created",
            &caller.token_id,
            &r.id,
            &scope,
        )?)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "id": rec.id, "secret": cred.value, "expires_at": crate::time::fmt(rec.expires_at), "single_use": rec.single_use, "host_id": rec.host_id }),
        ),
    ))
}

pub async fn list_secrets(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiErr> {
    require(&state, &headers, Role::Admin)?;
    let s = state.clone();
    Ok(Json(
        json!({ "secrets": blocking(move || Ok(s.store.secrets()?)).await? }),
    ))
}

pub async fn revoke_secret(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiErr> {
    let caller = require(&state, &headers, Role::Admin)?;
    let s = state.clone();
    let found = blocking(move || {
        let found = s.store.revoke_secret(&id, crate::time::now_us())?;
        if found {
            crate::audit::change(&s, "secret_revoked", &caller.token_id, &id, "")?;
        }
        Ok(found)
    })
    .await?;
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiErr::not_found("no such secret"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    role: String,
    #[serde(default)]
    name: String,
}

pub async fn create_token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiErr> {
    let caller = require(&state, &headers, Role::Admin)?;
    let req: NewToken = json_body(&state, &headers, body, "token request").await?;
    check_note("name", &req.name)?;
    if Role::parse(&req.role).is_none() {
        return Err(ApiErr::unprocessable(
            "invalid_field",
            "role must be admin or reader",
        ));
    }
    let cred = auth::generate("evt");
    let rec = TokenRecord {
        id: cred.id.clone(),
        hash: cred.hash,
        role: req.role,
        name: req.name,
        created_at: crate::time::now_us(),
        revoked_at: None,
    };
    let s = state.clone();
    let r = rec.clone();
    blocking(move || {
        s.store.create_token(&r)?;
        s.reload_tokens()?;
        Ok(crate::audit::change(
            &s,
            "token_created",
            &caller.token_id,
            &r.id,
            &format!("role {}", r.role),
        )?)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": rec.id, "token": cred.value, "role": rec.role })),
    ))
}

pub async fn list_tokens(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiErr> {
    require(&state, &headers, Role::Admin)?;
    let s = state.clone();
    Ok(Json(
        json!({ "tokens": blocking(move || Ok(s.store.tokens()?)).await? }),
    ))
}

pub async fn revoke_token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiErr> {
    let caller = require(&state, &headers, Role::Admin)?;
    let s = state.clone();
    let outcome = blocking(move || {
        let outcome = s.store.revoke_token(&id, crate::time::now_us())?;
        s.reload_tokens()?;
        if outcome == TokenRevocation::Revoked {
            crate::audit::change(&s, "token_revoked", &caller.token_id, &id, "")?;
        }
        Ok(outcome)
    })
    .await?;
    match outcome {
        TokenRevocation::Revoked => Ok(StatusCode::NO_CONTENT),
        TokenRevocation::NotFound => Err(ApiErr::not_found("no such token")),
        TokenRevocation::LastAdmin => Err(ApiErr::new(
            StatusCode::CONFLICT,
            "last_admin_token",
            "this is the last active admin token: create another admin token first (or mint one \
             with `evidence-server admin-token --data-dir DIR` on the server)",
        )),
    }
}

pub async fn get_policy(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<OrgPolicy>, ApiErr> {
    require(&state, &headers, Role::Reader)?;
    Ok(Json((*state.policy().1).clone()))
}

/// Replaces the policy and re-evaluates every host's latest stored facts under it.
pub async fn put_policy(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiErr> {
    let caller = require(&state, &headers, Role::Admin)?;
    let bytes = read_json_body(&state, &headers, body).await?;
    let policy = OrgPolicy::from_json(&bytes).map_err(|e| match e {
        crate::policy::PolicyError::Schema(_) => match serde_json::from_slice::<Value>(&bytes) {
            Err(je) => json_error("policy", &je),
            Ok(_) => ApiErr::unprocessable("invalid_policy", e.to_string()),
        },
        other => ApiErr::unprocessable("invalid_policy", other.to_string()),
    })?;
    let s = state.clone();
    let hosts = blocking(move || {
        let not_applicable = policy
            .applicability
            .iter()
            .filter(|(_, a)| !a.applicable)
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let detail = format!("controls declared not applicable: [{not_applicable}]");
        let hosts = reevaluate(&s, policy)?;
        crate::audit::change(&s, "policy_changed", &caller.token_id, "policy", &detail)?;
        Ok(hosts)
    })
    .await?;
    Ok(Json(json!({ "reevaluated_hosts": hosts })))
}

pub fn reevaluate(state: &AppState, policy: OrgPolicy) -> Result<usize, ApiErr> {
    let now = crate::time::now_us();
    state.store.set_policy(
        &serde_json::to_string(&policy).map_err(ApiErr::internal)?,
        now,
    )?;
    let policy = Arc::new(policy);
    {
        let mut p = state.policy.write().expect("policy lock");
        *p = (p.0 + 1, policy.clone());
    }
    let mut updates = Vec::new();
    for (host_id, bytes) in state.store.latest_facts()? {
        let report = evidence_protocol::Report::from_bytes(&bytes).map_err(ApiErr::internal)?;
        let Some(facts) = report.facts() else {
            continue;
        };
        updates.push(FindingsUpdate {
            host_id,
            findings: crate::writer::evaluate(facts, &policy.checks),
        });
    }
    state.store.apply_findings(&updates, now)?;
    let mut fleet = state.fleet.hosts.write().expect("fleet lock");
    for u in &updates {
        if let Some(h) = fleet.get_mut(&u.host_id) {
            h.set_findings(&u.findings, &state.index);
        }
    }
    Ok(updates.len())
}

pub async fn revoke_host(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiErr> {
    let caller = require(&state, &headers, Role::Admin)?;
    let s = state.clone();
    let id2 = id.clone();
    let found = blocking(move || {
        let found = s.store.revoke_host(&id2, crate::time::now_us())?;
        s.reload_credentials()?;
        if found {
            crate::audit::change(&s, "host_revoked", &caller.token_id, &id2, "")?;
        }
        Ok(found)
    })
    .await?;
    if !found {
        return Err(ApiErr::not_found("no such host"));
    }
    if let Some(h) = state.fleet.hosts.write().expect("fleet lock").get_mut(&id) {
        h.revoked = true;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveKey {
    key_id: String,
}

pub async fn approve_key(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiErr> {
    let caller = require(&state, &headers, Role::Admin)?;
    let req: ApproveKey = json_body(&state, &headers, body, "approval").await?;
    let s = state.clone();
    let found = blocking(move || {
        let found =
            s.store
                .approve_key(&id, &req.key_id, crate::time::now_us(), &caller.token_id)?;
        s.reload_credentials()?;
        if found {
            crate::audit::change(
                &s,
                "key_approved",
                &caller.token_id,
                &id,
                &format!("key {}", req.key_id),
            )?;
        }
        Ok(found)
    })
    .await?;
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiErr::not_found(
            "no pending key with this id for this host",
        ))
    }
}

pub async fn verify_log(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiErr> {
    require(&state, &headers, Role::Admin)?;
    let s = state.clone();
    Ok(Json(
        match blocking(move || Ok(s.store.verify_log()?)).await? {
            Ok((entries, head)) => json!({ "ok": true, "entries": entries, "head": head }),
            Err(b) => json!({ "ok": false, "break": b }),
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Most records, newest first (default 500, at most 10,000).
    limit: Option<usize>,
}

/// The stored audit trail of admin and policy changes, newest first.
pub async fn audit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<AuditQuery>,
) -> Result<Json<Value>, ApiErr> {
    require(&state, &headers, Role::Admin)?;
    let limit = q.limit.unwrap_or(500).clamp(1, 10_000);
    let s = state.clone();
    Ok(Json(
        json!({ "events": blocking(move || Ok(s.store.audit(limit)?)).await? }),
    ))
}
