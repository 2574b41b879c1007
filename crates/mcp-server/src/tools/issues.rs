//! Issues on the repository's code host (GitHub, GitLab), through the
//! tenant's provider connection. Titles, bodies and comments are sanitised
//! before they reach the agent.

use async_trait::async_trait;
use devops_models::sanitize::sanitize;
use devops_models::{Issue, IssueState, IssueUpdate, NewIssue};
use rmcp::model::JsonObject;
use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use crate::policy::Toolset;
use crate::registry::{Effect, Registry, ToolContext, ToolError, ToolHandler, ToolOutput, ToolSpec, arguments};

pub fn register(registry: &mut Registry) {
    let specs = [
        ToolSpec::new::<CreateArgs, IssueView>(
            Toolset::Issues,
            "create_issue",
            "Open an issue",
            "Opens an issue on the repository's code host, with optional labels and assignees (user names).",
            Effect::Write,
            CreateIssue,
        )
        .open_world(),
        ToolSpec::new::<IssueArgs, IssueView>(
            Toolset::Issues,
            "get_issue",
            "Get an issue",
            "Returns an issue: title, body, state, labels, assignees and author.",
            Effect::Read,
            GetIssue,
        )
        .open_world(),
        ToolSpec::new::<ListArgs, IssueList>(
            Toolset::Issues,
            "list_issues",
            "List issues",
            "Lists a repository's issues (not pull requests), optionally by state, a page at a time.",
            Effect::Read,
            ListIssues,
        )
        .open_world(),
        ToolSpec::new::<UpdateArgs, IssueView>(
            Toolset::Issues,
            "update_issue",
            "Update an issue",
            "Changes an issue's title, body, labels, or state (open or closed).",
            Effect::IdempotentWrite,
            UpdateIssue,
        )
        .open_world(),
        ToolSpec::new::<CommentArgs, IssueCommentView>(
            Toolset::Issues,
            "comment_on_issue",
            "Comment on an issue",
            "Adds a comment to an issue.",
            Effect::Write,
            CommentOnIssue,
        )
        .open_world(),
    ];
    for spec in specs {
        registry.add(spec);
    }
}

fn clean(text: &str) -> String {
    sanitize(text).into_owned()
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateArg {
    Open,
    Closed,
}

impl From<StateArg> for IssueState {
    fn from(state: StateArg) -> Self {
        match state {
            StateArg::Open => IssueState::Open,
            StateArg::Closed => IssueState::Closed,
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IssueView {
    pub number: u64,
    pub title: String,
    pub body: String,
    /// open or closed.
    pub state: String,
    pub labels: Vec<String>,
    pub assignees: Vec<String>,
    pub author: String,
    pub url: String,
}

impl From<Issue> for IssueView {
    fn from(issue: Issue) -> Self {
        Self {
            number: issue.number,
            title: clean(&issue.title),
            body: clean(&issue.body),
            state: match issue.state {
                IssueState::Open => "open",
                IssueState::Closed => "closed",
            }
            .into(),
            labels: issue.labels.iter().map(|l| clean(l)).collect(),
            assignees: issue.assignees.iter().map(|a| clean(a)).collect(),
            author: clean(&issue.author),
            url: issue.url,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateArgs {
    /// The repository's URL, e.g. `https://github.com/acme/api`.
    pub repository_url: String,
    pub title: String,
    /// Markdown.
    pub body: Option<String>,
    pub labels: Option<Vec<String>>,
    /// User names on the code host.
    pub assignees: Option<Vec<String>>,
}

struct CreateIssue;

#[async_trait]
impl ToolHandler for CreateIssue {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: CreateArgs = arguments(args)?;
        let tenant = ctx.principal.tenant_id;
        let host = ctx.hosts.for_repository(tenant, &args.repository_url).await?;
        let issue = NewIssue {
            title: args.title,
            body: args.body.unwrap_or_default(),
            labels: args.labels.unwrap_or_default(),
            assignees: args.assignees.unwrap_or_default(),
        };
        ToolOutput::json(&IssueView::from(host.create_issue(tenant, &args.repository_url, &issue).await?))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct IssueArgs {
    pub repository_url: String,
    pub number: u64,
}

struct GetIssue;

#[async_trait]
impl ToolHandler for GetIssue {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: IssueArgs = arguments(args)?;
        let tenant = ctx.principal.tenant_id;
        let host = ctx.hosts.for_repository(tenant, &args.repository_url).await?;
        ToolOutput::json(&IssueView::from(host.get_issue(tenant, &args.repository_url, args.number).await?))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListArgs {
    pub repository_url: String,
    /// open or closed; default: both.
    pub state: Option<StateArg>,
    /// 1-100; default 30.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IssueList {
    pub issues: Vec<IssueView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

struct ListIssues;

#[async_trait]
impl ToolHandler for ListIssues {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: ListArgs = arguments(args)?;
        let limit = match args.limit.unwrap_or(30) {
            limit @ 1..=100 => limit,
            _ => return Err(ToolError::invalid("limit must be 1-100")),
        };
        let tenant = ctx.principal.tenant_id;
        let host = ctx.hosts.for_repository(tenant, &args.repository_url).await?;
        let state = args.state.map(IssueState::from);
        let page = host.list_issues(tenant, &args.repository_url, state, args.cursor.as_deref(), limit).await?;
        ToolOutput::json(&IssueList {
            issues: page.items.into_iter().map(IssueView::from).collect(),
            next_cursor: page.next,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateArgs {
    pub repository_url: String,
    pub number: u64,
    pub title: Option<String>,
    pub body: Option<String>,
    pub state: Option<StateArg>,
    /// Replaces the labels.
    pub labels: Option<Vec<String>>,
}

struct UpdateIssue;

#[async_trait]
impl ToolHandler for UpdateIssue {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: UpdateArgs = arguments(args)?;
        let tenant = ctx.principal.tenant_id;
        let host = ctx.hosts.for_repository(tenant, &args.repository_url).await?;
        let update = IssueUpdate {
            title: args.title,
            body: args.body,
            state: args.state.map(IssueState::from),
            labels: args.labels,
        };
        ToolOutput::json(&IssueView::from(host.update_issue(tenant, &args.repository_url, args.number, &update).await?))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CommentArgs {
    pub repository_url: String,
    pub number: u64,
    /// Markdown.
    pub body: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IssueCommentView {
    pub comment_id: String,
    pub author: String,
}

struct CommentOnIssue;

#[async_trait]
impl ToolHandler for CommentOnIssue {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: CommentArgs = arguments(args)?;
        let tenant = ctx.principal.tenant_id;
        let host = ctx.hosts.for_repository(tenant, &args.repository_url).await?;
        let comment = host.comment_on_issue(tenant, &args.repository_url, args.number, &args.body).await?;
        ToolOutput::json(&IssueCommentView { comment_id: comment.provider_id, author: clean(&comment.author) })
    }
}
