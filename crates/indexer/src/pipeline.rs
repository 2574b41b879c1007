//! One index run, and search: the indexer's domain logic, free of gRPC.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use devops_errors::{ErrorCode, HasErrorCode};
use devops_git::{ChangeKind, CheckedUrl, FetchOptions, Mirror, TreeEntry, UrlPolicy};
use devops_models::{CodeHit, CodeQuery, IndexRecord, IndexState, NewCodeChunk, Repository, SearchMode, TenantId};
use devops_store::{CodeStore, Page, Store};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::chunk::{self, ChunkLimits};
use crate::embed::Embedder;
use crate::filter::{PathFilter, SkipReason, check_content};
use crate::{glob, lexical};

/// Files read, chunked, embedded and written per transaction.
const FILES_PER_BATCH: usize = 64;
/// Texts per call to the embedder.
const EMBED_BATCH: usize = 64;
/// Skipped files listed on the final progress message.
const MAX_SKIPPED_LISTED: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Git(#[from] devops_git::Error),
    #[error(transparent)]
    Store(#[from] devops_store::Error),
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("the index run was cancelled; the index is consistent at the last completed batch")]
    Cancelled,
    #[error("chunking failed: {0}")]
    Chunking(String),
    #[error(transparent)]
    Provider(#[from] devops_providers::Error),
}

impl HasErrorCode for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Error::Git(err) => err.code(),
            Error::Store(err) => err.code(),
            Error::Embed(err) => err.code(),
            Error::Provider(err) => err.code(),
            Error::Invalid(_) => ErrorCode::InvalidArgument,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Cancelled => ErrorCode::Cancelled,
            Error::Chunking(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Receives progress as a run goes.
pub type Report = dyn Fn(&Progress) + Send + Sync;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Phase {
    #[default]
    Fetching,
    Indexing,
    Done,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Fetching => "fetching",
            Phase::Indexing => "indexing",
            Phase::Done => "done",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub phase: Phase,
    pub repository_id: Option<Uuid>,
    pub commit: String,
    pub files_total: u64,
    pub files_done: u64,
    pub files_deleted: u64,
    pub files_skipped: u64,
    pub chunks: u64,
    pub bytes: u64,
    pub embeddings_reused: u64,
    pub embeddings_computed: u64,
    pub eta_ms: u64,
    pub skipped: Vec<(String, SkipReason)>,
}

/// What a search asks, before it is resolved against the tenant's repositories.
#[derive(Debug, Clone, Default)]
pub struct SearchParams {
    pub query: String,
    pub limit: u32,
    /// Ids, URLs or `owner/name`s.
    pub repositories: Vec<String>,
    pub path_glob: Option<String>,
    pub language: Option<String>,
    pub mode: SearchMode,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub cache_root: PathBuf,
    pub mirror: FetchOptions,
    pub max_file_bytes: u64,
    pub chunk: ChunkLimits,
}

/// The code index of every tenant.
#[derive(Clone)]
pub struct CodeIndex {
    pub store: Arc<dyn Store>,
    pub code: Arc<dyn CodeStore>,
    pub embedder: Arc<dyn Embedder>,
    pub policy: Arc<UrlPolicy>,
    pub settings: Arc<Settings>,
    /// Credentials for hosted repositories, from the tenant's connections.
    pub hosts: devops_providers::Hosts,
}

impl CodeIndex {
    /// Checks a repository URL against the SSRF policy.
    pub async fn check_url(&self, raw: &str) -> Result<CheckedUrl> {
        Ok(self.policy.check(raw).await?)
    }

    /// Indexes `source` at `git_ref`, incrementally unless `full`, reporting
    /// progress on `report` and stopping between batches when `cancel` fires.
    pub async fn index(
        &self,
        tenant: TenantId,
        source: CheckedUrl,
        git_ref: &str,
        full: bool,
        report: &Report,
        cancel: &CancellationToken,
    ) -> Result<Progress> {
        let repo = self.store.register_repository(tenant, &source.url, &source.display_name()).await?;
        let mut progress = Progress { repository_id: Some(repo.id), ..Progress::default() };
        report(&progress);
        let indexing = IndexRecord {
            state: IndexState::Indexing,
            commit: None,
            embedder: None,
            file_count: None,
            chunk_count: None,
            last_error: repo.last_error.clone(),
        };
        self.store.record_index(tenant, repo.id, &indexing).await?;
        let outcome = self.run(tenant, &repo, source, git_ref, full, &mut progress, report, cancel).await;
        let (files, chunks) = self.code.index_size(tenant, repo.id).await?;
        let record = match &outcome {
            Ok(commit) => IndexRecord {
                state: IndexState::Ready,
                commit: Some(commit.clone()),
                embedder: Some(self.embedder.id().to_owned()),
                file_count: Some(files),
                chunk_count: Some(chunks),
                last_error: None,
            },
            Err(err) => IndexRecord {
                // An earlier index stays searchable; a cancelled run is not a failure.
                state: match (err, &repo.last_indexed_commit) {
                    (Error::Cancelled, Some(_)) => IndexState::Ready,
                    (Error::Cancelled, None) => IndexState::Registered,
                    _ => IndexState::Failed,
                },
                commit: None,
                embedder: None,
                file_count: Some(files),
                chunk_count: Some(chunks),
                last_error: Some(err.to_string()),
            },
        };
        self.store.record_index(tenant, repo.id, &record).await?;
        outcome?;
        progress.phase = Phase::Done;
        progress.eta_ms = 0;
        report(&progress);
        Ok(progress)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        tenant: TenantId,
        repo: &Repository,
        source: CheckedUrl,
        git_ref: &str,
        full: bool,
        progress: &mut Progress,
        report: &Report,
        cancel: &CancellationToken,
    ) -> Result<String> {
        // Private repositories: the tenant's connection's token, for this fetch only.
        let mut options = self.settings.mirror.clone();
        options.http_authorization = self.hosts.git_authorization(tenant, &source.url).await?;
        let mirror = Mirror::open(&self.settings.cache_root, &tenant.to_string(), source).await?;
        let commit = tokio::select! {
            commit = mirror.fetch(git_ref, &options) => commit?,
            () = cancel.cancelled() => return Err(Error::Cancelled),
        };
        progress.commit = commit.clone();
        progress.phase = Phase::Indexing;
        report(progress);

        let same_embedder = repo.embedder.as_deref() == Some(self.embedder.id());
        let previous = match &repo.last_indexed_commit {
            Some(previous) if !full && same_embedder && mirror.has_commit(previous).await => Some(previous.clone()),
            _ => None,
        };
        if previous.as_deref() == Some(commit.as_str()) {
            return Ok(commit);
        }

        let tree = mirror.list_tree(&commit).await?;
        let mut reader = mirror.blob_reader()?;
        let mut gitignores = Vec::new();
        for entry in tree.iter().filter(|e| e.path == ".gitignore" || e.path.ends_with("/.gitignore")) {
            if entry.size <= 1 << 20 {
                gitignores
                    .push((entry.path.clone(), String::from_utf8_lossy(&reader.read(&entry.oid).await?).into_owned()));
            }
        }
        let filter = PathFilter::new(&gitignores);
        let mut wanted: HashMap<&str, &TreeEntry> = HashMap::new();
        let mut skipped: HashMap<&str, SkipReason> = HashMap::new();
        for entry in &tree {
            match filter.check(&entry.path, entry.size, self.settings.max_file_bytes) {
                Some(reason) => {
                    skipped.insert(&entry.path, reason);
                }
                None => {
                    wanted.insert(&entry.path, entry);
                }
            }
        }

        let mut upserts: Vec<&TreeEntry> = Vec::new();
        let mut deletes: Vec<String> = Vec::new();
        let mut reported: Vec<(String, SkipReason)> = Vec::new();
        match &previous {
            Some(previous) => {
                for change in mirror.diff(previous, &commit).await? {
                    match (change.kind, wanted.get(change.path.as_str())) {
                        (ChangeKind::Upsert, Some(entry)) => upserts.push(entry),
                        (ChangeKind::Upsert, None) => {
                            if let Some(reason) = skipped.get(change.path.as_str()) {
                                reported.push((change.path.clone(), *reason));
                            }
                            deletes.push(change.path);
                        }
                        (ChangeKind::Delete, _) => deletes.push(change.path),
                    }
                }
            }
            None => {
                upserts = wanted.values().copied().collect();
                upserts.sort_by(|a, b| a.path.cmp(&b.path));
                let indexed = self.code.indexed_paths(tenant, repo.id).await?;
                deletes = indexed.into_iter().filter(|p| !wanted.contains_key(p.as_str())).collect();
                reported = skipped.iter().map(|(p, r)| ((*p).to_owned(), *r)).collect();
                reported.sort_by(|a, b| a.0.cmp(&b.0));
            }
        }

        progress.files_total = upserts.len() as u64;
        progress.files_deleted = deletes.len() as u64;
        progress.files_skipped = reported.len() as u64;
        report(progress);
        if !deletes.is_empty() {
            self.code.replace_files(tenant, repo.id, self.embedder.id(), &deletes, &[]).await?;
        }

        let started = Instant::now();
        for batch in upserts.chunks(FILES_PER_BATCH) {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let mut files = Vec::with_capacity(batch.len());
            for entry in batch {
                let bytes = reader.read(&entry.oid).await?;
                progress.bytes += bytes.len() as u64;
                match check_content(&bytes) {
                    Some(reason) => reported.push((entry.path.clone(), reason)),
                    None => files.push((entry.path.clone(), String::from_utf8(bytes).unwrap_or_default())),
                }
            }
            let chunk_limits = self.settings.chunk;
            let chunks = tokio::task::spawn_blocking(move || {
                files.iter().flat_map(|(path, text)| chunk::chunk_file(path, text, chunk_limits)).collect::<Vec<_>>()
            })
            .await
            .map_err(|err| Error::Chunking(err.to_string()))?;
            let new_chunks = self.embed_chunks(tenant, chunks, progress, cancel).await?;
            // Every path of the batch is replaced, so a file that became binary loses its old chunks.
            let paths: Vec<String> = batch.iter().map(|e| e.path.clone()).collect();
            self.code.replace_files(tenant, repo.id, self.embedder.id(), &paths, &new_chunks).await?;
            progress.files_done += batch.len() as u64;
            progress.chunks += new_chunks.len() as u64;
            progress.files_skipped = reported.len() as u64;
            let remaining = progress.files_total - progress.files_done;
            let per_file = started.elapsed().as_secs_f64() / progress.files_done.max(1) as f64;
            progress.eta_ms = Duration::from_secs_f64(per_file * remaining as f64).as_millis() as u64;
            report(progress);
        }
        reported.truncate(MAX_SKIPPED_LISTED);
        progress.skipped = reported;
        mirror.keep(&commit).await?;
        Ok(commit)
    }

    /// Vectors for `chunks`: reused by content hash where the tenant has
    /// one, computed (once per distinct hash) where not.
    async fn embed_chunks(
        &self,
        tenant: TenantId,
        chunks: Vec<chunk::Chunk>,
        progress: &mut Progress,
        cancel: &CancellationToken,
    ) -> Result<Vec<NewCodeChunk>> {
        let mut hashes: Vec<String> = chunks.iter().map(|c| c.content_hash.clone()).collect();
        hashes.sort();
        hashes.dedup();
        let mut vectors = self.code.embeddings_by_hash(tenant, self.embedder.id(), &hashes).await?;
        let mut seen = HashSet::new();
        let missing: Vec<&chunk::Chunk> = chunks
            .iter()
            .filter(|c| !vectors.contains_key(&c.content_hash) && seen.insert(c.content_hash.clone()))
            .collect();
        for batch in missing.chunks(EMBED_BATCH) {
            let texts: Vec<String> = batch.iter().map(|c| embedding_input(&c.symbol, &c.content)).collect();
            let computed = tokio::select! {
                computed = self.embedder.embed(&texts) => computed?,
                () = cancel.cancelled() => return Err(Error::Cancelled),
            };
            for (chunk, vector) in batch.iter().zip(computed) {
                vectors.insert(chunk.content_hash.clone(), vector);
            }
            progress.embeddings_computed += batch.len() as u64;
        }
        progress.embeddings_reused += (chunks.len() - missing.len()) as u64;
        Ok(chunks
            .into_iter()
            .filter_map(|c| {
                let embedding = vectors.get(&c.content_hash)?.clone();
                Some(NewCodeChunk {
                    search_text: lexical::document_text(&c.path, &c.symbol, &c.content),
                    path: c.path,
                    language: c.language.to_owned(),
                    symbol: c.symbol,
                    start_line: c.start_line,
                    end_line: c.end_line,
                    content_hash: c.content_hash,
                    content: c.content,
                    embedding,
                })
            })
            .collect())
    }

    /// A repository of the tenant by id, URL or `owner/name`.
    pub async fn resolve(&self, tenant: TenantId, reference: &str) -> Result<Repository> {
        if let Ok(id) = reference.parse::<Uuid>() {
            return Ok(self.store.get_repository(tenant, id).await?);
        }
        if let Some(repo) = self.store.find_repository(tenant, reference).await? {
            return Ok(repo);
        }
        if let Some(url) = self.policy.identity(reference)
            && let Some(repo) = self.store.find_repository(tenant, &url).await?
        {
            return Ok(repo);
        }
        let wanted = reference.trim_end_matches('/').trim_end_matches(".git");
        let mut page = Page::first(Page::MAX_LIMIT);
        loop {
            let repos = self.store.list_repositories(tenant, page).await?;
            if let Some(repo) = repos
                .iter()
                .find(|r| r.name == wanted || r.url.trim_end_matches('/').trim_end_matches(".git") == wanted)
            {
                return Ok(repo.clone());
            }
            match repos.last() {
                Some(last) if repos.len() == Page::MAX_LIMIT as usize => page.after = Some(last.id),
                _ => return Err(Error::NotFound(format!("repository {reference:?}"))),
            }
        }
    }

    pub async fn search(&self, tenant: TenantId, params: &SearchParams) -> Result<Vec<CodeHit>> {
        if params.query.is_empty() || params.query.chars().count() > 1000 {
            return Err(Error::Invalid("query must be 1-1000 characters".into()));
        }
        let query = params.query.trim();
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let limit = if params.limit == 0 { 10 } else { params.limit };
        if limit > 100 {
            return Err(Error::Invalid("limit must be between 1 and 100".into()));
        }
        let mut repositories = Vec::with_capacity(params.repositories.len());
        for reference in &params.repositories {
            repositories.push(self.resolve(tenant, reference).await?.id);
        }
        let path_regex = params
            .path_glob
            .as_deref()
            .filter(|g| !g.is_empty())
            .map(glob::to_regex)
            .transpose()
            .map_err(Error::Invalid)?;
        let embedding = self.embedder.embed(&[query.to_owned()]).await?.pop().unwrap_or_default();
        let code_query = CodeQuery {
            embedder: self.embedder.id().to_owned(),
            embedding,
            terms: lexical::terms(query),
            identifiers: lexical::identifiers(query),
            limit,
            repositories,
            language: params.language.clone().filter(|l| !l.is_empty()).map(|l| l.to_lowercase()),
            path_regex,
            mode: params.mode,
        };
        Ok(self.code.search(tenant, &code_query).await?)
    }

    /// A file at the repository's indexed commit, or at `git_ref` if the cache holds it.
    pub async fn file(
        &self,
        tenant: TenantId,
        reference: &str,
        path: &str,
        git_ref: &str,
    ) -> Result<(Repository, String, Vec<u8>)> {
        let repo = self.resolve(tenant, reference).await?;
        let path = path.trim_start_matches('/');
        if path.is_empty() || path.split('/').any(|p| p == "..") {
            return Err(Error::Invalid("path must be a file path inside the repository".into()));
        }
        let mirror = Mirror::existing(&self.settings.cache_root, &tenant.to_string(), &repo.url)?;
        let commit = if git_ref.is_empty() {
            repo.last_indexed_commit
                .clone()
                .ok_or_else(|| Error::NotFound(format!("an indexed commit of {}", repo.url)))?
        } else {
            mirror.rev_parse(git_ref).await?
        };
        let content = mirror.read_file(&commit, path, self.settings.max_file_bytes).await?;
        Ok((repo, commit, content))
    }
}

/// What the embedder sees of a chunk; the content hash covers the same.
fn embedding_input(symbol: &str, content: &str) -> String {
    if symbol.is_empty() { content.to_owned() } else { format!("{symbol}\n{content}") }
}
