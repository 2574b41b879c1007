//! What every service shares at run time: start-up (config, telemetry,
//! back ends), graceful shutdown, `/healthz`, `/readyz` and `/metrics`,
//! authentication, HTTP error handling and gRPC serving.

pub mod auth;
pub mod backends;
pub mod bootstrap;
pub mod clients;
pub mod grpc;
pub mod http;
pub mod jwt;
pub mod ops;
pub mod outbox;
pub mod providers;

use devops_errors::{ErrorCode, HasErrorCode};

pub use backends::{Backend, Backends};
pub use bootstrap::{ServiceContext, service_main};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] devops_config::Error),
    #[error("store: {0}")]
    Store(#[from] devops_store::Error),
    #[error(transparent)]
    Adapter(#[from] devops_adapters::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("this service needs the {0} back end, which was not connected")]
    MissingBackend(&'static str),
    #[error("telemetry: {0}")]
    Telemetry(#[from] devops_telemetry::Error),
    #[error("providers: {0}")]
    Providers(#[from] devops_providers::Error),
}

impl HasErrorCode for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Error::Config(_) => ErrorCode::InvalidArgument,
            Error::Store(err) => err.code(),
            Error::Adapter(err) => err.code(),
            Error::Providers(err) => err.code(),
            Error::Bind { .. } | Error::Serve(_) | Error::MissingBackend(_) | Error::Telemetry(_) => {
                ErrorCode::Internal
            }
        }
    }
}

impl Error {
    /// sysexits: 64 for a bad configuration, 69 for a dependency that is
    /// unavailable at start, 70 for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => 64,
            Error::Store(devops_store::Error::SchemaMismatch { .. }) => 69,
            err if err.code() == ErrorCode::Unavailable => 69,
            _ => 70,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
