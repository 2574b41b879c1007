//! Every error that crosses a service boundary carries an [`ErrorCode`]. The
//! table in [`ErrorCode::spec`] is the only place that decides which gRPC code
//! and HTTP status a code becomes, and whether retrying is safe.

use std::fmt;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidArgument,
    MalformedJson,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unauthenticated,
    InvalidApiKey,
    ExpiredApiKey,
    RevokedApiKey,
    InvalidToken,
    ExpiredToken,
    UnknownTenant,
    InvalidSignature,
    Forbidden,
    UrlNotAllowed,
    NotFound,
    MethodNotAllowed,
    Conflict,
    RateLimited,
    Unavailable,
    Timeout,
    Upstream,
    Cancelled,
    NotImplemented,
    Internal,
}

/// How one code surfaces on each wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeSpec {
    pub grpc: tonic::Code,
    pub http: StatusCode,
    /// Whether repeating the same request may succeed without change. The
    /// worker leaves a message for redelivery only when this holds.
    pub retry_safe: bool,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::InvalidArgument,
        ErrorCode::MalformedJson,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Unauthenticated,
        ErrorCode::InvalidApiKey,
        ErrorCode::ExpiredApiKey,
        ErrorCode::RevokedApiKey,
        ErrorCode::InvalidToken,
        ErrorCode::ExpiredToken,
        ErrorCode::UnknownTenant,
        ErrorCode::InvalidSignature,
        ErrorCode::Forbidden,
        ErrorCode::UrlNotAllowed,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
        ErrorCode::Upstream,
        ErrorCode::Cancelled,
        ErrorCode::NotImplemented,
        ErrorCode::Internal,
    ];

    /// The table.
    pub const fn spec(self) -> CodeSpec {
        use tonic::Code as G;
        let (grpc, http, retry_safe) = match self {
            ErrorCode::InvalidArgument => (G::InvalidArgument, StatusCode::BAD_REQUEST, false),
            ErrorCode::MalformedJson => (G::InvalidArgument, StatusCode::BAD_REQUEST, false),
            ErrorCode::PayloadTooLarge => (G::ResourceExhausted, StatusCode::PAYLOAD_TOO_LARGE, false),
            ErrorCode::UnsupportedMediaType => (G::InvalidArgument, StatusCode::UNSUPPORTED_MEDIA_TYPE, false),
            ErrorCode::Unauthenticated => (G::Unauthenticated, StatusCode::UNAUTHORIZED, false),
            ErrorCode::InvalidApiKey => (G::Unauthenticated, StatusCode::UNAUTHORIZED, false),
            ErrorCode::ExpiredApiKey => (G::Unauthenticated, StatusCode::UNAUTHORIZED, false),
            ErrorCode::RevokedApiKey => (G::Unauthenticated, StatusCode::UNAUTHORIZED, false),
            ErrorCode::InvalidToken => (G::Unauthenticated, StatusCode::UNAUTHORIZED, false),
            ErrorCode::ExpiredToken => (G::Unauthenticated, StatusCode::UNAUTHORIZED, false),
            ErrorCode::UnknownTenant => (G::Unauthenticated, StatusCode::UNAUTHORIZED, false),
            ErrorCode::InvalidSignature => (G::Unauthenticated, StatusCode::UNAUTHORIZED, false),
            ErrorCode::Forbidden => (G::PermissionDenied, StatusCode::FORBIDDEN, false),
            ErrorCode::UrlNotAllowed => (G::PermissionDenied, StatusCode::FORBIDDEN, false),
            ErrorCode::NotFound => (G::NotFound, StatusCode::NOT_FOUND, false),
            ErrorCode::MethodNotAllowed => (G::Unimplemented, StatusCode::METHOD_NOT_ALLOWED, false),
            ErrorCode::Conflict => (G::AlreadyExists, StatusCode::CONFLICT, false),
            ErrorCode::RateLimited => (G::ResourceExhausted, StatusCode::TOO_MANY_REQUESTS, true),
            ErrorCode::Unavailable => (G::Unavailable, StatusCode::SERVICE_UNAVAILABLE, true),
            ErrorCode::Timeout => (G::DeadlineExceeded, StatusCode::GATEWAY_TIMEOUT, true),
            ErrorCode::Upstream => (G::Unavailable, StatusCode::BAD_GATEWAY, true),
            // The caller gave up; nothing was left half-done, so a retry is safe.
            ErrorCode::Cancelled => (G::Cancelled, StatusCode::CONFLICT, true),
            ErrorCode::NotImplemented => (G::Unimplemented, StatusCode::NOT_IMPLEMENTED, false),
            ErrorCode::Internal => (G::Internal, StatusCode::INTERNAL_SERVER_ERROR, false),
        };
        CodeSpec { grpc, http, retry_safe }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::ExpiredApiKey => "expired_api_key",
            ErrorCode::RevokedApiKey => "revoked_api_key",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::UnknownTenant => "unknown_tenant",
            ErrorCode::InvalidSignature => "invalid_signature",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::UrlNotAllowed => "url_not_allowed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Upstream => "upstream",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == s)
    }

    pub fn retry_safe(self) -> bool {
        self.spec().retry_safe
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every library error that can reach a caller.
pub trait HasErrorCode: std::error::Error {
    fn code(&self) -> ErrorCode;
}

/// An error as a caller sees it: a stable code and a message meant for them.
/// Internal detail stays in logs; 5xx messages are generic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error, utoipa::ToSchema)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// Converts any coded error, hiding the detail of server-side failures.
    /// The caller is expected to have logged `err` already.
    pub fn from_coded(err: &(impl HasErrorCode + ?Sized)) -> Self {
        let code = err.code();
        if code.spec().http.is_server_error() {
            Self::new(code, generic_message(code))
        } else {
            Self::new(code, err.to_string())
        }
    }
}

fn generic_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Unavailable => "a dependency is unavailable; retry later",
        ErrorCode::Timeout => "the operation timed out; retry later",
        ErrorCode::NotImplemented => "not implemented",
        _ => "internal error",
    }
}

/// JSON body of every HTTP error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ApiError,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.spec().http;
        (status, Json(ErrorBody { error: self })).into_response()
    }
}

impl From<ApiError> for tonic::Status {
    fn from(err: ApiError) -> Self {
        let mut status = tonic::Status::new(err.code.spec().grpc, err.message);
        if let Ok(value) = err.code.as_str().parse() {
            status.metadata_mut().insert("x-error-code", value);
        }
        status
    }
}

impl From<&tonic::Status> for ApiError {
    /// Recovers our code from a status we produced; otherwise maps by gRPC
    /// code. Every service of ours sends `x-error-code`, so a status without
    /// it is the transport's: an `Unknown`, `Internal`, `Aborted` or
    /// `DataLoss` there means the peer died or the connection broke before
    /// it answered (a killed server mid-call), which is an outage to retry,
    /// not a verdict on the request.
    fn from(status: &tonic::Status) -> Self {
        let code =
            status.metadata().get("x-error-code").and_then(|v| v.to_str().ok()).and_then(ErrorCode::parse).unwrap_or(
                match status.code() {
                    tonic::Code::InvalidArgument | tonic::Code::OutOfRange => ErrorCode::InvalidArgument,
                    tonic::Code::Unauthenticated => ErrorCode::Unauthenticated,
                    tonic::Code::PermissionDenied => ErrorCode::Forbidden,
                    tonic::Code::NotFound => ErrorCode::NotFound,
                    tonic::Code::AlreadyExists => ErrorCode::Conflict,
                    tonic::Code::ResourceExhausted => ErrorCode::RateLimited,
                    tonic::Code::Unavailable
                    | tonic::Code::Unknown
                    | tonic::Code::Internal
                    | tonic::Code::Aborted
                    | tonic::Code::DataLoss => ErrorCode::Unavailable,
                    tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => ErrorCode::Timeout,
                    tonic::Code::Unimplemented => ErrorCode::NotImplemented,
                    tonic::Code::Ok | tonic::Code::FailedPrecondition => ErrorCode::Internal,
                },
            );
        ApiError::new(code, status.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).expect("serialize");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn auth_codes_are_401_and_only_transient_codes_retry() {
        for code in [ErrorCode::InvalidApiKey, ErrorCode::ExpiredApiKey, ErrorCode::UnknownTenant] {
            assert_eq!(code.spec().http, StatusCode::UNAUTHORIZED);
        }
        let retryable: Vec<_> = ErrorCode::ALL.into_iter().filter(|c| c.retry_safe()).collect();
        assert_eq!(
            retryable,
            [
                ErrorCode::RateLimited,
                ErrorCode::Unavailable,
                ErrorCode::Timeout,
                ErrorCode::Upstream,
                ErrorCode::Cancelled
            ]
        );
    }

    #[test]
    fn a_transport_status_is_an_outage_and_ours_keeps_its_code() {
        for code in [tonic::Code::Unknown, tonic::Code::Internal, tonic::Code::Aborted, tonic::Code::DataLoss] {
            let transport = tonic::Status::new(code, "connection closed before message completed");
            assert_eq!(ApiError::from(&transport).code, ErrorCode::Unavailable, "{code:?}");
        }
        let ours: tonic::Status = ApiError::new(ErrorCode::Internal, "bug").into();
        assert_eq!(ApiError::from(&ours).code, ErrorCode::Internal);
        let conflict: tonic::Status = ApiError::new(ErrorCode::Conflict, "taken").into();
        assert_eq!(ApiError::from(&conflict).code, ErrorCode::Conflict);
    }

    #[test]
    fn grpc_status_keeps_the_code() {
        let status: tonic::Status = ApiError::new(ErrorCode::ExpiredApiKey, "expired").into();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert_eq!(ApiError::from(&status).code, ErrorCode::ExpiredApiKey);
    }
}
