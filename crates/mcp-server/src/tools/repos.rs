//! Repositories on their code host, through the tenant's provider
//! connection: description, branches, the tree, files at a ref, a pull
//! request's files. Everything that comes back is sanitised before it
//! reaches the agent.

use async_trait::async_trait;
use devops_models::sanitize::sanitize;
use devops_providers::{FilePatch, FileStatus, TreeEntryKind};
use rmcp::model::JsonObject;
use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use crate::policy::Toolset;
use crate::registry::{Effect, Registry, ToolContext, ToolError, ToolHandler, ToolOutput, ToolSpec, arguments};

pub fn register(registry: &mut Registry) {
    let specs = [
        ToolSpec::new::<RepositoryArgs, RepositoryView>(
            Toolset::Repos,
            "get_repository",
            "Get a repository",
            "Describes a repository as its code host has it: full name, description, default branch, visibility.",
            Effect::Read,
            GetRepository,
        )
        .open_world(),
        ToolSpec::new::<BranchListArgs, BranchList>(
            Toolset::Repos,
            "list_branches",
            "List branches",
            "Lists a repository's branches with their head commits, a page at a time.",
            Effect::Read,
            ListBranches,
        )
        .open_world(),
        ToolSpec::new::<BranchArgs, BranchView>(
            Toolset::Repos,
            "create_branch",
            "Create a branch",
            "Creates a branch at a branch, tag or commit.",
            Effect::Write,
            CreateBranch,
        )
        .open_world(),
        ToolSpec::new::<TreeArgs, TreeView>(
            Toolset::Repos,
            "get_repository_tree",
            "List a repository's files",
            "Lists every path of a repository at a branch, tag or commit.",
            Effect::Read,
            GetRepositoryTree,
        )
        .open_world(),
        ToolSpec::new::<FileArgs, FileView>(
            Toolset::Repos,
            "get_file_contents",
            "Read a file from the code host",
            "Returns one file of a repository at a branch, tag or commit, straight from the code host (search_code \
             and get_file read the index instead).",
            Effect::Read,
            GetFileContents,
        )
        .open_world(),
        ToolSpec::new::<PullRequestFilesArgs, PullRequestFiles>(
            Toolset::PullRequests,
            "list_pull_request_files",
            "List a pull request's files",
            "Lists the files a pull request changes, each with its status, line counts and patch.",
            Effect::Read,
            ListPullRequestFiles,
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

fn page_size(limit: Option<u32>) -> Result<u32, ToolError> {
    match limit.unwrap_or(30) {
        limit @ 1..=100 => Ok(limit),
        _ => Err(ToolError::invalid("limit must be 1-100")),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RepositoryArgs {
    /// The repository's URL, e.g. `https://github.com/acme/api`.
    pub repository_url: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RepositoryView {
    pub provider: String,
    pub full_name: String,
    pub description: String,
    pub default_branch: String,
    pub clone_url: String,
    pub web_url: String,
    pub private: bool,
}

struct GetRepository;

#[async_trait]
impl ToolHandler for GetRepository {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: RepositoryArgs = arguments(args)?;
        let tenant = ctx.principal.tenant_id;
        let host = ctx.hosts.for_repository(tenant, &args.repository_url).await?;
        let repository = host.get_repository(tenant, &args.repository_url).await?;
        ToolOutput::json(&RepositoryView {
            provider: repository.provider,
            full_name: clean(&repository.full_name),
            description: repository.description,
            default_branch: clean(&repository.default_branch),
            clone_url: repository.clone_url,
            web_url: repository.web_url,
            private: repository.private,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BranchListArgs {
    pub repository_url: String,
    /// 1-100; default 30.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BranchView {
    pub name: String,
    pub commit_sha: String,
    pub protected: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BranchList {
    pub branches: Vec<BranchView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

struct ListBranches;

#[async_trait]
impl ToolHandler for ListBranches {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: BranchListArgs = arguments(args)?;
        let tenant = ctx.principal.tenant_id;
        let host = ctx.hosts.for_repository(tenant, &args.repository_url).await?;
        let page =
            host.list_branches(tenant, &args.repository_url, args.cursor.as_deref(), page_size(args.limit)?).await?;
        ToolOutput::json(&BranchList {
            branches: page
                .items
                .into_iter()
                .map(|b| BranchView { name: clean(&b.name), commit_sha: b.commit_sha, protected: b.protected })
                .collect(),
            next_cursor: page.next,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BranchArgs {
    pub repository_url: String,
    /// The new branch's name.
    pub name: String,
    /// A branch, tag or commit to start from.
    pub from: String,
}

struct CreateBranch;

#[async_trait]
impl ToolHandler for CreateBranch {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: BranchArgs = arguments(args)?;
        let tenant = ctx.principal.tenant_id;
        let host = ctx.hosts.for_repository(tenant, &args.repository_url).await?;
        let branch = host.create_branch(tenant, &args.repository_url, &args.name, &args.from).await?;
        ToolOutput::json(&BranchView { name: clean(&branch.name), commit_sha: branch.commit_sha, protected: false })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TreeArgs {
    pub repository_url: String,
    /// A branch, tag or commit.
    #[serde(rename = "ref")]
    pub git_ref: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TreeEntryView {
    pub path: String,
    /// file, directory or submodule.
    pub kind: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TreeView {
    pub entries: Vec<TreeEntryView>,
    /// The host cut the listing short.
    pub truncated: bool,
}

struct GetRepositoryTree;

#[async_trait]
impl ToolHandler for GetRepositoryTree {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: TreeArgs = arguments(args)?;
        let tenant = ctx.principal.tenant_id;
        let host = ctx.hosts.for_repository(tenant, &args.repository_url).await?;
        let tree = host.tree(tenant, &args.repository_url, &args.git_ref).await?;
        let kind = |kind: TreeEntryKind| match kind {
            TreeEntryKind::File => "file",
            TreeEntryKind::Directory => "directory",
            TreeEntryKind::Submodule => "submodule",
        };
        ToolOutput::json(&TreeView {
            entries: tree
                .entries
                .into_iter()
                .map(|e| TreeEntryView { path: clean(&e.path), kind: kind(e.kind).into() })
                .collect(),
            truncated: tree.truncated,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileArgs {
    pub repository_url: String,
    /// Path in the repository, e.g. `src/lib.rs`.
    pub path: String,
    /// A branch, tag or commit.
    #[serde(rename = "ref")]
    pub git_ref: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FileView {
    pub path: String,
    /// The content as UTF-8 text (invalid bytes replaced).
    pub content: String,
    pub bytes: usize,
}

struct GetFileContents;

#[async_trait]
impl ToolHandler for GetFileContents {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: FileArgs = arguments(args)?;
        let tenant = ctx.principal.tenant_id;
        let host = ctx.hosts.for_repository(tenant, &args.repository_url).await?;
        let bytes = host.file_contents(tenant, &args.repository_url, &args.path, &args.git_ref).await?;
        ToolOutput::json(&FileView {
            path: args.path,
            content: clean(&String::from_utf8_lossy(&bytes)),
            bytes: bytes.len(),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PullRequestFilesArgs {
    pub repository_url: String,
    pub number: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PullRequestFileView {
    pub path: String,
    pub previous_path: Option<String>,
    /// added, modified, removed or renamed.
    pub status: String,
    pub additions: u32,
    pub deletions: u32,
    /// Unified-diff hunks; absent for binary or very large files.
    pub patch: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PullRequestFiles {
    pub files: Vec<PullRequestFileView>,
}

struct ListPullRequestFiles;

#[async_trait]
impl ToolHandler for ListPullRequestFiles {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: PullRequestFilesArgs = arguments(args)?;
        let tenant = ctx.principal.tenant_id;
        let host = ctx.hosts.for_repository(tenant, &args.repository_url).await?;
        let files = host.pull_request_files(tenant, &args.repository_url, args.number).await?;
        let view = |file: FilePatch| PullRequestFileView {
            path: clean(&file.path),
            previous_path: file.previous_path.as_deref().map(clean),
            status: match file.status {
                FileStatus::Added => "added",
                FileStatus::Modified => "modified",
                FileStatus::Removed => "removed",
                FileStatus::Renamed => "renamed",
            }
            .into(),
            additions: file.additions,
            deletions: file.deletions,
            patch: file.patch.as_deref().map(clean),
        };
        ToolOutput::json(&PullRequestFiles { files: files.into_iter().map(view).collect() })
    }
}
