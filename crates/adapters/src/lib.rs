//! Infrastructure adapters. One trait per external system, shaped by what our
//! services need rather than by the SDK, each with a production
//! implementation and an embedded one:
//!
//! | trait | production | embedded |
//! |---|---|---|
//! | [`queue::Queue`] | SQS with a redrive-policy DLQ | SQLite file with the same semantics |
//! | [`blob::BlobStore`] | S3 | local directory |
//! | [`cache::Cache`] | Redis | in-process map |
//! | [`secrets::Secrets`] | AWS Secrets Manager | files plus environment |
//!
//! Services hold them as `Arc<dyn Trait>`. The shared test suite in the
//! integration-test crate runs against both implementations of each.

pub mod aws;
pub mod blob;
pub mod cache;
pub mod queue;
pub mod secrets;

use devops_errors::{ErrorCode, HasErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{backend} unavailable: {reason}")]
    Unavailable { backend: &'static str, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{backend} error: {reason}")]
    Backend { backend: &'static str, reason: String },
}

impl Error {
    pub(crate) fn unavailable(backend: &'static str, err: impl std::fmt::Display) -> Self {
        Error::Unavailable { backend, reason: err.to_string() }
    }

    pub(crate) fn backend(backend: &'static str, err: impl std::fmt::Display) -> Self {
        Error::Backend { backend, reason: err.to_string() }
    }
}

impl HasErrorCode for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Error::Unavailable { .. } => ErrorCode::Unavailable,
            Error::Invalid(_) => ErrorCode::InvalidArgument,
            Error::Backend { .. } => ErrorCode::Internal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Classifies an AWS SDK error: transport failures and throttling are
/// `Unavailable` (retry-safe), the rest are backend errors.
pub(crate) fn aws_error<E, R>(backend: &'static str, err: aws_sdk_sqs::error::SdkError<E, R>) -> Error
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sqs::error::SdkError;
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            Error::unavailable(backend, DisplayErrorContext(&err))
        }
        SdkError::ResponseError(_) => Error::unavailable(backend, DisplayErrorContext(&err)),
        _ => Error::backend(backend, DisplayErrorContext(&err)),
    }
}

use aws_sdk_sqs::error::DisplayErrorContext;
