//! Code hosts behind one provider-agnostic trait, [`CloudProvider`]:
//! repositories, branches, commits from change sets, pull/merge requests
//! with diffs, comments and reviews, issues, and webhooks.
//!
//! - [`LocalGitHost`] keeps branches in a repository on this machine and the
//!   pull request records in the store. It works offline and is the
//!   reference the hosted providers must match.
//! - [`github::GitHub`] (REST v3; PAT or App installation token; any base
//!   URL, so GitHub Enterprise Server works) and [`gitlab::GitLab`] (REST v4,
//!   PAT, self-managed base URLs), over [`http::ApiClient`]: timeouts,
//!   rate limits honoured with bounded waits, pagination, one error mapping.
//! - [`Hosts`] is the factory: the provider for a tenant's repository,
//!   built from the tenant's [`connections`] with credentials decrypted
//!   only there.
//!
//! Text that comes back from a provider (titles, bodies, comments) has its
//! invisible and control characters stripped; code (file contents, patches)
//! is returned as it is, so the reviewer can see what is really there.

pub mod connections;
pub mod github;
pub mod gitlab;
pub mod http;
mod local;
pub mod webhooks;

use std::time::Duration;

use async_trait::async_trait;
use devops_errors::{ErrorCode, HasErrorCode};
use devops_models::{
    ChangeSet, Issue, IssueComment, IssueState, IssueUpdate, MergeMethod, MergeOutcome, NewComment, NewIssue,
    PullRequest, PullRequestComment, PullRequestState, PullRequestUpdate, TenantId,
};
use serde::Serialize;

pub use connections::{
    AuthKind, Connection, ConnectionCredentials, Connections, Hosts, NewConnection, ProviderKind, Sealer,
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
    #[error("{0}")]
    NotFound(String),
    /// The provider answered with an error status.
    #[error("{provider} answered {status}: {message}")]
    Http {
        provider: &'static str,
        status: u16,
        code: ErrorCode,
        message: String,
        /// When the provider said to come back (rate limits).
        retry_after: Option<Duration>,
    },
    /// No answer: refused, reset, timed out.
    #[error("{provider} unreachable: {reason}")]
    Transport { provider: &'static str, reason: String, timed_out: bool },
    /// The provider answered something we cannot read.
    #[error("{provider} answered unexpectedly: {reason}")]
    Decode { provider: &'static str, reason: String },
    /// The connection's credentials cannot be used (a key that cannot
    /// sign): the connection's state, fixed by rotating them.
    #[error("connection credentials: {0}")]
    Credentials(String),
    /// Stored credentials do not open (another data key, corruption).
    #[error("sealed credentials: {0}")]
    Sealed(String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error("{0}")]
    MalformedPayload(String),
}

impl HasErrorCode for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Error::Git(err) => err.code(),
            Error::Store(err) => err.code(),
            Error::Invalid(_) => ErrorCode::InvalidArgument,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::Unsupported(_) => ErrorCode::NotImplemented,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Http { code, .. } => *code,
            Error::Transport { timed_out: true, .. } => ErrorCode::Timeout,
            Error::Transport { .. } => ErrorCode::Unavailable,
            Error::Decode { .. } => ErrorCode::Upstream,
            Error::Credentials(_) => ErrorCode::Conflict,
            Error::Sealed(_) => ErrorCode::Internal,
            Error::InvalidSignature(_) => ErrorCode::InvalidSignature,
            Error::MalformedPayload(_) => ErrorCode::MalformedJson,
        }
    }
}

impl Error {
    /// Whether trying the same call again later is safe and may succeed:
    /// the provider was unreachable, overloaded or rate limiting, so the
    /// request had no effect.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Http { status, code, .. } => *code == ErrorCode::RateLimited || matches!(status, 502..=504),
            Error::Transport { .. } => true,
            Error::Git(err) => err.code().retry_safe(),
            Error::Store(err) => err.code().retry_safe(),
            _ => false,
        }
    }

    pub(crate) fn unsupported(provider: &str, what: &str) -> Self {
        Error::Unsupported(format!("{what} is not supported by the {provider} provider"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Files in one change set, and bytes in one file.
const MAX_FILES: usize = 1000;
const MAX_FILE_BYTES: usize = 10 << 20;

/// What every host checks before committing a change set.
pub(crate) fn check_changes(changes: &ChangeSet) -> Result<()> {
    if changes.files.is_empty() {
        return Err(Error::Invalid("a change set needs at least one file".into()));
    }
    if changes.files.len() > MAX_FILES {
        return Err(Error::Invalid(format!("a change set may hold at most {MAX_FILES} files")));
    }
    for file in &changes.files {
        devops_git::check_tree_path(&file.path)?;
        if file.content.len() > MAX_FILE_BYTES {
            return Err(Error::Invalid(format!("{} is larger than {MAX_FILE_BYTES} bytes", file.path)));
        }
    }
    Ok(())
}

pub(crate) fn check_title(title: &str) -> Result<()> {
    if title.trim().is_empty() || title.len() > 512 {
        return Err(Error::Invalid("a title must be 1-512 bytes".into()));
    }
    Ok(())
}

/// The title and body fields of an update, checked; `body_field` is the
/// host's name for the body (`body`, `description`).
pub(crate) fn edited_text(
    title: Option<&String>,
    body: Option<&String>,
    body_field: &str,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut fields = serde_json::Map::new();
    if let Some(title) = title {
        check_title(title)?;
        fields.insert("title".into(), title.clone().into());
    }
    if let Some(body) = body {
        fields.insert(body_field.into(), body.clone().into());
    }
    Ok(fields)
}

/// Prose from a host, with hidden characters stripped; empty when absent.
pub(crate) fn clean(text: Option<String>) -> String {
    text.map(|t| devops_models::sanitize::sanitize(&t).into_owned()).unwrap_or_default()
}

/// The repository path of an https or ssh URL, without `.git`
/// (`owner/name`, GitLab's `group/sub/project`).
pub(crate) fn repository_path(repository_url: &str) -> Result<String> {
    let raw = repository_url.trim();
    let path = if let Ok(url) = url::Url::parse(raw) {
        url.path().to_owned()
    } else if let Some((_, path)) = raw.split_once(':') {
        path.to_owned()
    } else {
        return Err(Error::Invalid(format!("{repository_url} is not a repository URL")));
    };
    let path = path.trim_matches('/').trim_end_matches(".git").trim_matches('/');
    if path.is_empty() || path.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return Err(Error::Invalid(format!("{repository_url} has no repository path")));
    }
    Ok(path.to_owned())
}

/// A branch name from the title: readable, and unique by its suffix.
pub(crate) fn branch_name(title: &str) -> String {
    let mut slug: String = title
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    slug.truncate(40);
    let slug = slug.trim_end_matches('-');
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    if slug.is_empty() { format!("devops-mcp/{suffix}") } else { format!("devops-mcp/{slug}-{suffix}") }
}

/// A hosted pull request's id in our API: stable, from where it lives.
pub(crate) fn pull_request_id(repository_url: &str, number: u64) -> uuid::Uuid {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("{repository_url}#pull/{number}").as_bytes())
}

/// A repository as its host describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RemoteRepository {
    /// `github`, `gitlab`, `local`.
    pub provider: String,
    /// The host's own id (GitHub repository id, GitLab project id).
    pub provider_id: String,
    /// `owner/name`, or GitLab's `group/subgroup/project`.
    pub full_name: String,
    pub description: String,
    pub default_branch: String,
    /// Without credentials; see [`CloudProvider::clone_url`].
    pub clone_url: String,
    pub web_url: String,
    pub private: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Branch {
    pub name: String,
    pub commit_sha: String,
    pub protected: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TreeEntryKind {
    File,
    Directory,
    Submodule,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TreeEntry {
    pub path: String,
    pub kind: TreeEntryKind,
    /// Bytes, when the host says.
    pub size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tree {
    pub entries: Vec<TreeEntry>,
    /// The host cut the listing short (GitHub: over 100 000 entries).
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Added,
    Modified,
    Removed,
    Renamed,
}

/// One file of a pull request's diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FilePatch {
    pub path: String,
    pub previous_path: Option<String>,
    pub status: FileStatus,
    pub additions: u32,
    pub deletions: u32,
    /// The unified-diff hunks; `None` for binary or oversized files.
    pub patch: Option<String>,
}

impl FilePatch {
    /// The patches as one unified diff, as `git diff` would print it.
    pub fn unified_diff(files: &[FilePatch]) -> String {
        let mut out = String::new();
        for file in files {
            let old = file.previous_path.as_deref().unwrap_or(&file.path);
            out.push_str(&format!("diff --git a/{old} b/{}\n", file.path));
            let (from, to) = match file.status {
                FileStatus::Added => ("/dev/null".to_owned(), format!("b/{}", file.path)),
                FileStatus::Removed => (format!("a/{old}"), "/dev/null".to_owned()),
                _ => (format!("a/{old}"), format!("b/{}", file.path)),
            };
            match &file.patch {
                Some(patch) if !patch.is_empty() => {
                    out.push_str(&format!("--- {from}\n+++ {to}\n"));
                    out.push_str(patch);
                    if !patch.ends_with('\n') {
                        out.push('\n');
                    }
                }
                _ => out.push_str(&format!("Binary files {from} and {to} differ\n")),
            }
        }
        out
    }
}

/// One page of a listing and the cursor of the next, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A clone URL with the credentials in it: used for one clone, never
/// logged or stored.
pub struct CloneUrl(String);

impl CloneUrl {
    pub fn new(url: String) -> Self {
        Self(url)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for CloneUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CloneUrl(<redacted>)")
    }
}

/// A user name and token for git over https. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct GitCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for GitCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GitCredentials {{ username: {}, password: <redacted> }}", self.username)
    }
}

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

/// A code host, for one tenant's repositories. Repositories are named by
/// their URL as registered; the host finds its own id from it.
///
/// The first group (pull requests) every host implements; the others have
/// defaults that answer `not_implemented`, for hosts that lack them.
#[async_trait]
pub trait CloudProvider: Send + Sync + 'static {
    /// `local`, `github`, `gitlab`, …
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
    /// Merges, or reports that it cannot (with the conflicting paths when
    /// the host says) and changes nothing.
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

    /// The pull request's files, each with its patch.
    async fn pull_request_files(
        &self,
        _tenant: TenantId,
        _repository_url: &str,
        _number: u64,
    ) -> Result<Vec<FilePatch>> {
        Err(Error::unsupported(self.provider(), "listing a pull request's files"))
    }

    async fn get_repository(&self, _tenant: TenantId, _repository_url: &str) -> Result<RemoteRepository> {
        Err(Error::unsupported(self.provider(), "describing a repository"))
    }
    /// The repositories the connection's credentials can see.
    async fn list_repositories(
        &self,
        _tenant: TenantId,
        _cursor: Option<&str>,
        _per_page: u32,
    ) -> Result<Page<RemoteRepository>> {
        Err(Error::unsupported(self.provider(), "listing repositories"))
    }
    /// Every path at `git_ref` (a branch, tag or commit).
    async fn tree(&self, _tenant: TenantId, _repository_url: &str, _git_ref: &str) -> Result<Tree> {
        Err(Error::unsupported(self.provider(), "listing a tree"))
    }
    async fn file_contents(
        &self,
        _tenant: TenantId,
        _repository_url: &str,
        _path: &str,
        _git_ref: &str,
    ) -> Result<Vec<u8>> {
        Err(Error::unsupported(self.provider(), "reading files"))
    }
    /// The URL to clone with, credentials injected: for one clone, now.
    async fn clone_url(&self, tenant: TenantId, repository_url: &str) -> Result<CloneUrl> {
        let repository = self.get_repository(tenant, repository_url).await?;
        let mut url = url::Url::parse(&repository.clone_url)
            .map_err(|err| Error::Decode { provider: self.provider(), reason: format!("clone URL: {err}") })?;
        if let Some(credentials) = self.git_credentials(tenant).await? {
            url.set_username(&credentials.username)
                .and_then(|()| url.set_password(Some(&credentials.password)))
                .map_err(|()| Error::Decode {
                    provider: self.provider(),
                    reason: "a clone URL without a host".into(),
                })?;
        }
        Ok(CloneUrl::new(url.to_string()))
    }
    /// Credentials for git over https, valid now; `None` for hosts that
    /// need none.
    async fn git_credentials(&self, _tenant: TenantId) -> Result<Option<GitCredentials>> {
        Ok(None)
    }

    async fn list_branches(
        &self,
        _tenant: TenantId,
        _repository_url: &str,
        _cursor: Option<&str>,
        _per_page: u32,
    ) -> Result<Page<Branch>> {
        Err(Error::unsupported(self.provider(), "listing branches"))
    }
    /// A new branch at `from` (a branch, tag or commit).
    async fn create_branch(
        &self,
        _tenant: TenantId,
        _repository_url: &str,
        _name: &str,
        _from: &str,
    ) -> Result<Branch> {
        Err(Error::unsupported(self.provider(), "creating branches"))
    }
    /// One commit on top of `branch` with `changes`; returns its sha.
    async fn commit_changes(
        &self,
        _tenant: TenantId,
        _repository_url: &str,
        _branch: &str,
        _changes: &ChangeSet,
    ) -> Result<String> {
        Err(Error::unsupported(self.provider(), "committing change sets"))
    }

    async fn create_issue(&self, _tenant: TenantId, _repository_url: &str, _issue: &NewIssue) -> Result<Issue> {
        Err(Error::unsupported(self.provider(), "issues"))
    }
    async fn get_issue(&self, _tenant: TenantId, _repository_url: &str, _number: u64) -> Result<Issue> {
        Err(Error::unsupported(self.provider(), "issues"))
    }
    async fn list_issues(
        &self,
        _tenant: TenantId,
        _repository_url: &str,
        _state: Option<IssueState>,
        _cursor: Option<&str>,
        _per_page: u32,
    ) -> Result<Page<Issue>> {
        Err(Error::unsupported(self.provider(), "issues"))
    }
    async fn update_issue(
        &self,
        _tenant: TenantId,
        _repository_url: &str,
        _number: u64,
        _update: &IssueUpdate,
    ) -> Result<Issue> {
        Err(Error::unsupported(self.provider(), "issues"))
    }
    async fn comment_on_issue(
        &self,
        _tenant: TenantId,
        _repository_url: &str,
        _number: u64,
        _body: &str,
    ) -> Result<IssueComment> {
        Err(Error::unsupported(self.provider(), "issues"))
    }

    /// How this host signs and shapes its webhooks.
    fn webhooks(&self) -> Option<&'static dyn webhooks::WebhookFormat> {
        None
    }
}
