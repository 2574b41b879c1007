//! Pull requests on any code host, behind [`CodeHost`]. The local-git host
//! ([`LocalGitHost`]) keeps branches in the repository itself and the pull
//! request records in the store, and merges with git: it works offline and
//! is the reference the hosted providers must match.

mod local;

use async_trait::async_trait;
use devops_errors::{ErrorCode, HasErrorCode};
use devops_models::{
    ChangeSet, MergeMethod, MergeOutcome, NewComment, PullRequest, PullRequestComment, PullRequestState,
    PullRequestUpdate, TenantId,
};

pub use local::LocalGitHost;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Git(#[from] devops_git::Error),
    #[error(transparent)]
    Store(#[from] devops_store::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unsupported(String),
}

impl HasErrorCode for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Error::Git(err) => err.code(),
            Error::Store(err) => err.code(),
            Error::Invalid(_) => ErrorCode::InvalidArgument,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::Unsupported(_) => ErrorCode::NotImplemented,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One inline comment of a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineComment {
    pub path: String,
    pub line: u32,
    pub body: String,
    pub fingerprint: String,
}

/// A review to post in one call: a summary and inline comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPost {
    pub summary: String,
    /// The summary an earlier review posted: edited, not duplicated.
    pub summary_comment_id: Option<String>,
    pub inline: Vec<InlineComment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedReview {
    pub summary_comment_id: String,
    pub inline_posted: usize,
}

/// A code host's pull requests, for one tenant's repositories.
#[async_trait]
pub trait CodeHost: Send + Sync + 'static {
    /// `local`, `github`, …
    fn provider(&self) -> &'static str;
    /// A branch and a commit from `changes`, and a pull request from them.
    async fn create_pull_request(
        &self,
        tenant: TenantId,
        repository_url: &str,
        title: &str,
        body: &str,
        changes: &ChangeSet,
    ) -> Result<PullRequest>;
    /// The pull request with its source branch's current head.
    async fn get_pull_request(&self, tenant: TenantId, repository_url: &str, number: u64) -> Result<PullRequest>;
    /// Newest first, numbers below `before` when given.
    async fn list_pull_requests(
        &self,
        tenant: TenantId,
        repository_url: &str,
        state: Option<PullRequestState>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<PullRequest>>;
    /// Title, body, and open/closed state.
    async fn update_pull_request(
        &self,
        tenant: TenantId,
        repository_url: &str,
        number: u64,
        update: &PullRequestUpdate,
    ) -> Result<PullRequest>;
    /// Merges, or reports the conflicting paths and changes nothing.
    async fn merge_pull_request(
        &self,
        tenant: TenantId,
        repository_url: &str,
        number: u64,
        method: MergeMethod,
    ) -> Result<MergeOutcome>;
    async fn comment(
        &self,
        tenant: TenantId,
        repository_url: &str,
        number: u64,
        comment: &NewComment,
    ) -> Result<PullRequestComment>;
    /// What the pull request changes, as a unified diff against its target.
    async fn diff(&self, tenant: TenantId, repository_url: &str, number: u64) -> Result<String>;
    async fn post_review(
        &self,
        tenant: TenantId,
        repository_url: &str,
        number: u64,
        review: &ReviewPost,
    ) -> Result<PostedReview>;
}

/// The host serving each repository URL.
#[derive(Clone)]
pub struct Hosts {
    local: std::sync::Arc<LocalGitHost>,
}

impl Hosts {
    pub fn new(local: LocalGitHost) -> Self {
        Self { local: std::sync::Arc::new(local) }
    }

    /// The host of `repository_url`. Hosted providers (GitHub, GitLab, …)
    /// are not wired yet: their repositories get `not_implemented`.
    pub fn for_url(&self, repository_url: &str) -> Result<std::sync::Arc<dyn CodeHost>> {
        if LocalGitHost::serves(repository_url) {
            Ok(self.local.clone())
        } else {
            Err(Error::Unsupported(format!(
                "pull requests on {repository_url} need a hosted provider, which this build does not have yet; \
                 local repositories work"
            )))
        }
    }
}
