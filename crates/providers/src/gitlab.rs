//! GitLab's REST API (v4), on gitlab.com or a self-managed base URL, with
//! a personal (project, group) access token in `PRIVATE-TOKEN`.
//!
//! Projects are addressed by their URL-encoded path. A change set is one
//! call (`POST /repository/commits` with actions), which can also start
//! the branch. Inline review comments are discussions positioned on the
//! merge request's diff refs.

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
use reqwest::header::{HeaderMap, HeaderName};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::http::{ApiClient, ApiResponse, ClientSettings, secret_header, segment};
use crate::webhooks::{GITLAB, WebhookFormat};
use crate::{
    Branch, CloudProvider, Error, FilePatch, FileStatus, GitCredentials, Page, PostedReview, RemoteRepository, Result,
    ReviewPost, Tree, TreeEntry, TreeEntryKind, clean,
};

const PROVIDER: &str = "gitlab";
pub const DEFAULT_BASE_URL: &str = "https://gitlab.com/api/v4";
const MAX_PAGES: usize = 50;

pub struct GitLab {
    api: ApiClient,
    /// Repository URLs are under it; its path is stripped from theirs.
    web: Url,
    token: String,
}

impl GitLab {
    pub fn new(
        base_url: &str,
        web_url: &str,
        token: String,
        policy: &UrlPolicy,
        settings: ClientSettings,
    ) -> Result<Self> {
        let base = crate::http::check_base_url(policy, base_url)?;
        let web = Url::parse(web_url).map_err(|err| Error::Invalid(format!("web URL {web_url:?}: {err}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::ACCEPT, "application/json".parse().expect("static header"));
        let api = ApiClient::new(PROVIDER, base, policy, settings, headers)?;
        Ok(Self { api, web, token })
    }

    fn auth(&self) -> Result<HeaderMap> {
        secret_header(HeaderName::from_static("private-token"), &self.token)
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<ApiResponse> {
        self.api.send(method, path, &self.auth()?, body).await
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T> {
        self.call(Method::GET, path, None).await?.json(PROVIDER)
    }

    async fn send<T: for<'de> Deserialize<'de>>(&self, method: Method, path: &str, body: &Value) -> Result<T> {
        self.call(method, path, Some(body)).await?.json(PROVIDER)
    }

    /// One page; the cursor is GitLab's `X-Next-Page` number.
    async fn page<T: for<'de> Deserialize<'de>>(&self, path: &str, cursor: Option<&str>) -> Result<Page<T>> {
        let page = match cursor {
            Some(cursor) if cursor.bytes().all(|b| b.is_ascii_digit()) && !cursor.is_empty() => cursor,
            Some(_) => return Err(Error::Invalid("a GitLab cursor is a page number".into())),
            None => "1",
        };
        let separator = if path.contains('?') { '&' } else { '?' };
        let response = self.call(Method::GET, &format!("{path}{separator}page={page}"), None).await?;
        Ok(Page { items: response.json(PROVIDER)?, next: response.next_page() })
    }

    async fn all<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<Vec<T>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page: Page<T> = self.page(path, cursor.as_deref()).await?;
            items.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(items)
    }

    /// `projects/<encoded path>` for a repository URL under the web URL.
    fn project(&self, repository_url: &str) -> Result<String> {
        let path = crate::repository_path(repository_url)?;
        let prefix = self.web.path().trim_matches('/');
        let path = if prefix.is_empty() {
            path.as_str()
        } else {
            path.strip_prefix(prefix).map(|p| p.trim_start_matches('/')).unwrap_or(&path)
        };
        if !path.contains('/') {
            return Err(Error::Invalid(format!("{repository_url} is not a GitLab project URL (group/project)")));
        }
        Ok(format!("projects/{}", segment(path)))
    }

    async fn merge_request(&self, repository_url: &str, number: u64) -> Result<(String, GlMergeRequest)> {
        let project = self.project(repository_url)?;
        let mr = self.get(&format!("{project}/merge_requests/{number}")).await?;
        Ok((project, mr))
    }
}

#[derive(Deserialize)]
struct GlProject {
    id: u64,
    path_with_namespace: String,
    description: Option<String>,
    default_branch: Option<String>,
    http_url_to_repo: String,
    web_url: String,
    visibility: Option<String>,
}

impl GlProject {
    fn into_domain(self) -> RemoteRepository {
        RemoteRepository {
            provider: PROVIDER.into(),
            provider_id: self.id.to_string(),
            full_name: self.path_with_namespace,
            description: clean(self.description),
            default_branch: self.default_branch.unwrap_or_else(|| "main".into()),
            clone_url: self.http_url_to_repo,
            web_url: self.web_url,
            private: self.visibility.as_deref() != Some("public"),
        }
    }
}

#[derive(Deserialize, Default)]
struct DiffRefs {
    base_sha: Option<String>,
    head_sha: Option<String>,
    start_sha: Option<String>,
}

#[derive(Deserialize)]
struct GlMergeRequest {
    iid: u64,
    title: String,
    description: Option<String>,
    state: String,
    source_branch: String,
    target_branch: String,
    sha: Option<String>,
    merge_commit_sha: Option<String>,
    squash_commit_sha: Option<String>,
    #[serde(default)]
    diff_refs: Option<DiffRefs>,
    web_url: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl GlMergeRequest {
    fn into_domain(self, tenant: TenantId, repository_url: &str) -> PullRequest {
        let state = match self.state.as_str() {
            "opened" | "locked" => PullRequestState::Open,
            "merged" => PullRequestState::Merged,
            _ => PullRequestState::Closed,
        };
        let refs = self.diff_refs.unwrap_or_default();
        PullRequest {
            id: crate::pull_request_id(repository_url, self.iid),
            tenant_id: tenant,
            repository_url: repository_url.to_owned(),
            number: self.iid,
            provider: PROVIDER.into(),
            title: sanitize(&self.title).into_owned(),
            body: clean(self.description),
            source_branch: self.source_branch,
            target_branch: self.target_branch,
            base_sha: refs.base_sha.unwrap_or_default(),
            head_sha: self.sha.or(refs.head_sha).unwrap_or_default(),
            merge_commit: if state == PullRequestState::Merged {
                self.merge_commit_sha.or(self.squash_commit_sha)
            } else {
                None
            },
            state,
            url: self.web_url,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Deserialize)]
struct GlUser {
    username: String,
}

#[derive(Deserialize)]
struct GlIssue {
    id: u64,
    iid: u64,
    title: String,
    description: Option<String>,
    state: String,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    assignees: Vec<GlUser>,
    author: Option<GlUser>,
    web_url: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl GlIssue {
    fn into_domain(self) -> Issue {
        Issue {
            number: self.iid,
            provider_id: self.id.to_string(),
            title: sanitize(&self.title).into_owned(),
            body: clean(self.description),
            state: if self.state == "opened" { IssueState::Open } else { IssueState::Closed },
            labels: self.labels.iter().map(|l| sanitize(l).into_owned()).collect(),
            assignees: self.assignees.into_iter().map(|u| u.username).collect(),
            author: self.author.map(|u| u.username).unwrap_or_default(),
            url: self.web_url,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Deserialize)]
struct GlNote {
    id: u64,
    body: Option<String>,
    author: Option<GlUser>,
    created_at: DateTime<Utc>,
    updated_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct GlDiff {
    old_path: String,
    new_path: String,
    #[serde(default)]
    new_file: bool,
    #[serde(default)]
    renamed_file: bool,
    #[serde(default)]
    deleted_file: bool,
    diff: Option<String>,
}

impl GlDiff {
    fn into_domain(self) -> FilePatch {
        let status = match (self.new_file, self.deleted_file, self.renamed_file) {
            (true, _, _) => FileStatus::Added,
            (_, true, _) => FileStatus::Removed,
            (_, _, true) => FileStatus::Renamed,
            _ => FileStatus::Modified,
        };
        let (additions, deletions) = self.diff.as_deref().map(count_lines).unwrap_or((0, 0));
        FilePatch {
            previous_path: (self.old_path != self.new_path).then_some(self.old_path),
            path: self.new_path,
            status,
            additions,
            deletions,
            patch: self.diff.filter(|d| !d.is_empty()),
        }
    }
}

/// Added and removed lines of a hunk list (GitLab does not count them).
fn count_lines(diff: &str) -> (u32, u32) {
    diff.lines().fold((0, 0), |(add, del), line| {
        if line.starts_with('+') && !line.starts_with("+++") {
            (add + 1, del)
        } else if line.starts_with('-') && !line.starts_with("---") {
            (add, del + 1)
        } else {
            (add, del)
        }
    })
}

fn mr_state_param(state: Option<PullRequestState>) -> &'static str {
    match state {
        Some(PullRequestState::Open) => "opened",
        Some(PullRequestState::Closed) => "closed",
        Some(PullRequestState::Merged) => "merged",
        None => "all",
    }
}

fn per_page(requested: u32) -> u32 {
    requested.clamp(1, 100)
}

#[async_trait]
impl CloudProvider for GitLab {
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
        let project = self.project(repository_url)?;
        let target = if changes.base_ref.is_empty() {
            self.get_repository(tenant, repository_url).await?.default_branch
        } else {
            changes.base_ref.clone()
        };
        let branch = crate::branch_name(title);
        let message = if changes.message.trim().is_empty() { title } else { changes.message.as_str() };
        // One call makes the branch from the target and commits on it.
        let commit = json!({
            "branch": branch, "start_branch": target, "commit_message": message, "actions": actions(changes),
        });
        self.call(Method::POST, &format!("{project}/repository/commits"), Some(&commit)).await?;
        let opened = self
            .send::<GlMergeRequest>(
                Method::POST,
                &format!("{project}/merge_requests"),
                &json!({ "source_branch": branch, "target_branch": target, "title": title, "description": body }),
            )
            .await;
        match opened {
            Ok(mr) => Ok(mr.into_domain(tenant, repository_url)),
            Err(err) => {
                // No merge request: the branch made for it goes too.
                let path = format!("{project}/repository/branches/{}", segment(&branch));
                if let Err(cleanup) = self.call(Method::DELETE, &path, None).await {
                    tracing::warn!(%branch, error = %cleanup, "could not delete the branch of a failed merge request");
                }
                Err(err)
            }
        }
    }

    async fn get_pull_request(&self, tenant: TenantId, repository_url: &str, number: u64) -> Result<PullRequest> {
        Ok(self.merge_request(repository_url, number).await?.1.into_domain(tenant, repository_url))
    }

    async fn list_pull_requests(
        &self,
        tenant: TenantId,
        repository_url: &str,
        state: Option<PullRequestState>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<PullRequest>> {
        let project = self.project(repository_url)?;
        let path = format!(
            "{project}/merge_requests?state={}&order_by=created_at&sort=desc&per_page=100",
            mr_state_param(state)
        );
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page: Page<GlMergeRequest> = self.page(&path, cursor.as_deref()).await?;
            for mr in page.items {
                if before.is_none_or(|b| mr.iid < b) {
                    found.push(mr.into_domain(tenant, repository_url));
                }
                if found.len() >= limit as usize {
                    return Ok(found);
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
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
        let project = self.project(repository_url)?;
        let mut body = crate::edited_text(update.title.as_ref(), update.body.as_ref(), "description")?;
        match update.state {
            Some(PullRequestState::Merged) => {
                return Err(Error::Invalid("merge a pull request with merge, not by setting its state".into()));
            }
            Some(PullRequestState::Open) => {
                body.insert("state_event".into(), json!("reopen"));
            }
            Some(PullRequestState::Closed) => {
                body.insert("state_event".into(), json!("close"));
            }
            None => {}
        }
        let mr: GlMergeRequest =
            self.send(Method::PUT, &format!("{project}/merge_requests/{number}"), &Value::Object(body)).await?;
        Ok(mr.into_domain(tenant, repository_url))
    }

    async fn merge_pull_request(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        number: u64,
        method: MergeMethod,
    ) -> Result<MergeOutcome> {
        let project = self.project(repository_url)?;
        let squash = match method {
            MergeMethod::Merge => false,
            MergeMethod::Squash => true,
            MergeMethod::Rebase => {
                return Err(Error::Unsupported(
                    "GitLab sets rebase (fast-forward) merges per project; merge with merge or squash".into(),
                ));
            }
        };
        let result = self
            .call(Method::PUT, &format!("{project}/merge_requests/{number}/merge"), Some(&json!({ "squash": squash })))
            .await;
        match result {
            Ok(response) => {
                let mr: GlMergeRequest = response.json(PROVIDER)?;
                let merged = mr.state == "merged";
                Ok(MergeOutcome {
                    merged,
                    merge_commit: mr.merge_commit_sha.or(mr.squash_commit_sha),
                    conflicts: Vec::new(),
                })
            }
            // 405/406/422: not mergeable now (conflicts, draft, pipeline).
            Err(Error::Http { status: 405 | 406 | 422, .. }) => {
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
        let (project, mr) = self.merge_request(repository_url, number).await?;
        let note: GlNote = match (&comment.path, comment.line) {
            (Some(path), Some(line)) => {
                devops_git::check_tree_path(path)?;
                let body = json!({ "body": comment.body, "position": position(&mr, path, line) });
                let discussion: Value =
                    self.send(Method::POST, &format!("{project}/merge_requests/{number}/discussions"), &body).await?;
                first_note(discussion)?
            }
            (None, None) => {
                self.send(
                    Method::POST,
                    &format!("{project}/merge_requests/{number}/notes"),
                    &json!({ "body": comment.body }),
                )
                .await?
            }
            _ => return Err(Error::Invalid("an inline comment needs both path and line".into())),
        };
        let pull_request_id = crate::pull_request_id(repository_url, number);
        Ok(PullRequestComment {
            id: uuid::Uuid::new_v5(&pull_request_id, note.id.to_string().as_bytes()),
            pull_request_id,
            body: clean(note.body),
            path: comment.path.clone(),
            line: comment.line,
            fingerprint: comment.fingerprint.clone(),
            created_at: note.created_at,
            updated_at: note.updated_at.unwrap_or(note.created_at),
        })
    }

    async fn diff(&self, tenant: TenantId, repository_url: &str, number: u64) -> Result<String> {
        Ok(FilePatch::unified_diff(&self.pull_request_files(tenant, repository_url, number).await?))
    }

    async fn pull_request_files(&self, _tenant: TenantId, repository_url: &str, number: u64) -> Result<Vec<FilePatch>> {
        let project = self.project(repository_url)?;
        let diffs: Vec<GlDiff> = self.all(&format!("{project}/merge_requests/{number}/diffs?per_page=100")).await?;
        Ok(diffs.into_iter().map(GlDiff::into_domain).collect())
    }

    async fn post_review(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        number: u64,
        review: &ReviewPost,
    ) -> Result<PostedReview> {
        let (project, mr) = self.merge_request(repository_url, number).await?;
        let notes = format!("{project}/merge_requests/{number}/notes");
        let edited = match review.summary_comment_id.as_deref() {
            Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
                match self
                    .send::<GlNote>(Method::PUT, &format!("{notes}/{id}"), &json!({ "body": review.summary }))
                    .await
                {
                    Ok(note) => Some(note.id),
                    Err(Error::Http { status: 404, .. }) => None,
                    Err(err) => return Err(err),
                }
            }
            _ => None,
        };
        let summary_id = match edited {
            Some(id) => id,
            None => self.send::<GlNote>(Method::POST, &notes, &json!({ "body": review.summary })).await?.id,
        };
        for inline in &review.inline {
            let body = json!({ "body": inline.body, "position": position(&mr, &inline.path, inline.line) });
            self.call(Method::POST, &format!("{project}/merge_requests/{number}/discussions"), Some(&body)).await?;
        }
        Ok(PostedReview { summary_comment_id: summary_id.to_string(), inline_posted: review.inline.len() })
    }

    async fn get_repository(&self, _tenant: TenantId, repository_url: &str) -> Result<RemoteRepository> {
        let project = self.project(repository_url)?;
        Ok(self.get::<GlProject>(&project).await?.into_domain())
    }

    async fn list_repositories(
        &self,
        _tenant: TenantId,
        cursor: Option<&str>,
        per_page_hint: u32,
    ) -> Result<Page<RemoteRepository>> {
        let page: Page<GlProject> = self
            .page(
                &format!("projects?membership=true&order_by=path&sort=asc&per_page={}", per_page(per_page_hint)),
                cursor,
            )
            .await?;
        Ok(Page { items: page.items.into_iter().map(GlProject::into_domain).collect(), next: page.next })
    }

    async fn tree(&self, _tenant: TenantId, repository_url: &str, git_ref: &str) -> Result<Tree> {
        let project = self.project(repository_url)?;
        #[derive(Deserialize)]
        struct Entry {
            path: String,
            #[serde(rename = "type")]
            kind: String,
        }
        let path = format!("{project}/repository/tree?recursive=true&per_page=100&ref={}", segment(git_ref));
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        let mut truncated = true;
        for _ in 0..MAX_PAGES * 20 {
            let page: Page<Entry> = self.page(&path, cursor.as_deref()).await?;
            entries.extend(page.items.into_iter().map(|e| TreeEntry {
                kind: match e.kind.as_str() {
                    "tree" => TreeEntryKind::Directory,
                    "commit" => TreeEntryKind::Submodule,
                    _ => TreeEntryKind::File,
                },
                path: e.path,
                size: None,
            }));
            match page.next {
                Some(next) => cursor = Some(next),
                None => {
                    truncated = false;
                    break;
                }
            }
        }
        Ok(Tree { entries, truncated })
    }

    async fn file_contents(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        path: &str,
        git_ref: &str,
    ) -> Result<Vec<u8>> {
        devops_git::check_tree_path(path)?;
        let project = self.project(repository_url)?;
        let response = self
            .call(
                Method::GET,
                &format!("{project}/repository/files/{}/raw?ref={}", segment(path), segment(git_ref)),
                None,
            )
            .await?;
        Ok(response.body.to_vec())
    }

    async fn git_credentials(&self, _tenant: TenantId) -> Result<Option<GitCredentials>> {
        Ok(Some(GitCredentials { username: "oauth2".into(), password: self.token.clone() }))
    }

    async fn list_branches(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        cursor: Option<&str>,
        per_page_hint: u32,
    ) -> Result<Page<Branch>> {
        let project = self.project(repository_url)?;
        let page: Page<GlBranch> =
            self.page(&format!("{project}/repository/branches?per_page={}", per_page(per_page_hint)), cursor).await?;
        Ok(Page { items: page.items.into_iter().map(GlBranch::into_domain).collect(), next: page.next })
    }

    async fn create_branch(&self, _tenant: TenantId, repository_url: &str, name: &str, from: &str) -> Result<Branch> {
        devops_git::check_branch(name).map_err(|_| Error::Invalid(format!("{name:?} is not a valid branch name")))?;
        let project = self.project(repository_url)?;
        let path = format!("{project}/repository/branches?branch={}&ref={}", segment(name), segment(from));
        match self.call(Method::POST, &path, None).await {
            Ok(response) => Ok(response.json::<GlBranch>(PROVIDER)?.into_domain()),
            Err(Error::Http { status: 400, message, .. }) if message.contains("already exists") => {
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
        let project = self.project(repository_url)?;
        #[derive(Deserialize)]
        struct Commit {
            id: String,
        }
        let body = json!({ "branch": branch, "commit_message": changes.message, "actions": actions(changes) });
        let commit: Commit = self.send(Method::POST, &format!("{project}/repository/commits"), &body).await?;
        Ok(commit.id)
    }

    async fn create_issue(&self, _tenant: TenantId, repository_url: &str, issue: &NewIssue) -> Result<Issue> {
        crate::check_title(&issue.title)?;
        let project = self.project(repository_url)?;
        let mut body = json!({ "title": issue.title, "description": issue.body, "labels": issue.labels.join(",") });
        if !issue.assignees.is_empty() {
            body["assignee_ids"] = json!(self.user_ids(&issue.assignees).await?);
        }
        Ok(self.send::<GlIssue>(Method::POST, &format!("{project}/issues"), &body).await?.into_domain())
    }

    async fn get_issue(&self, _tenant: TenantId, repository_url: &str, number: u64) -> Result<Issue> {
        let project = self.project(repository_url)?;
        Ok(self.get::<GlIssue>(&format!("{project}/issues/{number}")).await?.into_domain())
    }

    async fn list_issues(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        state: Option<IssueState>,
        cursor: Option<&str>,
        per_page_hint: u32,
    ) -> Result<Page<Issue>> {
        let project = self.project(repository_url)?;
        let state = match state {
            Some(IssueState::Open) => "opened",
            Some(IssueState::Closed) => "closed",
            None => "all",
        };
        let page: Page<GlIssue> =
            self.page(&format!("{project}/issues?state={state}&per_page={}", per_page(per_page_hint)), cursor).await?;
        Ok(Page { items: page.items.into_iter().map(GlIssue::into_domain).collect(), next: page.next })
    }

    async fn update_issue(
        &self,
        _tenant: TenantId,
        repository_url: &str,
        number: u64,
        update: &IssueUpdate,
    ) -> Result<Issue> {
        let project = self.project(repository_url)?;
        let mut body = crate::edited_text(update.title.as_ref(), update.body.as_ref(), "description")?;
        if let Some(state) = update.state {
            body.insert("state_event".into(), json!(if state == IssueState::Open { "reopen" } else { "close" }));
        }
        if let Some(labels) = &update.labels {
            body.insert("labels".into(), json!(labels.join(",")));
        }
        let issue: GlIssue =
            self.send(Method::PUT, &format!("{project}/issues/{number}"), &Value::Object(body)).await?;
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
        let project = self.project(repository_url)?;
        let note: GlNote =
            self.send(Method::POST, &format!("{project}/issues/{number}/notes"), &json!({ "body": body })).await?;
        Ok(IssueComment {
            provider_id: note.id.to_string(),
            body: clean(note.body),
            author: note.author.map(|u| u.username).unwrap_or_default(),
            created_at: note.created_at,
        })
    }

    fn webhooks(&self) -> Option<&'static dyn WebhookFormat> {
        Some(&GITLAB)
    }
}

impl GitLab {
    /// GitLab assigns by user id; the API takes user names.
    async fn user_ids(&self, usernames: &[String]) -> Result<Vec<u64>> {
        #[derive(Deserialize)]
        struct User {
            id: u64,
        }
        let mut ids = Vec::with_capacity(usernames.len());
        for username in usernames {
            let users: Vec<User> = self.get(&format!("users?username={}", segment(username))).await?;
            let user = users.first().ok_or_else(|| Error::Invalid(format!("no GitLab user named {username:?}")))?;
            ids.push(user.id);
        }
        Ok(ids)
    }
}

#[derive(Deserialize)]
struct GlBranchCommit {
    id: String,
}

#[derive(Deserialize)]
struct GlBranch {
    name: String,
    commit: GlBranchCommit,
    #[serde(default)]
    protected: bool,
}

impl GlBranch {
    fn into_domain(self) -> Branch {
        Branch { name: self.name, commit_sha: self.commit.id, protected: self.protected }
    }
}

fn actions(changes: &ChangeSet) -> Vec<Value> {
    changes
        .files
        .iter()
        .map(|file| match file.kind {
            FileChangeKind::Delete => json!({ "action": "delete", "file_path": file.path }),
            FileChangeKind::Add | FileChangeKind::Modify => json!({
                "action": if file.kind == FileChangeKind::Add { "create" } else { "update" },
                "file_path": file.path,
                "encoding": "base64",
                "content": BASE64.encode(&file.content),
            }),
        })
        .collect()
}

/// A text position on the new side of the merge request's latest diff.
fn position(mr: &GlMergeRequest, path: &str, line: u32) -> Value {
    let refs = mr.diff_refs.as_ref();
    json!({
        "position_type": "text",
        "base_sha": refs.and_then(|r| r.base_sha.clone()),
        "start_sha": refs.and_then(|r| r.start_sha.clone()),
        "head_sha": refs.and_then(|r| r.head_sha.clone()).or_else(|| mr.sha.clone()),
        "old_path": path,
        "new_path": path,
        "new_line": line,
    })
}

fn first_note(discussion: Value) -> Result<GlNote> {
    let note = discussion
        .get("notes")
        .and_then(|notes| notes.get(0))
        .cloned()
        .ok_or_else(|| Error::Decode { provider: PROVIDER, reason: "a discussion without notes".into() })?;
    serde_json::from_value(note).map_err(|err| Error::Decode { provider: PROVIDER, reason: err.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lines_are_counted_without_file_headers() {
        assert_eq!(count_lines("@@ -1,2 +1,3 @@\n a\n-b\n+c\n+d\n"), (2, 1));
        assert_eq!(count_lines("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-x\n+y\n"), (1, 1));
    }
}
