//! GitHub's REST API (v3), at api.github.com or a GitHub Enterprise Server
//! base URL (`https://ghe.example.com/api/v3`). Authenticates with a
//! personal access token or as a GitHub App installation: an RS256 JWT
//! signed with the app's key buys an installation token, cached until a
//! minute before it expires.
//!
//! Change sets become commits through the git data API (blobs, a tree on
//! the base tree, a commit, a ref), so nothing is cloned.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use devops_git::UrlPolicy;
use devops_models::sanitize::sanitize;
use devops_models::{
    ChangeSet, FileChangeKind, Issue, IssueComment, IssueState, IssueUpdate, MergeMethod, MergeOutcome, NewComment,
    NewIssue, PullRequest, PullRequestComment, PullRequestState, PullRequestUpdate, TenantId,
};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::http::{ApiClient, ApiResponse, ClientSettings, secret_header};
use crate::webhooks::{GITHUB, WebhookFormat};
use crate::{
    Branch, CloudProvider, Error, FilePatch, FileStatus, GitCredentials, Page, PostedReview, RemoteRepository, Result,
    ReviewPost, Tree, TreeEntry, TreeEntryKind, clean,
};

const PROVIDER: &str = "github";
pub const DEFAULT_BASE_URL: &str = "https://api.github.com";
/// Pages fetched for one listing at most (100 items each).
const MAX_PAGES: usize = 50;

/// How the connection authenticates.
pub enum GitHubAuth {
    Token(String),
    App { app_id: String, private_key_pem: String, installation_id: u64 },
}

struct InstallationToken {
    token: String,
    /// Refreshed a minute before GitHub's expiry.
    refresh_at: SystemTime,
}

pub struct GitHub {
    api: ApiClient,
    auth: GitHubAuth,
    app_token: Mutex<Option<InstallationToken>>,
}

impl GitHub {
    pub fn new(base_url: &str, auth: GitHubAuth, policy: &UrlPolicy, settings: ClientSettings) -> Result<Self> {
        let base = crate::http::check_base_url(policy, base_url)?;
        let mut headers = HeaderMap::new();
        // GitHub's media type first; plain JSON is what it also serves.
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json, application/json;q=0.9"),
        );
        headers.insert(HeaderName::from_static("x-github-api-version"), HeaderValue::from_static("2022-11-28"));
        let api = ApiClient::new(PROVIDER, base, policy, settings, headers)?;
        Ok(Self { api, auth, app_token: Mutex::new(None) })
    }

    async fn auth_headers(&self) -> Result<HeaderMap> {
        match &self.auth {
            GitHubAuth::Token(token) => secret_header(AUTHORIZATION, &format!("Bearer {token}")),
            GitHubAuth::App { .. } => {
                let token = self.installation_token().await?;
                secret_header(AUTHORIZATION, &format!("Bearer {token}"))
            }
        }
    }

    /// The cached installation token, or a new one.
    async fn installation_token(&self) -> Result<String> {
        let GitHubAuth::App { app_id, private_key_pem, installation_id } = &self.auth else {
            return Err(Error::Sealed("not a GitHub App connection".into()));
        };
        let mut cached = self.app_token.lock().await;
        if let Some(token) = cached.as_ref()
            && SystemTime::now() < token.refresh_at
        {
            return Ok(token.token.clone());
        }
        let jwt = app_jwt(app_id, private_key_pem, SystemTime::now())?;
        let auth = secret_header(AUTHORIZATION, &format!("Bearer {jwt}"))?;
        let response = self
            .api
            .send(Method::POST, &format!("app/installations/{installation_id}/access_tokens"), &auth, None)
            .await?;
        #[derive(Deserialize)]
        struct Minted {
            token: String,
            expires_at: DateTime<Utc>,
        }
        let minted: Minted = response.json(PROVIDER)?;
        let expires: SystemTime = minted.expires_at.into();
        let refresh_at = expires.checked_sub(Duration::from_secs(60)).unwrap_or(UNIX_EPOCH);
        *cached = Some(InstallationToken { token: minted.token.clone(), refresh_at });
        Ok(minted.token)
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<ApiResponse> {
        let auth = self.auth_headers().await?;
        self.api.send(method, path, &auth, body).await
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T> {
        self.call(Method::GET, path, None).await?.json(PROVIDER)
    }

    async fn send<T: for<'de> Deserialize<'de>>(&self, method: Method, path: &str, body: &Value) -> Result<T> {
        self.call(method, path, Some(body)).await?.json(PROVIDER)
    }

    /// One page of a listing; the cursor is the next page's URL.
    async fn page<T: for<'de> Deserialize<'de>>(&self, first: &str, cursor: Option<&str>) -> Result<Page<T>> {
        let response = self.call(Method::GET, cursor.unwrap_or(first), None).await?;
        Ok(Page { items: response.json(PROVIDER)?, next: response.next_link() })
    }

    /// Every page of a page-numbered listing, up to [`MAX_PAGES`] of 100.
    /// Stops at a short page as well as at the last `Link`: an answer
    /// whose `Link` points elsewhere is never followed with our token.
    async fn all<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<Vec<T>> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        for page in 1..=MAX_PAGES {
            let response = self.call(Method::GET, &format!("{path}{separator}per_page=100&page={page}"), None).await?;
            let batch: Vec<T> = response.json(PROVIDER)?;
            let last = batch.len() < 100 || response.next_link().is_none();
            items.extend(batch);
            if last {
                break;
            }
        }
        Ok(items)
    }

    async fn head_commit(&self, repo: &RepoPath, git_ref: &str) -> Result<String> {
        #[derive(Deserialize)]
        struct Commit {
            sha: String,
        }
        let commit: Commit = self.get(&format!("{}/commits/{}", repo.api(), crate::http::segment(git_ref))).await?;
        Ok(commit.sha)
    }

    async fn pull(&self, repository_url: &str, number: u64) -> Result<(RepoPath, GhPull)> {
        let repo = RepoPath::parse(repository_url)?;
        let pull = self.get(&format!("{}/pulls/{number}", repo.api())).await?;
        Ok((repo, pull))
    }
}

/// The JWT a GitHub App signs to ask for an installation token: issued a
/// minute in the past against clock drift, valid for nine minutes.
pub fn app_jwt(app_id: &str, private_key_pem: &str, now: SystemTime) -> Result<String> {
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        iat: u64,
        exp: u64,
        iss: &'a str,
    }
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
        .map_err(|err| Error::Credentials(format!("the GitHub App private key is not an RSA PEM key: {err}")))?;
    let claims = Claims { iat: now.saturating_sub(60), exp: now + 540, iss: app_id };
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &key)
        .map_err(|err| Error::Credentials(format!("signing the GitHub App JWT: {err}")))
}

/// `owner/name` from a repository URL (`https://github.com/owner/name.git`,
/// `git@github.com:owner/name.git`).
struct RepoPath {
    owner: String,
    name: String,
}

impl RepoPath {
    fn parse(repository_url: &str) -> Result<Self> {
        let path = crate::repository_path(repository_url)?;
        match path.split('/').collect::<Vec<_>>().as_slice() {
            [owner, name] if !owner.is_empty() && !name.is_empty() => {
                Ok(Self { owner: (*owner).to_owned(), name: (*name).to_owned() })
            }
            _ => Err(Error::Invalid(format!("{repository_url} is not a GitHub repository URL (owner/name)"))),
        }
    }

    fn api(&self) -> String {
        format!("repos/{}/{}", crate::http::segment(&self.owner), crate::http::segment(&self.name))
    }
}

#[derive(Deserialize)]
struct GhRepository {
    id: u64,
    full_name: String,
    description: Option<String>,
    default_branch: Option<String>,
    clone_url: String,
    html_url: String,
    #[serde(default)]
    private: bool,
}

impl GhRepository {
    fn into_domain(self) -> RemoteRepository {
        RemoteRepository {
            provider: PROVIDER.into(),
            provider_id: self.id.to_string(),
            full_name: self.full_name,
            description: clean(self.description),
            default_branch: self.default_branch.unwrap_or_else(|| "main".into()),
            clone_url: self.clone_url,
            web_url: self.html_url,
            private: self.private,
        }
    }
}

#[derive(Deserialize)]
struct GhRef {
    #[serde(rename = "ref")]
    name: String,
    sha: String,
}

#[derive(Deserialize)]
struct GhPull {
    number: u64,
    title: String,
    body: Option<String>,
    state: String,
    merged_at: Option<String>,
    merge_commit_sha: Option<String>,
    head: GhRef,
    base: GhRef,
    html_url: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl GhPull {
    fn into_domain(self, tenant: TenantId, repository_url: &str) -> PullRequest {
        let state = match (self.state.as_str(), self.merged_at.is_some()) {
            (_, true) => PullRequestState::Merged,
            ("open", _) => PullRequestState::Open,
            _ => PullRequestState::Closed,
        };
        PullRequest {
            id: crate::pull_request_id(repository_url, self.number),
            tenant_id: tenant,
            repository_url: repository_url.to_owned(),
            number: self.number,
            provider: PROVIDER.into(),
            title: sanitize(&self.title).into_owned(),
            body: clean(self.body),
            source_branch: self.head.name,
            target_branch: self.base.name,
            base_sha: self.base.sha,
            head_sha: self.head.sha,
            merge_commit: if state == PullRequestState::Merged { self.merge_commit_sha } else { None },
            state,
            url: self.html_url,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Deserialize)]
struct GhUser {
    login: String,
}

#[derive(Deserialize)]
struct GhLabel {
    name: String,
}

#[derive(Deserialize)]
struct GhIssue {
    id: u64,
    number: u64,
    title: String,
    body: Option<String>,
    state: String,
    #[serde(default)]
    labels: Vec<GhLabel>,
    #[serde(default)]
    assignees: Option<Vec<GhUser>>,
    user: Option<GhUser>,
    html_url: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Present when the "issue" is a pull request.
    pull_request: Option<Value>,
}

impl GhIssue {
    fn into_domain(self) -> Issue {
        Issue {
            number: self.number,
            provider_id: self.id.to_string(),
            title: sanitize(&self.title).into_owned(),
            body: clean(self.body),
            state: if self.state == "open" { IssueState::Open } else { IssueState::Closed },
            labels: self.labels.into_iter().map(|l| sanitize(&l.name).into_owned()).collect(),
            assignees: self.assignees.unwrap_or_default().into_iter().map(|u| u.login).collect(),
            author: self.user.map(|u| u.login).unwrap_or_default(),
            url: self.html_url,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Deserialize)]
struct GhComment {
    id: u64,
    body: Option<String>,
    user: Option<GhUser>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct GhFile {
    filename: String,
    previous_filename: Option<String>,
    status: String,
    #[serde(default)]
    additions: u32,
    #[serde(default)]
    deletions: u32,
    patch: Option<String>,
}

impl GhFile {
    fn into_domain(self) -> FilePatch {
        let status = match self.status.as_str() {
            "added" => FileStatus::Added,
            "removed" => FileStatus::Removed,
            "renamed" => FileStatus::Renamed,
            _ => FileStatus::Modified,
        };
        FilePatch {
            path: self.filename,
            previous_path: self.previous_filename,
            status,
            additions: self.additions,
            deletions: self.deletions,
            patch: self.patch,
        }
    }
}

fn state_param(state: Option<PullRequestState>) -> &'static str {
    match state {
        Some(PullRequestState::Open) => "open",
        // Merged pull requests are closed ones; filtered after.
        Some(PullRequestState::Closed | PullRequestState::Merged) => "closed",
        None => "all",
    }
}

fn per_page(requested: u32) -> u32 {
    requested.clamp(1, 100)
}

#[async_trait]
impl CloudProvider for GitHub {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn create_pull_request(
        &self,
        tenant: TenantId,
        repository_url: &str,
        title: &str,
        body: &str,
        changes: &ChangeSet,
    ) -> Result<PullRequest> {
        crate::check_title(title)?;
        crate::check_changes(changes)?;
        let repo = RepoPath::parse(repository_url)?;
        let target = if changes.base_ref.is_empty() {
            self.get_repository(tenant, repository_url).await?.default_branch
        } else {
            changes.base_ref.clone()
        };
        let branch = crate::branch_name(title);
        self.create_branch(tenant, repository_url, &branch, &target).await?;
        let mut commit = changes.clone();
        if commit.message.trim().is_empty() {
            commit.message = title.to_owned();
        }
        let opened = async {
            self.commit_changes(tenant, repository_url, &branch, &commit).await?;
            self.send::<GhPull>(
                Method::POST,
                &format!("{}/pulls", repo.api()),
                &json!({ "title": title, "body": body, "head": branch, "base": target }),
            )
            .await
        };
        match opened.await {
            Ok(pull) => Ok(pull.into_domain(tenant, repository_url)),
            Err(err) => {
                // No pull request: the branch made for it goes too.
                let path = format!("{}/git/refs/{}", repo.api(), crate::http::segment(&format!("heads/{branch}")));
                if let Err(cleanup) = self.call(Method::DELETE, &path, None).await {
                    tracing::warn!(%branch, error = %cleanup, "could not delete the branch of a failed pull request");
                }
                Err(err)
            }
        }
    }

    async fn get_pull_request(&self, tenant: TenantId, repository_url: &str, number: u64) -> Result<PullRequest> {
        let (_, pull) = self.pull(repository_url, number).await?;
        Ok(pull.into_domain(tenant, repository_url))
    }

    async fn list_pull_requests(
        &self,
        tenant: TenantId,
        repository_url: &str,
        state: Option<PullRequestState>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<PullRequest>> {
        let repo = RepoPath::parse(repository_url)?;
        let path = format!("{}/pulls?state={}&sort=created&direction=desc", repo.api(), state_param(state));
        let mut found = Vec::new();
        for page in 1..=MAX_PAGES {
            let response = self.call(Method::GET, &format!("{path}&per_page=100&page={page}"), None).await?;
            let batch: Vec<GhPull> = response.json(PROVIDER)?;
            let last = batch.len() < 100 || response.next_link().is_none();
            for pull in batch {
                let pull = pull.into_domain(tenant, repository_url);
                if state.is_none_or(|s| s == pull.state) && before.is_none_or(|b| pull.number < b) {
                    found.push(pull);
                }
                if found.len() >= limit as usize {
                    return Ok(found);
                }
            }
            if last {
                break;
            }
        }
        Ok(found)
    }

    async fn update_pull_request(
        &self,
        tenant: TenantId,
        repository_url: &str,
        number: u64,
        update: &PullRequestUpdate,
    ) -> Result<PullRequest> {
        let repo = RepoPath::parse(repository_url)?;
        let mut body = crate::edited_text(update.title.as_ref(), update.body.as_ref(), "body")?;
        match update.state {
            Some(PullRequestState::Merged) => {
                return Err(Error::Invalid("merge a pull request with merge, not by setting its state".into()));
            }
            Some(state) => {
                body.insert("state".into(), json!(state.as_str()));
            }
            None => {}
        }
        let pull: GhPull =
            self.send(Method::PATCH, &format!("{}/pulls/{number}", repo.api()), &Value::Object(body)).await?;
        Ok(pull.into_domain(tenant, repository_url))
    }

    async fn merge_pull_request(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        number: u64,
        method: MergeMethod,
    ) -> Result<MergeOutcome> {
        let repo = RepoPath::parse(repository_url)?;
        let method = match method {
            MergeMethod::Merge => "merge",
            MergeMethod::Squash => "squash",
            MergeMethod::Rebase => "rebase",
        };
        let result = self
            .call(
                Method::PUT,
                &format!("{}/pulls/{number}/merge", repo.api()),
                Some(&json!({ "merge_method": method })),
            )
            .await;
        match result {
            Ok(response) => {
                #[derive(Deserialize)]
                struct Merged {
                    sha: Option<String>,
                    merged: bool,
                }
                let merged: Merged = response.json(PROVIDER)?;
                Ok(MergeOutcome { merged: merged.merged, merge_commit: merged.sha, conflicts: Vec::new() })
            }
            // 405: not mergeable (conflicts, checks, reviews); GitHub does
            // not say which paths.
            Err(Error::Http { status: 405, .. }) => {
                Ok(MergeOutcome { merged: false, merge_commit: None, conflicts: Vec::new() })
            }
            Err(Error::Http { status: 409, message, .. }) => Err(Error::Conflict(message)),
            Err(err) => Err(err),
        }
    }

    async fn comment(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        number: u64,
        comment: &NewComment,
    ) -> Result<PullRequestComment> {
        let (repo, pull) = self.pull(repository_url, number).await?;
        let posted: GhComment = match (&comment.path, comment.line) {
            (Some(path), Some(line)) => {
                devops_git::check_tree_path(path)?;
                let body = json!({
                    "body": comment.body, "commit_id": pull.head.sha, "path": path, "line": line, "side": "RIGHT",
                });
                self.send(Method::POST, &format!("{}/pulls/{number}/comments", repo.api()), &body).await?
            }
            (None, None) => {
                self.send(
                    Method::POST,
                    &format!("{}/issues/{number}/comments", repo.api()),
                    &json!({ "body": comment.body }),
                )
                .await?
            }
            _ => return Err(Error::Invalid("an inline comment needs both path and line".into())),
        };
        Ok(PullRequestComment {
            id: uuid::Uuid::new_v5(&crate::pull_request_id(repository_url, number), posted.id.to_string().as_bytes()),
            pull_request_id: crate::pull_request_id(repository_url, number),
            body: clean(posted.body),
            path: comment.path.clone(),
            line: comment.line,
            fingerprint: comment.fingerprint.clone(),
            created_at: posted.created_at,
            updated_at: posted.updated_at,
        })
    }

    async fn diff(&self, tenant: TenantId, repository_url: &str, number: u64) -> Result<String> {
        Ok(FilePatch::unified_diff(&self.pull_request_files(tenant, repository_url, number).await?))
    }

    async fn pull_request_files(&self, _tenant: TenantId, repository_url: &str, number: u64) -> Result<Vec<FilePatch>> {
        let repo = RepoPath::parse(repository_url)?;
        let files: Vec<GhFile> = self.all(&format!("{}/pulls/{number}/files", repo.api())).await?;
        Ok(files.into_iter().map(GhFile::into_domain).collect())
    }

    async fn post_review(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        number: u64,
        review: &ReviewPost,
    ) -> Result<PostedReview> {
        let (repo, pull) = self.pull(repository_url, number).await?;
        let edited = match review.summary_comment_id.as_deref() {
            Some(id) if id.bytes().all(|b| b.is_ascii_digit()) && !id.is_empty() => {
                let path = format!("{}/issues/comments/{id}", repo.api());
                match self.send::<GhComment>(Method::PATCH, &path, &json!({ "body": review.summary })).await {
                    Ok(comment) => Some(comment.id),
                    // Deleted on GitHub since: post a new one.
                    Err(Error::Http { status: 404, .. }) => None,
                    Err(err) => return Err(err),
                }
            }
            _ => None,
        };
        let summary_id = match edited {
            Some(id) => id,
            None => {
                let path = format!("{}/issues/{number}/comments", repo.api());
                self.send::<GhComment>(Method::POST, &path, &json!({ "body": review.summary })).await?.id
            }
        };
        if !review.inline.is_empty() {
            let comments: Vec<Value> = review
                .inline
                .iter()
                .map(|c| json!({ "path": c.path, "line": c.line, "side": "RIGHT", "body": c.body }))
                .collect();
            let body = json!({ "commit_id": pull.head.sha, "event": "COMMENT", "comments": comments });
            self.call(Method::POST, &format!("{}/pulls/{number}/reviews", repo.api()), Some(&body)).await?;
        }
        Ok(PostedReview { summary_comment_id: summary_id.to_string(), inline_posted: review.inline.len() })
    }

    async fn get_repository(&self, _tenant: TenantId, repository_url: &str) -> Result<RemoteRepository> {
        let repo = RepoPath::parse(repository_url)?;
        Ok(self.get::<GhRepository>(&repo.api()).await?.into_domain())
    }

    async fn list_repositories(
        &self,
        _tenant: TenantId,
        cursor: Option<&str>,
        per_page_hint: u32,
    ) -> Result<Page<RemoteRepository>> {
        let per_page = per_page(per_page_hint);
        match &self.auth {
            GitHubAuth::Token(_) => {
                let page: Page<GhRepository> =
                    self.page(&format!("user/repos?per_page={per_page}&sort=full_name"), cursor).await?;
                Ok(Page { items: page.items.into_iter().map(GhRepository::into_domain).collect(), next: page.next })
            }
            GitHubAuth::App { .. } => {
                #[derive(Deserialize)]
                struct Installation {
                    repositories: Vec<GhRepository>,
                }
                let response = self
                    .call(
                        Method::GET,
                        cursor.unwrap_or(&format!("installation/repositories?per_page={per_page}")),
                        None,
                    )
                    .await?;
                let listed: Installation = response.json(PROVIDER)?;
                Ok(Page {
                    items: listed.repositories.into_iter().map(GhRepository::into_domain).collect(),
                    next: response.next_link(),
                })
            }
        }
    }

    async fn tree(&self, _tenant: TenantId, repository_url: &str, git_ref: &str) -> Result<Tree> {
        let repo = RepoPath::parse(repository_url)?;
        #[derive(Deserialize)]
        struct Entry {
            path: String,
            #[serde(rename = "type")]
            kind: String,
            size: Option<u64>,
        }
        #[derive(Deserialize)]
        struct GhTree {
            tree: Vec<Entry>,
            #[serde(default)]
            truncated: bool,
        }
        let tree: GhTree =
            self.get(&format!("{}/git/trees/{}?recursive=1", repo.api(), crate::http::segment(git_ref))).await?;
        let entries = tree
            .tree
            .into_iter()
            .map(|e| TreeEntry {
                kind: match e.kind.as_str() {
                    "tree" => TreeEntryKind::Directory,
                    "commit" => TreeEntryKind::Submodule,
                    _ => TreeEntryKind::File,
                },
                path: e.path,
                size: e.size,
            })
            .collect();
        Ok(Tree { entries, truncated: tree.truncated })
    }

    async fn file_contents(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        path: &str,
        git_ref: &str,
    ) -> Result<Vec<u8>> {
        devops_git::check_tree_path(path)?;
        let repo = RepoPath::parse(repository_url)?;
        // One encoded segment, as octokit's URL templates send it.
        let value: Value = self
            .get(&format!(
                "{}/contents/{}?ref={}",
                repo.api(),
                crate::http::segment(path),
                crate::http::segment(git_ref)
            ))
            .await?;
        if value.is_array() || value.get("type").and_then(Value::as_str) != Some("file") {
            return Err(Error::Invalid(format!("{path} is not a file")));
        }
        let decode = |content: &str| {
            let compact: String = content.chars().filter(|c| !c.is_whitespace()).collect();
            BASE64.decode(compact).map_err(|err| Error::Decode { provider: PROVIDER, reason: format!("{path}: {err}") })
        };
        match (value.get("encoding").and_then(Value::as_str), value.get("content").and_then(Value::as_str)) {
            (Some("base64"), Some(content)) => decode(content),
            // Over 1 MB the contents API leaves the content out; the blob has it.
            _ => {
                let sha = value.get("sha").and_then(Value::as_str).unwrap_or_default();
                let blob: Value = self.get(&format!("{}/git/blobs/{sha}", repo.api())).await?;
                decode(blob.get("content").and_then(Value::as_str).unwrap_or_default())
            }
        }
    }

    async fn git_credentials(&self, _tenant: TenantId) -> Result<Option<GitCredentials>> {
        let token = match &self.auth {
            GitHubAuth::Token(token) => token.clone(),
            GitHubAuth::App { .. } => self.installation_token().await?,
        };
        Ok(Some(GitCredentials { username: "x-access-token".into(), password: token }))
    }

    async fn list_branches(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        cursor: Option<&str>,
        per_page_hint: u32,
    ) -> Result<Page<Branch>> {
        let repo = RepoPath::parse(repository_url)?;
        #[derive(Deserialize)]
        struct Commit {
            sha: String,
        }
        #[derive(Deserialize)]
        struct GhBranch {
            name: String,
            commit: Commit,
            #[serde(default)]
            protected: bool,
        }
        let page: Page<GhBranch> =
            self.page(&format!("{}/branches?per_page={}", repo.api(), per_page(per_page_hint)), cursor).await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(|b| Branch { name: b.name, commit_sha: b.commit.sha, protected: b.protected })
                .collect(),
            next: page.next,
        })
    }

    async fn create_branch(&self, _tenant: TenantId, repository_url: &str, name: &str, from: &str) -> Result<Branch> {
        devops_git::check_branch(name).map_err(|_| Error::Invalid(format!("{name:?} is not a valid branch name")))?;
        let repo = RepoPath::parse(repository_url)?;
        let sha = self.head_commit(&repo, from).await?;
        let body = json!({ "ref": format!("refs/heads/{name}"), "sha": sha });
        match self.call(Method::POST, &format!("{}/git/refs", repo.api()), Some(&body)).await {
            Ok(_) => Ok(Branch { name: name.to_owned(), commit_sha: sha, protected: false }),
            Err(Error::Http { status: 422, message, .. }) if message.contains("already exists") => {
                Err(Error::Conflict(format!("branch {name} already exists")))
            }
            Err(err) => Err(err),
        }
    }

    async fn commit_changes(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        branch: &str,
        changes: &ChangeSet,
    ) -> Result<String> {
        crate::check_changes(changes)?;
        let repo = RepoPath::parse(repository_url)?;
        #[derive(Deserialize)]
        struct Object {
            sha: String,
        }
        #[derive(Deserialize)]
        struct GitRef {
            object: Object,
        }
        #[derive(Deserialize)]
        struct GitCommit {
            tree: Object,
        }
        let head: GitRef =
            self.get(&format!("{}/git/ref/{}", repo.api(), crate::http::segment(&format!("heads/{branch}")))).await?;
        let parent = head.object.sha;
        let base: GitCommit = self.get(&format!("{}/git/commits/{parent}", repo.api())).await?;
        let mut entries = Vec::with_capacity(changes.files.len());
        for file in &changes.files {
            let sha = match file.kind {
                FileChangeKind::Delete => Value::Null,
                FileChangeKind::Add | FileChangeKind::Modify => {
                    let blob: Object = self
                        .send(
                            Method::POST,
                            &format!("{}/git/blobs", repo.api()),
                            &json!({ "content": BASE64.encode(&file.content), "encoding": "base64" }),
                        )
                        .await?;
                    json!(blob.sha)
                }
            };
            entries.push(json!({ "path": file.path, "mode": "100644", "type": "blob", "sha": sha }));
        }
        let tree: Object = self
            .send(
                Method::POST,
                &format!("{}/git/trees", repo.api()),
                &json!({ "base_tree": base.tree.sha, "tree": entries }),
            )
            .await?;
        let commit: Object = self
            .send(
                Method::POST,
                &format!("{}/git/commits", repo.api()),
                &json!({ "message": changes.message, "tree": tree.sha, "parents": [parent] }),
            )
            .await?;
        // Not forced: a branch that moved meanwhile is a conflict, not lost work.
        let moved = self
            .call(
                Method::PATCH,
                &format!("{}/git/refs/{}", repo.api(), crate::http::segment(&format!("heads/{branch}"))),
                Some(&json!({ "sha": commit.sha, "force": false })),
            )
            .await;
        match moved {
            Ok(_) => Ok(commit.sha),
            Err(Error::Http { status: 422, .. }) => {
                Err(Error::Conflict(format!("{branch} moved during the commit; try again")))
            }
            Err(err) => Err(err),
        }
    }

    async fn create_issue(&self, _tenant: TenantId, repository_url: &str, issue: &NewIssue) -> Result<Issue> {
        crate::check_title(&issue.title)?;
        let repo = RepoPath::parse(repository_url)?;
        let body =
            json!({ "title": issue.title, "body": issue.body, "labels": issue.labels, "assignees": issue.assignees });
        Ok(self.send::<GhIssue>(Method::POST, &format!("{}/issues", repo.api()), &body).await?.into_domain())
    }

    async fn get_issue(&self, _tenant: TenantId, repository_url: &str, number: u64) -> Result<Issue> {
        let repo = RepoPath::parse(repository_url)?;
        let issue: GhIssue = self.get(&format!("{}/issues/{number}", repo.api())).await?;
        if issue.pull_request.is_some() {
            return Err(Error::NotFound(format!("#{number} is a pull request, not an issue")));
        }
        Ok(issue.into_domain())
    }

    async fn list_issues(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        state: Option<IssueState>,
        cursor: Option<&str>,
        per_page_hint: u32,
    ) -> Result<Page<Issue>> {
        let repo = RepoPath::parse(repository_url)?;
        let state = match state {
            Some(IssueState::Open) => "open",
            Some(IssueState::Closed) => "closed",
            None => "all",
        };
        let first = format!("{}/issues?state={state}&per_page={}", repo.api(), per_page(per_page_hint));
        let page: Page<GhIssue> = self.page(&first, cursor).await?;
        Ok(Page {
            // GitHub lists pull requests among issues.
            items: page.items.into_iter().filter(|i| i.pull_request.is_none()).map(GhIssue::into_domain).collect(),
            next: page.next,
        })
    }

    async fn update_issue(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        number: u64,
        update: &IssueUpdate,
    ) -> Result<Issue> {
        let repo = RepoPath::parse(repository_url)?;
        let mut body = crate::edited_text(update.title.as_ref(), update.body.as_ref(), "body")?;
        if let Some(state) = update.state {
            body.insert("state".into(), json!(if state == IssueState::Open { "open" } else { "closed" }));
        }
        if let Some(labels) = &update.labels {
            body.insert("labels".into(), json!(labels));
        }
        let issue: GhIssue =
            self.send(Method::PATCH, &format!("{}/issues/{number}", repo.api()), &Value::Object(body)).await?;
        Ok(issue.into_domain())
    }

    async fn comment_on_issue(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        number: u64,
        body: &str,
    ) -> Result<IssueComment> {
        if body.trim().is_empty() {
            return Err(Error::Invalid("a comment needs a body".into()));
        }
        let repo = RepoPath::parse(repository_url)?;
        let comment: GhComment = self
            .send(Method::POST, &format!("{}/issues/{number}/comments", repo.api()), &json!({ "body": body }))
            .await?;
        Ok(IssueComment {
            provider_id: comment.id.to_string(),
            body: clean(comment.body),
            author: comment.user.map(|u| u.login).unwrap_or_default(),
            created_at: comment.created_at,
        })
    }

    fn webhooks(&self) -> Option<&'static dyn WebhookFormat> {
        Some(&GITHUB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_paths_come_from_https_and_ssh_urls() {
        for url in
            ["https://github.com/octo/hello.git", "https://github.com/octo/hello", "git@github.com:octo/hello.git"]
        {
            let repo = RepoPath::parse(url).expect("test value");
            assert_eq!((repo.owner.as_str(), repo.name.as_str()), ("octo", "hello"), "{url}");
        }
        assert!(RepoPath::parse("https://github.com/octo").is_err());
        assert!(RepoPath::parse("https://github.com/octo/../x").is_err());
        assert_eq!(
            crate::repository_path("https://gitlab.com/group/sub/app.git").expect("test value"),
            "group/sub/app"
        );
    }
}
