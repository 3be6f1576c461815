//! Errors on the wire: every refusal (from a service, or from the HTTP layer itself: path,
//! query, body, method) answers `evidence_protocol::api::ApiError` as JSON, with the status
//! of its [`ErrorCode`] (mapped here, once) and `Retry-After` when there is one.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use evidence_protocol::api::ApiError;

use crate::service::{ErrorCode, ServiceError};

/// The HTTP status of each error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        MalformedJson | BadEncoding | BadPath | BadQuery | BadTime => StatusCode::BAD_REQUEST,
        MissingSignature | BadSignature | UnknownKey | UnknownHost | MissingToken | BadToken => {
            StatusCode::UNAUTHORIZED
        }
        KeyNotActive
        | IdentityMismatch
        | BadSecret
        | SecretExpired
        | SecretRevoked
        | SecretUsed
        | SecretForAnotherHost
        | KeyChangeNeedsApproval
        | HostRevoked
        | Forbidden => StatusCode::FORBIDDEN,
        NotFound => StatusCode::NOT_FOUND,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        KeyInUse
        | TooManyPendingKeys
        | RevokedHostCannotBeRekeyed
        | ReplayedSequence
        | AttestationMismatch
        | LastAdminToken => StatusCode::CONFLICT,
        BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        SchemaMismatch
        | InvalidField
        | WeakPublicKey
        | ClockSkew
        | CollectedBeforeEnrollment
        | InvalidPolicy => StatusCode::UNPROCESSABLE_ENTITY,
        RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ServerBusy | ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A refusal on its way to the client.
#[derive(Debug)]
pub struct ApiErr(pub ServiceError);

impl From<ServiceError> for ApiErr {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

impl From<crate::store::StoreError> for ApiErr {
    fn from(e: crate::store::StoreError) -> Self {
        Self(e.into())
    }
}

impl ApiErr {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(ServiceError::new(code, message))
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let e = self.0;
        let mut response = (
            status_of(e.code),
            Json(ApiError {
                error: e.code.as_str().to_string(),
                message: e.message,
            }),
        )
            .into_response();
        if let Some(secs) = e.retry_after {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(secs));
        }
        response
    }
}

impl From<PathRejection> for ApiErr {
    fn from(e: PathRejection) -> Self {
        Self::new(ErrorCode::BadPath, e.body_text())
    }
}

impl From<QueryRejection> for ApiErr {
    fn from(e: QueryRejection) -> Self {
        Self::new(ErrorCode::BadQuery, e.body_text())
    }
}

/// Path parameters, refused as JSON.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiErr))]
pub struct Path<T>(pub T);

/// Query parameters, refused as JSON.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiErr))]
pub struct Query<T>(pub T);

/// No route has this path.
pub async fn no_route() -> ApiErr {
    ApiErr::new(ErrorCode::NotFound, "no such endpoint")
}

/// The path exists, the method does not.
pub async fn no_method() -> ApiErr {
    ApiErr::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not take this method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_agent_refusal_keeps_the_status_clients_already_handle() {
        assert_eq!(status_of(ErrorCode::ReplayedSequence), StatusCode::CONFLICT);
        assert_eq!(status_of(ErrorCode::HostRevoked), StatusCode::FORBIDDEN);
        assert_eq!(
            status_of(ErrorCode::RevokedHostCannotBeRekeyed),
            StatusCode::CONFLICT
        );
        assert_eq!(
            ErrorCode::RevokedHostCannotBeRekeyed.as_str(),
            "host_revoked"
        );
        assert_eq!(
            status_of(ErrorCode::ShuttingDown),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
