//! Pull requests (through pr-manager) and reviews (through the reviewer).
//! Titles, bodies and paths come from repositories: they are sanitised
//! before they reach the agent.

use async_trait::async_trait;
use devops_errors::ApiError;
use devops_proto::pull_requests::v1 as pr;
use devops_proto::reviewer::v1 as rv;
use rmcp::model::JsonObject;
use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use crate::policy::Toolset;
use crate::registry::{Effect, Registry, ToolContext, ToolError, ToolHandler, ToolOutput, ToolSpec, arguments};
use devops_models::sanitize::sanitize;

pub fn register(registry: &mut Registry) {
    let specs = [
        ToolSpec::new::<CreateArgs, PullRequestView>(
            Toolset::PullRequests,
            "create_pull_request",
            "Open a pull request",
            "Commits a change set (files to add, modify or delete on top of a base branch) to a new branch and \
             opens a pull request from it. The automated reviewer reviews it shortly after.",
            Effect::Write,
            CreatePullRequest,
        )
        .open_world(),
        ToolSpec::new::<RefArgs, PullRequestView>(
            Toolset::PullRequests,
            "get_pull_request",
            "Get a pull request",
            "Returns a pull request: title, body, branches and state.",
            Effect::Read,
            GetPullRequest,
        ),
        ToolSpec::new::<ListArgs, PullRequestList>(
            Toolset::PullRequests,
            "list_pull_requests",
            "List pull requests",
            "Lists a repository's pull requests, newest first, optionally by state (open, closed, merged).",
            Effect::Read,
            ListPullRequests,
        ),
        ToolSpec::new::<MergeArgs, MergeView>(
            Toolset::PullRequests,
            "merge_pull_request",
            "Merge a pull request",
            "Merges a pull request into its target branch (merge commit, squash or rebase). On conflicts nothing \
             changes and the conflicting paths are returned.",
            Effect::Destructive,
            MergePullRequest,
        )
        .open_world(),
        ToolSpec::new::<CommentArgs, CommentView>(
            Toolset::PullRequests,
            "comment_on_pull_request",
            "Comment on a pull request",
            "Adds a comment to a pull request, or an inline comment on one line of a file when path and line are given.",
            Effect::Write,
            CommentOnPullRequest,
        )
        .open_world(),
        ToolSpec::new::<ReviewArgs, ReviewView>(
            Toolset::Reviews,
            "review_pull_request",
            "Review a pull request",
            "Analyses a pull request's changes for committed secrets, risky code (SQL built from strings, shell \
             injection, disabled TLS checks, eval, weak crypto) and quality problems, and posts one review: a summary \
             and ranked inline comments. Reviewing again edits the summary and never repeats a comment.",
            Effect::IdempotentWrite,
            ReviewPullRequest,
        )
        .open_world(),
        ToolSpec::new::<GetReviewArgs, ReviewView>(
            Toolset::Reviews,
            "get_review",
            "Get a review",
            "Returns a stored review: its findings, with file, line, severity, rule and suggestion, and its scores.",
            Effect::Read,
            GetReview,
        ),
    ];
    for spec in specs {
        registry.add(spec);
    }
}

fn grpc_error(status: tonic::Status) -> ToolError {
    let api = ApiError::from(&status);
    ToolError::new(api.code, api.message)
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileAction {
    Add,
    Modify,
    Delete,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileArg {
    /// Path in the repository, e.g. `src/lib.rs`.
    pub path: String,
    pub action: FileAction,
    /// The whole new content (UTF-8); omit for a deletion.
    pub content: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateArgs {
    /// The repository's URL or local path.
    pub repository_url: String,
    pub title: String,
    /// Description, Markdown.
    pub body: Option<String>,
    /// The branch to merge into; default: the default branch.
    pub base_ref: Option<String>,
    /// Commit message; default: the title.
    pub commit_message: Option<String>,
    /// 1-1000 files.
    pub files: Vec<FileArg>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PullRequestView {
    pub repository_url: String,
    pub number: u64,
    pub title: String,
    pub body: String,
    pub state: String,
    pub source_branch: String,
    pub target_branch: String,
    pub provider: String,
    pub url: String,
}

impl From<pr::PullRequest> for PullRequestView {
    fn from(p: pr::PullRequest) -> Self {
        let (repository_url, number) = p.r#ref.map(|r| (r.repository_url, r.number)).unwrap_or_default();
        Self {
            repository_url,
            number,
            title: sanitize(&p.title).into_owned(),
            body: sanitize(&p.body).into_owned(),
            state: p.state,
            source_branch: sanitize(&p.source_branch).into_owned(),
            target_branch: sanitize(&p.target_branch).into_owned(),
            provider: p.provider,
            url: p.url,
        }
    }
}

fn pr_ref(ctx: &ToolContext, repository_url: String, number: u64) -> Option<pr::PullRequestRef> {
    Some(pr::PullRequestRef { tenant_id: ctx.principal.tenant_id.to_string(), repository_url, number })
}

struct CreatePullRequest;

#[async_trait]
impl ToolHandler for CreatePullRequest {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: CreateArgs = arguments(args)?;
        let files = args
            .files
            .into_iter()
            .map(|file| {
                let kind = match file.action {
                    FileAction::Add => pr::file_change::Kind::Add,
                    FileAction::Modify => pr::file_change::Kind::Modify,
                    FileAction::Delete => pr::file_change::Kind::Delete,
                };
                pr::FileChange {
                    kind: kind.into(),
                    path: file.path,
                    content: file.content.unwrap_or_default().into_bytes(),
                }
            })
            .collect();
        let request = pr::CreateRequest {
            tenant_id: ctx.principal.tenant_id.to_string(),
            repository_url: args.repository_url,
            title: args.title,
            body: args.body.unwrap_or_default(),
            change_set: Some(pr::ChangeSet {
                base_ref: args.base_ref.unwrap_or_default(),
                message: args.commit_message.unwrap_or_default(),
                files,
            }),
        };
        let created = ctx.pull_requests.clone().create(request).await.map_err(grpc_error)?.into_inner();
        ToolOutput::json(&PullRequestView::from(created))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RefArgs {
    pub repository_url: String,
    pub number: u64,
}

struct GetPullRequest;

#[async_trait]
impl ToolHandler for GetPullRequest {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: RefArgs = arguments(args)?;
        let request = pr::GetRequest { r#ref: pr_ref(ctx, args.repository_url, args.number) };
        let found = ctx.pull_requests.clone().get(request).await.map_err(grpc_error)?.into_inner();
        ToolOutput::json(&PullRequestView::from(found))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListArgs {
    pub repository_url: String,
    /// open, closed or merged; default: all.
    pub state: Option<String>,
    /// 1-100; default 30.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PullRequestList {
    pub pull_requests: Vec<PullRequestView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

struct ListPullRequests;

#[async_trait]
impl ToolHandler for ListPullRequests {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: ListArgs = arguments(args)?;
        let request = pr::ListRequest {
            tenant_id: ctx.principal.tenant_id.to_string(),
            repository_url: args.repository_url,
            state: args.state.unwrap_or_default(),
            page_token: args.cursor.unwrap_or_default(),
            page_size: args.limit.unwrap_or(30),
        };
        let page = ctx.pull_requests.clone().list(request).await.map_err(grpc_error)?.into_inner();
        ToolOutput::json(&PullRequestList {
            pull_requests: page.pull_requests.into_iter().map(PullRequestView::from).collect(),
            next_cursor: (!page.next_page_token.is_empty()).then_some(page.next_page_token),
        })
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MethodArg {
    #[default]
    Merge,
    Squash,
    Rebase,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct MergeArgs {
    pub repository_url: String,
    pub number: u64,
    /// merge (a merge commit, default), squash or rebase.
    pub method: Option<MethodArg>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MergeView {
    pub merged: bool,
    pub merge_commit: Option<String>,
    /// Paths that conflict, when not merged.
    pub conflicts: Vec<String>,
}

struct MergePullRequest;

#[async_trait]
impl ToolHandler for MergePullRequest {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: MergeArgs = arguments(args)?;
        let method = match args.method.unwrap_or_default() {
            MethodArg::Merge => pr::merge_request::Method::Merge,
            MethodArg::Squash => pr::merge_request::Method::Squash,
            MethodArg::Rebase => pr::merge_request::Method::Rebase,
        };
        let request = pr::MergeRequest { r#ref: pr_ref(ctx, args.repository_url, args.number), method: method.into() };
        let outcome = ctx.pull_requests.clone().merge(request).await.map_err(grpc_error)?.into_inner();
        ToolOutput::json(&MergeView {
            merged: outcome.merged,
            merge_commit: (!outcome.merge_commit.is_empty()).then_some(outcome.merge_commit),
            conflicts: outcome.conflicts.iter().map(|c| sanitize(c).into_owned()).collect(),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CommentArgs {
    pub repository_url: String,
    pub number: u64,
    /// Markdown.
    pub body: String,
    /// For an inline comment: the file, and the line in its new version.
    pub path: Option<String>,
    pub line: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CommentView {
    pub comment_id: String,
}

struct CommentOnPullRequest;

#[async_trait]
impl ToolHandler for CommentOnPullRequest {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: CommentArgs = arguments(args)?;
        let request = pr::CommentRequest {
            r#ref: pr_ref(ctx, args.repository_url, args.number),
            body: args.body,
            path: args.path.unwrap_or_default(),
            line: args.line.unwrap_or_default(),
        };
        let comment = ctx.pull_requests.clone().comment(request).await.map_err(grpc_error)?.into_inner();
        ToolOutput::json(&CommentView { comment_id: comment.comment_id })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReviewArgs {
    pub repository_url: String,
    pub number: u64,
    /// Post the review on the pull request (default true), or only return it.
    pub post: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FindingView {
    pub file: String,
    pub line: u32,
    /// info, low, medium, high or critical.
    pub severity: String,
    /// secret, security or quality.
    pub category: String,
    pub rule: String,
    pub message: String,
    pub suggestion: String,
    pub confidence: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReviewView {
    pub review_id: String,
    pub repository_url: String,
    pub number: u64,
    /// computed or posted.
    pub status: String,
    /// 0-100; 100 means nothing found.
    pub security_score: f64,
    pub quality_score: f64,
    /// Most important first.
    pub findings: Vec<FindingView>,
}

impl From<rv::Review> for ReviewView {
    fn from(review: rv::Review) -> Self {
        Self {
            review_id: review.id,
            repository_url: review.repository_url,
            number: review.number,
            status: review.status,
            security_score: review.security_score,
            quality_score: review.quality_score,
            findings: review
                .findings
                .into_iter()
                .map(|f| FindingView {
                    file: sanitize(&f.file).into_owned(),
                    line: f.line,
                    severity: f.severity,
                    category: f.category,
                    rule: f.rule,
                    message: sanitize(&f.message).into_owned(),
                    suggestion: f.suggestion,
                    confidence: f.confidence,
                })
                .collect(),
        }
    }
}

struct ReviewPullRequest;

#[async_trait]
impl ToolHandler for ReviewPullRequest {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: ReviewArgs = arguments(args)?;
        let request = rv::ReviewPullRequestRequest {
            tenant_id: ctx.principal.tenant_id.to_string(),
            repository_url: args.repository_url,
            number: args.number,
            post: args.post.unwrap_or(true),
        };
        let review = ctx.reviewer.clone().review_pull_request(request).await.map_err(grpc_error)?.into_inner();
        ToolOutput::json(&ReviewView::from(review))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetReviewArgs {
    pub review_id: String,
}

struct GetReview;

#[async_trait]
impl ToolHandler for GetReview {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: GetReviewArgs = arguments(args)?;
        let request =
            rv::GetReviewRequest { tenant_id: ctx.principal.tenant_id.to_string(), review_id: args.review_id };
        let review = ctx.reviewer.clone().get_review(request).await.map_err(grpc_error)?.into_inner();
        ToolOutput::json(&ReviewView::from(review))
    }
}
