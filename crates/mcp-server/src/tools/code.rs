//! Code intelligence: indexing repositories and searching them, through the
//! indexer's gRPC service. Repository content is outside content: every
//! snippet and file is sanitised before it reaches the agent.

use async_trait::async_trait;
use devops_errors::{ApiError, ErrorCode};
use devops_models::{Repository, SearchMode};
use devops_proto::indexer::v1 as pb;
use devops_store::Page;
use rmcp::model::JsonObject;
use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use crate::policy::Toolset;
use crate::registry::{Effect, Registry, ToolContext, ToolError, ToolHandler, ToolOutput, ToolSpec, arguments};
use devops_models::sanitize::sanitize;

/// Skipped files listed in a tool result; the count is always complete.
const SKIPPED_LISTED: usize = 50;

pub fn register(registry: &mut Registry) {
    let specs = [
        ToolSpec::new::<IndexArgs, IndexView>(
            Toolset::Search,
            "index_repository",
            "Index a repository",
            "Fetches a git repository (https or ssh URL) and indexes its code for search_code. Re-indexing is \
             incremental: only files changed since the last indexed commit are re-read and re-embedded. Reports \
             progress and stops when cancelled; the index stays consistent either way.",
            Effect::IdempotentWrite,
            IndexRepository,
        )
        .open_world(),
        ToolSpec::new::<SearchArgs, SearchView>(
            Toolset::Search,
            "search_code",
            "Search code",
            "Finds code in the tenant's indexed repositories by meaning and by identifier (hybrid ranking), and \
             cites each hit: repository, path, line range, symbol and snippet. Filter by repository, path glob \
             (e.g. src/**/*.rs) or language.",
            Effect::Read,
            SearchCode,
        ),
        ToolSpec::new::<GetFileArgs, FileView>(
            Toolset::Repos,
            "get_file",
            "Read a file",
            "Returns one file of an indexed repository, at its last indexed commit unless a ref is given.",
            Effect::Read,
            GetFile,
        ),
        ToolSpec::new::<ListReposArgs, RepositoryList>(
            Toolset::Repos,
            "list_repositories",
            "List repositories",
            "Lists the tenant's repositories with their index state.",
            Effect::Read,
            ListRepositories,
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

#[derive(Debug, Deserialize, JsonSchema)]
pub struct IndexArgs {
    /// https or ssh clone URL (scp-style `git@host:owner/repo.git` works too).
    pub repository_url: String,
    /// Branch, tag or commit; default: the default branch.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// Re-read and re-embed everything, not only what changed.
    pub full: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SkippedView {
    pub path: String,
    /// gitignored, vendored, generated, binary or too_large.
    pub reason: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IndexView {
    pub repository_id: String,
    pub commit: String,
    /// Files read (changed ones only, on a re-index); binary ones among them are skipped.
    pub files_read: u64,
    pub files_deleted: u64,
    pub files_skipped: u64,
    pub chunks_written: u64,
    pub bytes_read: u64,
    pub embeddings_reused: u64,
    pub embeddings_computed: u64,
    /// Up to 50 of the skipped files.
    pub skipped: Vec<SkippedView>,
}

struct IndexRepository;

#[async_trait]
impl ToolHandler for IndexRepository {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: IndexArgs = arguments(args)?;
        let request = pb::IndexRepositoryRequest {
            tenant_id: ctx.principal.tenant_id.to_string(),
            repository_url: args.repository_url,
            git_ref: args.git_ref.unwrap_or_default(),
            full: args.full.unwrap_or(false),
        };
        // Dropping the stream (the agent cancelled) cancels the run on the indexer.
        let mut stream = ctx.indexer.clone().index_repository(request).await.map_err(grpc_error)?.into_inner();
        let mut last = None;
        while let Some(progress) = stream.message().await.map_err(grpc_error)? {
            let message = format!(
                "{}: {}/{} files, {} chunks, {} embeddings reused",
                progress.phase, progress.files_done, progress.files_total, progress.chunks, progress.embeddings_reused
            );
            let total = (progress.files_total > 0).then_some(progress.files_total);
            ctx.progress.report(progress.files_done, total, &message).await;
            last = Some(progress);
        }
        let done = last
            .filter(|p| p.done)
            .ok_or_else(|| ToolError::new(ErrorCode::Internal, "the indexer ended the run without a result"))?;
        ToolOutput::json(&IndexView {
            repository_id: done.repository_id,
            commit: done.commit,
            files_read: done.files_done,
            files_deleted: done.files_deleted,
            files_skipped: done.files_skipped,
            chunks_written: done.chunks,
            bytes_read: done.bytes,
            embeddings_reused: done.embeddings_reused,
            embeddings_computed: done.embeddings_computed,
            skipped: done
                .skipped
                .into_iter()
                .take(SKIPPED_LISTED)
                .map(|s| SkippedView { path: sanitize(&s.path).into_owned(), reason: s.reason })
                .collect(),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// What to find: words, a question, or an identifier.
    pub query: String,
    /// Hits to return, 1-100; default 10.
    pub limit: Option<u32>,
    /// Repository ids, URLs or owner/name; default: all of the tenant's.
    pub repositories: Option<Vec<String>>,
    /// Only paths matching this glob, e.g. `src/**/*.rs` or `*.py`.
    pub path_glob: Option<String>,
    /// Only this language, e.g. rust, python, typescript, go, java.
    pub language: Option<String>,
    /// How to rank; default hybrid. `lexical` for exact words and identifiers, `vector` for meaning only.
    pub mode: Option<ModeArg>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModeArg {
    #[default]
    Hybrid,
    Lexical,
    Vector,
}

impl From<ModeArg> for SearchMode {
    fn from(arg: ModeArg) -> Self {
        match arg {
            ModeArg::Hybrid => SearchMode::Hybrid,
            ModeArg::Lexical => SearchMode::Lexical,
            ModeArg::Vector => SearchMode::Vector,
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HitView {
    pub repository_url: String,
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub symbol: String,
    pub language: String,
    /// Fused rank score; higher is better.
    pub score: f64,
    pub snippet: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchView {
    pub hits: Vec<HitView>,
}

struct SearchCode;

#[async_trait]
impl ToolHandler for SearchCode {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: SearchArgs = arguments(args)?;
        let request = pb::SearchRequest {
            tenant_id: ctx.principal.tenant_id.to_string(),
            query: args.query,
            limit: args.limit.unwrap_or(10),
            repositories: args.repositories.unwrap_or_default(),
            path_glob: args.path_glob.unwrap_or_default(),
            language: args.language.unwrap_or_default(),
            mode: SearchMode::from(args.mode.unwrap_or_default()).as_str().to_owned(),
        };
        let response = ctx.indexer.clone().search(request).await.map_err(grpc_error)?.into_inner();
        ToolOutput::json(&SearchView {
            hits: response
                .hits
                .into_iter()
                .map(|hit| HitView {
                    repository_url: hit.repository_url,
                    path: sanitize(&hit.path).into_owned(),
                    start_line: hit.start_line,
                    end_line: hit.end_line,
                    symbol: sanitize(&hit.symbol).into_owned(),
                    language: hit.language,
                    score: hit.score,
                    snippet: sanitize(&hit.snippet).into_owned(),
                })
                .collect(),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetFileArgs {
    /// Repository id, URL or owner/name.
    pub repository: String,
    /// Path inside the repository.
    pub path: String,
    /// A commit the index has fetched; default: the last indexed commit.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FileView {
    pub repository_url: String,
    pub path: String,
    pub commit: String,
    pub language: String,
    pub size: u64,
    pub content: String,
}

struct GetFile;

#[async_trait]
impl ToolHandler for GetFile {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: GetFileArgs = arguments(args)?;
        let request = pb::GetFileRequest {
            tenant_id: ctx.principal.tenant_id.to_string(),
            repository: args.repository,
            path: args.path,
            git_ref: args.git_ref.unwrap_or_default(),
        };
        let file = ctx.indexer.clone().get_file(request).await.map_err(grpc_error)?.into_inner();
        let size = file.content.len() as u64;
        let content = String::from_utf8(file.content)
            .map_err(|_| ToolError::invalid(format!("{} is a binary file", file.path)))?;
        ToolOutput::json(&FileView {
            repository_url: file.repository_url,
            path: file.path,
            commit: file.commit,
            language: file.language,
            size,
            content: sanitize(&content).into_owned(),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListReposArgs {
    /// Return repositories after this id (the previous page's `next_after`).
    pub after: Option<String>,
    /// At most this many (1-200, default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RepositoryView {
    pub id: String,
    pub url: String,
    pub name: String,
    /// registered, indexing, ready or failed.
    pub state: String,
    pub last_indexed_commit: Option<String>,
    pub files: u64,
    pub chunks: u64,
    pub indexed_at: Option<String>,
    pub last_error: Option<String>,
}

impl From<Repository> for RepositoryView {
    fn from(r: Repository) -> Self {
        Self {
            id: r.id.to_string(),
            url: r.url,
            name: sanitize(&r.name).into_owned(),
            state: r.state.to_string(),
            last_indexed_commit: r.last_indexed_commit,
            files: r.file_count,
            chunks: r.chunk_count,
            indexed_at: r.indexed_at.map(|t| t.to_rfc3339()),
            last_error: r.last_error,
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RepositoryList {
    pub repositories: Vec<RepositoryView>,
    pub next_after: Option<String>,
}

struct ListRepositories;

#[async_trait]
impl ToolHandler for ListRepositories {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: ListReposArgs = arguments(args)?;
        let after = args
            .after
            .as_deref()
            .map(|raw| raw.parse().map_err(|_| ToolError::invalid(format!("after {raw:?} is not a repository id"))))
            .transpose()?;
        let limit = args.limit.unwrap_or(50);
        if !(1..=Page::MAX_LIMIT).contains(&limit) {
            return Err(ToolError::invalid("limit must be between 1 and 200"));
        }
        let repos = ctx.store.list_repositories(ctx.principal.tenant_id, Page { after, limit }).await?;
        let next_after = (repos.len() == limit as usize).then(|| repos.last().map(|r| r.id.to_string())).flatten();
        ToolOutput::json(&RepositoryList { repositories: repos.into_iter().map(Into::into).collect(), next_after })
    }
}
