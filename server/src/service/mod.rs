//! Application services: the only callers of the [`Store`] and the only owners of the caches.
//! The HTTP layer (and the dashboard and exporters after it) call these and nothing below:
//!
//! - [`enrollment`]: enrollment and key rotation (agent-signed);
//! - [`ingest`]: verified reports into the group-commit writer, receipts after the commit;
//! - [`admin`]: secrets, tokens, policy and re-evaluation, host revocation, key approval, audit;
//! - [`queries`]: hosts, controls, the snapshot now and on a past date, stored reports.
//! - [`verify`]: deep verification of the derived tables against the signed reports.
//!
//! Each call takes plain inputs (bytes, ids, typed requests) and answers a typed value or a
//! [`ServiceError`] with its [`ErrorCode`]; nothing here knows HTTP.

pub mod admin;
mod caches;
pub mod checkpoints;
pub mod enrollment;
mod error;
pub mod export;
pub mod ingest;
pub mod queries;
pub mod verify;

use std::sync::Arc;

use evidence_protocol::SigningKey;

pub use error::{ErrorCode, ServiceError, ServiceResult};

use crate::auth::Role;
use crate::config::Config;
use crate::domain::status::CheckIndex;
use crate::metrics::Metrics;
use crate::store::{Store, StoreResult};
use caches::Caches;
use evidence_controls::OrgPolicy;

/// The running server's services.
pub struct Services {
    config: Config,
    store: Arc<dyn Store>,
    server_key: Arc<SigningKey>,
    caches: Arc<Caches>,
    checkpoints: checkpoints::Checkpointer,
    writer: tokio::sync::mpsc::Sender<ingest::Job>,
    metrics: Arc<Metrics>,
    enroll_limit: crate::limits::RateLimiter,
}

/// An authenticated API caller: its token id (the actor in the audit trail).
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
}

impl Services {
    /// Loads the policy, keys, tokens and fleet state from `store` and starts the ingest
    /// writer (a tokio task: call from within a runtime).
    pub async fn start(
        config: Config,
        store: Arc<dyn Store>,
        server_key: SigningKey,
        metrics: Arc<Metrics>,
    ) -> StoreResult<Arc<Self>> {
        Self::start_with_index(config, store, server_key, metrics, CheckIndex::new()).await
    }

    /// [`Services::start`] with a given check index (the benchmark's synthetic one).
    pub async fn start_with_index(
        config: Config,
        store: Arc<dyn Store>,
        server_key: SigningKey,
        metrics: Arc<Metrics>,
        index: CheckIndex,
    ) -> StoreResult<Arc<Self>> {
        // Policy versions stored before they were evidence-log entries get theirs now.
        store.log_policy_versions(&server_key.key_id()).await?;
        let policy = match store.policy_at(i64::MAX).await? {
            Some(json) => OrgPolicy::from_json(json.as_bytes())
                .map_err(|e| crate::store::StoreError::Corrupt(format!("stored policy: {e}")))?,
            None => OrgPolicy::default(),
        };
        let caches = Arc::new(Caches::new(policy, Arc::new(index)));
        caches.set_keys(store.keys().await?);
        caches.set_tokens(&store.tokens().await?);
        caches.set_fleet(store.fleet_at(i64::MAX, caches.index.clone()).await?);
        let server_key = Arc::new(server_key);
        let checkpoints = checkpoints::Checkpointer::new(store.clone(), server_key.clone());
        checkpoints.check_extends_last().await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16_384);
        ingest::spawn_writer(
            store.clone(),
            Arc::new(checkpoints::NoteSigner::new(server_key.clone())),
            caches.clone(),
            metrics.clone(),
            config.max_batch,
            rx,
        );
        Ok(Arc::new(Self {
            checkpoints,
            enroll_limit: crate::limits::RateLimiter::new(
                config.enroll_burst_per_secret,
                config.enroll_per_minute_per_secret,
            ),
            config,
            store,
            server_key,
            caches,
            writer: tx,
            metrics,
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn server_key(&self) -> &SigningKey {
        &self.server_key
    }

    /// Checks a bearer token (`None`: no Authorization header; `Some("")`: not a Bearer one)
    /// for `needed`. Every refusal is a security event.
    pub async fn authenticate(&self, bearer: Option<&str>, needed: Role) -> ServiceResult<Caller> {
        let refuse = |code: ErrorCode, message: &str| {
            crate::audit::security(&self.metrics, "authentication", code.as_str(), "-", message);
            ServiceError::new(code, message)
        };
        let Some(token) = bearer else {
            return Err(refuse(
                ErrorCode::MissingToken,
                "an Authorization: Bearer <token> header is required",
            ));
        };
        if token.is_empty() {
            return Err(refuse(
                ErrorCode::BadToken,
                "the Authorization header must be Bearer <token>",
            ));
        }
        let mut checked = self.caches.check_token(token);
        if checked.is_none() && self.caches.may_reload_for(token) {
            if let Ok(tokens) = self.store.tokens().await {
                self.caches.set_tokens(&tokens);
            }
            checked = self.caches.check_token(token);
        }
        let Some((token_id, role)) = checked else {
            return Err(refuse(
                ErrorCode::BadToken,
                "the token is not valid or was revoked",
            ));
        };
        if role < needed {
            crate::audit::security(
                &self.metrics,
                "authentication",
                "wrong_role",
                &token_id,
                "a reader token on an admin call",
            );
            return Err(ServiceError::new(
                ErrorCode::Forbidden,
                "this call needs an admin token",
            ));
        }
        Ok(Caller { token_id })
    }

    /// An admin or policy change: logged, counted, and kept in the store.
    async fn record_change(
        &self,
        event: &'static str,
        actor: &str,
        target: &str,
        detail: &str,
    ) -> StoreResult<()> {
        crate::audit::change(
            self.store.as_ref(),
            Some(&self.metrics),
            event,
            actor,
            target,
            detail,
        )
        .await
    }

    async fn reload_credentials(&self) -> StoreResult<()> {
        self.caches.set_keys(self.store.keys().await?);
        self.caches.set_tokens(&self.store.tokens().await?);
        Ok(())
    }
}
