//! The indexer: clones, chunks and embeds repositories and serves hybrid
//! code search, over gRPC `devops_mcp.indexer.v1.Indexer`.
//!
//! [`pipeline::CodeIndex`] holds the domain logic; this module converts the
//! generated types at the edge and shares concurrent runs ([`jobs`]).

pub mod chunk;
pub mod embed;
pub mod filter;
pub mod glob;
pub mod jobs;
pub mod lexical;
pub mod minilm;
pub mod pipeline;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use devops_config::{Config, EmbedderKind};
use devops_errors::ApiError;
use devops_git::FetchOptions;
use devops_models::TenantId;
use devops_proto::indexer::v1 as pb;
use devops_proto::indexer::v1::indexer_server::{Indexer, IndexerServer};
use devops_runtime::{Backend, ServiceContext, grpc};
use futures::Stream;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::chunk::ChunkLimits;
use crate::embed::{Embedder, HashEmbedder, OpenAiEmbedder};
use crate::jobs::{JobState, Jobs, Subscription};
use crate::pipeline::{CodeIndex, Progress, SearchParams, Settings};

pub const NAME: &str = "indexer";
/// The cache holds the per-repository lock that keeps one run per repository
/// across replicas; the secret store, the data key that opens connection
/// credentials (private repositories).
pub const NEEDS: &[Backend] = &[Backend::Store, Backend::Cache, Backend::Secrets];

/// How long a replica's claim on a repository lasts without renewal.
const RUN_LOCK_TTL: Duration = Duration::from_secs(30 * 60);

/// The embedder the configuration names; a model that cannot load fails start-up.
pub fn embedder(config: &Config) -> devops_runtime::Result<Arc<dyn Embedder>> {
    Ok(match config.indexer.embedder {
        EmbedderKind::Hash => Arc::new(HashEmbedder),
        EmbedderKind::Openai => Arc::new(OpenAiEmbedder::new(
            &config.indexer.embeddings_url,
            &config.indexer.embeddings_model,
            std::env::var("DEVOPS_MCP_EMBEDDINGS_API_KEY").ok(),
        )),
        EmbedderKind::Minilm => Arc::new(
            minilm::MiniLmEmbedder::load(std::path::Path::new(&config.indexer.model_dir))
                .map_err(|err| devops_config::Error::Invalid(format!("indexer.model_dir: {err}")))?,
        ),
    })
}

pub fn code_index(
    config: &Config,
    store: Arc<dyn devops_store::Store>,
    hosts: devops_providers::Hosts,
) -> devops_runtime::Result<CodeIndex> {
    let indexer = &config.indexer;
    Ok(CodeIndex {
        code: store.code(),
        store,
        embedder: embedder(config)?,
        policy: devops_runtime::providers::url_policy(config),
        hosts,
        settings: Arc::new(Settings {
            cache_root: config.repo_cache_dir(),
            mirror: FetchOptions {
                max_repo_bytes: indexer.max_repo_bytes,
                fetch_timeout: Duration::from_secs(indexer.fetch_timeout_secs),
                ssh_identity_file: non_empty_path(&indexer.ssh_identity_file),
                ssh_known_hosts_file: non_empty_path(&indexer.ssh_known_hosts_file),
                ca_file: non_empty_path(&indexer.ca_file),
                http_authorization: None,
            },
            max_file_bytes: indexer.max_file_bytes,
            chunk: ChunkLimits { max_bytes: indexer.max_chunk_bytes, ..ChunkLimits::default() },
        }),
    })
}

#[derive(Clone)]
pub struct IndexerService {
    index: CodeIndex,
    cache: Arc<dyn devops_adapters::cache::Cache>,
    jobs: Jobs,
}

impl IndexerService {
    pub fn new(index: CodeIndex, cache: Arc<dyn devops_adapters::cache::Cache>) -> Self {
        Self { index, cache, jobs: Jobs::default() }
    }
}

fn non_empty_path(value: &str) -> Option<std::path::PathBuf> {
    (!value.is_empty()).then(|| value.into())
}

fn status(err: &(impl devops_errors::HasErrorCode + ?Sized)) -> Status {
    ApiError::from_coded(err).into()
}

fn progress_message(p: &Progress, done: bool) -> pb::IndexProgress {
    pb::IndexProgress {
        files_done: p.files_done,
        files_total: p.files_total,
        chunks: p.chunks,
        bytes: p.bytes,
        embeddings_reused: p.embeddings_reused,
        embeddings_computed: p.embeddings_computed,
        eta_ms: p.eta_ms,
        commit: p.commit.clone(),
        phase: p.phase.as_str().to_owned(),
        repository_id: p.repository_id.map(|id| id.to_string()).unwrap_or_default(),
        files_deleted: p.files_deleted,
        files_skipped: p.files_skipped,
        skipped: p
            .skipped
            .iter()
            .map(|(path, reason)| pb::SkippedFile { path: path.clone(), reason: reason.as_str().to_owned() })
            .collect(),
        done,
    }
}

/// The stream one subscriber sees: every state change until the run ends.
fn progress_stream(subscription: Subscription) -> impl Stream<Item = Result<pb::IndexProgress, Status>> {
    futures::stream::unfold(Some((subscription, true)), |state| async move {
        let (mut subscription, first) = state?;
        if !first && subscription.state.changed().await.is_err() {
            // The run ended without a final state (its task panicked).
            let err = Status::internal("the index run stopped unexpectedly");
            return Some((Err(err), None));
        }
        let current = subscription.state.borrow_and_update().clone();
        match current {
            JobState::Running(progress) => Some((Ok(progress_message(&progress, false)), Some((subscription, false)))),
            JobState::Finished(progress) => Some((Ok(progress_message(&progress, true)), None)),
            JobState::Failed(err) => Some((Err(err.into()), None)),
        }
    })
}

impl IndexerService {
    /// Runs one index under the repository's cross-replica lock, publishing its state.
    fn start(
        &self,
        tenant: TenantId,
        source: devops_git::CheckedUrl,
        git_ref: String,
        full: bool,
    ) -> impl FnOnce(watch::Sender<JobState>, tokio_util::sync::CancellationToken) -> tokio::task::JoinHandle<()> {
        let index = self.index.clone();
        let cache = self.cache.clone();
        move |state, cancel| {
            tokio::spawn(async move {
                let lock_key = format!("index-lock:{tenant}:{}", chunk::content_hash("", &source.url));
                let token = loop {
                    match cache.try_lock(&lock_key, RUN_LOCK_TTL).await {
                        Ok(Some(token)) => break Some(token),
                        Ok(None) => {}
                        Err(err) => {
                            state.send_replace(JobState::Failed(ApiError::from_coded(&err)));
                            return;
                        }
                    }
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        () = cancel.cancelled() => break None,
                    }
                };
                let Some(token) = token else {
                    state.send_replace(JobState::Failed(ApiError::from_coded(&pipeline::Error::Cancelled)));
                    return;
                };
                let running = state.clone();
                let report = move |progress: &Progress| {
                    running.send_replace(JobState::Running(progress.clone()));
                };
                let outcome = index.index(tenant, source, &git_ref, full, &report, &cancel).await;
                if let Err(err) = cache.unlock(&lock_key, &token).await {
                    tracing::warn!(error = %err, "releasing the index lock failed; it expires on its own");
                }
                match outcome {
                    Ok(progress) => state.send_replace(JobState::Finished(progress)),
                    Err(err) => {
                        if !matches!(err, pipeline::Error::Cancelled) {
                            tracing::warn!(%tenant, error = %err, "index run failed");
                        }
                        state.send_replace(JobState::Failed(ApiError::from_coded(&err)))
                    }
                };
            })
        }
    }
}

#[tonic::async_trait]
impl Indexer for IndexerService {
    type IndexRepositoryStream = Pin<Box<dyn Stream<Item = Result<pb::IndexProgress, Status>> + Send>>;

    async fn index_repository(
        &self,
        request: Request<pb::IndexRepositoryRequest>,
    ) -> Result<Response<Self::IndexRepositoryStream>, Status> {
        let request = request.into_inner();
        let tenant = grpc::tenant_id(&request.tenant_id)?;
        let source = self.index.check_url(&request.repository_url).await.map_err(|e| status(&e))?;
        let key = (tenant, source.url.clone());
        let subscription = self.jobs.join_or_start(key, self.start(tenant, source, request.git_ref, request.full));
        Ok(Response::new(Box::pin(progress_stream(subscription))))
    }

    async fn get_index_status(
        &self,
        request: Request<pb::GetIndexStatusRequest>,
    ) -> Result<Response<pb::IndexStatus>, Status> {
        let request = request.into_inner();
        let tenant = grpc::tenant_id(&request.tenant_id)?;
        let repo = self.index.resolve(tenant, &request.repository_url).await.map_err(|e| status(&e))?;
        let progress = self.jobs.progress(&(tenant, repo.url.clone())).map(|p| progress_message(&p, false));
        Ok(Response::new(pb::IndexStatus {
            repository_url: repo.url,
            status: repo.state.as_str().to_owned(),
            last_indexed_commit: repo.last_indexed_commit.unwrap_or_default(),
            chunks: repo.chunk_count,
            repository_id: repo.id.to_string(),
            files: repo.file_count,
            last_error: repo.last_error.unwrap_or_default(),
            embedder: repo.embedder.unwrap_or_default(),
            progress,
        }))
    }

    async fn search(&self, request: Request<pb::SearchRequest>) -> Result<Response<pb::SearchResponse>, Status> {
        let request = request.into_inner();
        let tenant = grpc::tenant_id(&request.tenant_id)?;
        let params = SearchParams {
            query: request.query,
            limit: request.limit,
            repositories: request.repositories,
            path_glob: Some(request.path_glob).filter(|g| !g.is_empty()),
            language: Some(request.language).filter(|l| !l.is_empty()),
            mode: devops_models::SearchMode::parse(&request.mode).ok_or_else(|| {
                Status::from(ApiError::new(
                    devops_errors::ErrorCode::InvalidArgument,
                    "mode must be hybrid, lexical or vector",
                ))
            })?,
        };
        let hits = self.index.search(tenant, &params).await.map_err(|e| status(&e))?;
        Ok(Response::new(pb::SearchResponse {
            hits: hits
                .into_iter()
                .map(|hit| pb::SearchHit {
                    repository_url: hit.repository_url,
                    path: hit.path,
                    start_line: hit.start_line,
                    end_line: hit.end_line,
                    symbol: hit.symbol,
                    snippet: hit.content,
                    score: hit.score,
                    language: hit.language,
                    repository_id: hit.repository_id.to_string(),
                })
                .collect(),
        }))
    }

    async fn get_file(&self, request: Request<pb::GetFileRequest>) -> Result<Response<pb::File>, Status> {
        let request = request.into_inner();
        let tenant = grpc::tenant_id(&request.tenant_id)?;
        let (repo, commit, content) = self
            .index
            .file(tenant, &request.repository, &request.path, &request.git_ref)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::File {
            repository_url: repo.url,
            language: chunk::language_of(&request.path).to_owned(),
            path: request.path,
            commit,
            content,
        }))
    }
}

pub async fn run(ctx: ServiceContext) -> devops_runtime::Result<()> {
    let listen = ctx.config.services.indexer.listen;
    let store = ctx.backends.store()?;
    let hosts = devops_runtime::providers::hosts(&ctx.config, &store, ctx.backends.secrets()?.as_ref()).await?;
    let index = code_index(&ctx.config, store, hosts)?;
    let service = IndexerService::new(index, ctx.backends.cache()?);
    grpc::serve(&ctx, listen, IndexerServer::new(service), devops_proto::FILE_DESCRIPTOR_SET).await
}
