//! The local-git provider: repositories addressed by URL or path, with no
//! hosting API. Fetches go through the git CLI into a bare cache; reads come
//! straight from git's object database, so no work tree is ever checked out.
//!
//! Every URL passes [`UrlPolicy`] first: only https and ssh, never a private,
//! loopback or link-local address unless the operator allow-listed it, and
//! `file://` only under allow-listed directories. The addresses the policy
//! checked are the ones git connects to (pinned with `http.curloptResolve`
//! and ssh's `HostName`), so a DNS answer cannot change between check and use.

mod local;
mod mirror;
mod policy;

pub use local::{LocalRepository, MergeTree, Signature, TreeEdit, check_branch, check_tree_path};
pub use mirror::{BlobReader, Change, ChangeKind, FetchOptions, HttpAuthorization, Mirror, TreeEntry};
pub use policy::{CheckedUrl, RepoLocation, UrlPolicy, is_public};

use devops_errors::{ErrorCode, HasErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid repository URL: {0}")]
    InvalidUrl(String),
    #[error("repository URL refused: {0}")]
    Forbidden(String),
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("repository exceeds the size limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("git {operation} failed: {message}")]
    Git { operation: &'static str, message: String },
    #[error("git {operation} timed out")]
    Timeout { operation: &'static str },
    #[error("{0} not found")]
    NotFound(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl HasErrorCode for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidUrl(_) => ErrorCode::InvalidArgument,
            Error::Forbidden(_) => ErrorCode::UrlNotAllowed,
            // Usually a mistyped host: nothing answers to that name.
            Error::Resolve { .. } => ErrorCode::NotFound,
            Error::Timeout { .. } => ErrorCode::Timeout,
            Error::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Git { .. } => ErrorCode::Upstream,
            Error::Io(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
