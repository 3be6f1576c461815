//! Why a service refused or failed a call: one [`ErrorCode`] per reason (the stable string
//! every client sees in `{"error": ..., "message": ...}`), a message for people, and when to
//! retry. The HTTP layer maps each code to its status in one place (`http::error`).

/// Every reason the server refuses or fails a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // Request shape (HTTP layer).
    UnsupportedMediaType,
    BodyTooLarge,
    BodyTimeout,
    ServerBusy,
    MalformedJson,
    SchemaMismatch,
    BadEncoding,
    BadPath,
    BadQuery,
    BadTime,
    InvalidField,
    NotFound,
    MethodNotAllowed,
    // Agent authentication.
    MissingSignature,
    BadSignature,
    UnknownKey,
    WeakPublicKey,
    KeyNotActive,
    IdentityMismatch,
    // Enrollment and keys.
    BadSecret,
    RateLimited,
    SecretExpired,
    SecretRevoked,
    SecretUsed,
    SecretForAnotherHost,
    KeyInUse,
    TooManyPendingKeys,
    KeyChangeNeedsApproval,
    HostRevoked,
    /// An admin asked to re-key a host that was revoked (a conflict, not an agent refusal).
    RevokedHostCannotBeRekeyed,
    // Reports.
    ClockSkew,
    CollectedBeforeEnrollment,
    ReplayedSequence,
    UnknownHost,
    AttestationMismatch,
    // Tokens and admin.
    MissingToken,
    BadToken,
    Forbidden,
    LastAdminToken,
    InvalidPolicy,
    // The server itself.
    ShuttingDown,
    Internal,
}

impl ErrorCode {
    /// The stable wire code.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            UnsupportedMediaType => "unsupported_media_type",
            BodyTooLarge => "body_too_large",
            BodyTimeout => "body_timeout",
            ServerBusy => "server_busy",
            MalformedJson => "malformed_json",
            SchemaMismatch => "schema_mismatch",
            BadEncoding => "bad_encoding",
            BadPath => "bad_path",
            BadQuery => "bad_query",
            BadTime => "bad_time",
            InvalidField => "invalid_field",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            MissingSignature => "missing_signature",
            BadSignature => "bad_signature",
            UnknownKey => "unknown_key",
            WeakPublicKey => "weak_public_key",
            KeyNotActive => "key_not_active",
            IdentityMismatch => "identity_mismatch",
            BadSecret => "bad_secret",
            RateLimited => "rate_limited",
            SecretExpired => "secret_expired",
            SecretRevoked => "secret_revoked",
            SecretUsed => "secret_used",
            SecretForAnotherHost => "secret_for_another_host",
            KeyInUse => "key_in_use",
            TooManyPendingKeys => "too_many_pending_keys",
            KeyChangeNeedsApproval => "key_change_needs_approval",
            HostRevoked | RevokedHostCannotBeRekeyed => "host_revoked",
            ClockSkew => "clock_skew",
            CollectedBeforeEnrollment => "collected_before_enrollment",
            ReplayedSequence => "replayed_sequence",
            UnknownHost => "unknown_host",
            AttestationMismatch => "attestation_mismatch",
            MissingToken => "missing_token",
            BadToken => "bad_token",
            Forbidden => "forbidden",
            LastAdminToken => "last_admin_token",
            InvalidPolicy => "invalid_policy",
            ShuttingDown => "shutting_down",
            Internal => "internal",
        }
    }
}

/// A refused or failed call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidField, message)
    }

    /// The writer is gone: the server is stopping (the agent retries later).
    pub fn shutting_down() -> Self {
        Self::new(ErrorCode::ShuttingDown, "the server is shutting down").retry_after(5)
    }

    /// A failure of ours: logged in full, answered without detail.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {e}");
        Self::new(ErrorCode::Internal, "internal error; see the server log")
    }

    /// Classifies a JSON parse failure: syntax or encoding is malformed JSON, a schema
    /// mismatch (missing or unknown field, wrong type) is a schema mismatch.
    pub fn json(what: &str, e: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => Self::new(
                ErrorCode::MalformedJson,
                format!("{what} is not valid JSON: {e}"),
            ),
            Category::Data => Self::new(
                ErrorCode::SchemaMismatch,
                format!("{what} does not match the schema: {e}"),
            ),
        }
    }
}

impl From<crate::store::StoreError> for ServiceError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::internal(e)
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
