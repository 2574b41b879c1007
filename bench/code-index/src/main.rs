//! Code-index benchmarks on this machine. See docs/benchmarks.md for the
//! method and the numbers; every mode prints a human summary and one JSON
//! line per result.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use devops_git::{FetchOptions, UrlPolicy};
use devops_indexer::chunk::{self, ChunkLimits};
use devops_indexer::embed::{Embedder, HashEmbedder};
use devops_indexer::minilm::MiniLmEmbedder;
use devops_indexer::pipeline::{CodeIndex, Progress, SearchParams, Settings};
use devops_models::{SearchMode, TenantId};
use devops_store::{ConnectOptions, PostgresStore, SqliteStore, Store};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "code-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse-and-chunk throughput on one core.
    Chunk {
        /// Directories of source code to read.
        dirs: Vec<PathBuf>,
        #[arg(long, default_value_t = 20_000)]
        max_files: usize,
    },
    /// Embedding throughput: the built-in embedder, and all-MiniLM-L6-v2
    /// when `--model-dir` is given.
    Embed {
        dirs: Vec<PathBuf>,
        #[arg(long, default_value_t = 5_000)]
        max_files: usize,
        #[arg(long)]
        model_dir: Option<PathBuf>,
        /// Chunks given to the neural model (it is ~1000× slower).
        #[arg(long, default_value_t = 1_000)]
        model_chunks: usize,
    },
    /// Full index of a generated repository of real files, re-index after a
    /// 1% change, then search latency and (PostgreSQL) HNSW recall@10.
    Index {
        dirs: Vec<PathBuf>,
        #[arg(long, default_value_t = 10_000)]
        files: usize,
        /// A PostgreSQL server URL; a fresh database is created on it.
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 200)]
        queries: usize,
        /// Skip the SQLite run (its exact scan is meant for ~100k chunks, not a 10k-file repository).
        #[arg(long)]
        postgres_only: bool,
    },
    /// Search latency and HNSW recall@10 again, on the PostgreSQL database an
    /// earlier `index` run left behind (it prints its URL): the same
    /// directories and `--files` give the same queries.
    Search {
        dirs: Vec<PathBuf>,
        #[arg(long, default_value_t = 10_000)]
        files: usize,
        /// The database `index` created.
        #[arg(long)]
        database: String,
        #[arg(long, default_value_t = 200)]
        queries: usize,
        /// Latency only: skip the recall count (minutes of exact scans at 1M chunks).
        #[arg(long)]
        no_recall: bool,
    },
    /// Retrieval quality on a docstring → function set built from a Python
    /// source tree: MRR and recall@10 for lexical, vector and hybrid ranking.
    Quality {
        dir: PathBuf,
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 1_000)]
        max_queries: usize,
        /// Python files of the tree to index (and draw pairs from).
        #[arg(long, default_value_t = 400)]
        max_files: usize,
        /// Also measure all-MiniLM-L6-v2 from this directory.
        #[arg(long)]
        model_dir: Option<PathBuf>,
    },
}

const EXTENSIONS: &[&str] = &["rs", "py", "ts", "tsx", "js", "go", "java"];

/// Source files under `dirs`, as (path relative to its root, text).
fn corpus(dirs: &[PathBuf], max_files: usize) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    for (n, root) in dirs.iter().enumerate() {
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&dir)?.filter_map(|e| e.ok()).collect();
            entries.sort_by_key(|e| e.path());
            for entry in entries {
                let path = entry.path();
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    stack.push(path);
                } else if kind.is_file()
                    && path.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e))
                    && entry.metadata()?.len() < 256 * 1024
                    && let Ok(text) = std::fs::read_to_string(&path)
                {
                    let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
                    files.push((format!("src{n}/{relative}"), text));
                    if files.len() == max_files {
                        return Ok(files);
                    }
                }
            }
        }
    }
    Ok(files)
}

fn emit(value: serde_json::Value) {
    println!("{value}");
}

fn chunk_bench(dirs: &[PathBuf], max_files: usize) -> Result<()> {
    let files = corpus(dirs, max_files)?;
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    let mut best = Duration::MAX;
    let mut chunks = 0;
    for _ in 0..3 {
        let started = Instant::now();
        chunks = files.iter().map(|(p, t)| chunk::chunk_file(p, t, ChunkLimits::default()).len()).sum();
        best = best.min(started.elapsed());
    }
    let mb_s = bytes as f64 / 1e6 / best.as_secs_f64();
    eprintln!(
        "chunk: {} files, {:.1} MB, {chunks} chunks in {best:?} -> {mb_s:.2} MB/s on one core",
        files.len(),
        bytes as f64 / 1e6
    );
    emit(
        serde_json::json!({"bench": "chunk", "files": files.len(), "bytes": bytes, "chunks": chunks, "seconds": best.as_secs_f64(), "mb_per_s": mb_s}),
    );
    Ok(())
}

/// The embedders to measure: the built-in one, and the model if given.
fn embedders(model_dir: Option<&Path>) -> Result<Vec<Arc<dyn Embedder>>> {
    let mut out: Vec<Arc<dyn Embedder>> = vec![Arc::new(HashEmbedder)];
    if let Some(dir) = model_dir {
        out.push(Arc::new(MiniLmEmbedder::load(dir)?));
    }
    Ok(out)
}

async fn embed_bench(dirs: &[PathBuf], max_files: usize, model_dir: Option<&Path>, model_chunks: usize) -> Result<()> {
    let files = corpus(dirs, max_files)?;
    let texts: Vec<String> =
        files.iter().flat_map(|(p, t)| chunk::chunk_file(p, t, ChunkLimits::default())).map(|c| c.content).collect();
    for embedder in embedders(model_dir)? {
        let texts =
            if embedder.id() == HashEmbedder::ID { &texts[..] } else { &texts[..model_chunks.min(texts.len())] };
        let bytes: usize = texts.iter().map(String::len).sum();
        let started = Instant::now();
        let vectors = embedder.embed(texts).await?;
        let elapsed = started.elapsed();
        let per_s = vectors.len() as f64 / elapsed.as_secs_f64();
        eprintln!(
            "embed ({}): {} chunks, {:.1} MB in {elapsed:.2?} -> {per_s:.0} chunks/s, {:.3} MB/s",
            embedder.id(),
            vectors.len(),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / elapsed.as_secs_f64()
        );
        emit(serde_json::json!({
            "bench": "embed", "embedder": embedder.id(), "chunks": vectors.len(), "bytes": bytes,
            "seconds": elapsed.as_secs_f64(), "chunks_per_s": per_s,
        }));
    }
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let status = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "init.defaultBranch=main"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        bail!("git {args:?} failed");
    }
    Ok(())
}

fn write_repo(root: &Path, files: &[(String, String)]) -> Result<()> {
    std::fs::create_dir_all(root)?;
    git(root, &["init", "-q"])?;
    for (path, text) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().context("parent")?)?;
        std::fs::write(full, text)?;
    }
    git(root, &["add", "-A", "-f"])?;
    git(root, &["commit", "-qm", "corpus"])
}

/// What autovacuum does within a minute of a bulk load; search reads the
/// term statistics it keeps.
async fn analyze(pool: &sqlx::PgPool) -> Result<()> {
    sqlx::query("ANALYZE code_chunks").execute(pool).await?;
    Ok(())
}

fn connect_options(url: String) -> ConnectOptions {
    ConnectOptions { url, max_connections: 8, connect_timeout: Duration::from_secs(10) }
}

/// A back end's name, its store, and for PostgreSQL its pool and URL.
type Backend = (&'static str, Arc<dyn Store>, Option<(sqlx::PgPool, String)>);

/// The stores to measure: SQLite always, PostgreSQL when given.
async fn stores(dir: &Path, postgres: Option<&str>) -> Result<Vec<Backend>> {
    let sqlite = SqliteStore::connect(&connect_options(format!("sqlite://{}", dir.join("bench.db").display()))).await?;
    sqlite.migrate().await?;
    let mut out: Vec<Backend> = vec![("sqlite", Arc::new(sqlite), None)];
    if let Some(server) = postgres {
        use sqlx::Connection;
        let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(server).await?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
        let (base, _) = server.rsplit_once('/').context("postgres url has a database")?;
        let url = format!("{base}/{name}");
        let store = PostgresStore::connect(&connect_options(url.clone())).await?;
        store.migrate().await?;
        let pool = store.pool().clone();
        out.push(("postgres", Arc::new(store), Some((pool, url))));
    }
    Ok(out)
}

fn code_index(store: Arc<dyn Store>, cache: &Path, allowed: &Path, embedder: Arc<dyn Embedder>) -> CodeIndex {
    let policy = Arc::new(UrlPolicy { allowed_hosts: vec![], allowed_local_paths: vec![allowed.to_path_buf()] });
    CodeIndex {
        code: store.code(),
        hosts: devops_providers::Hosts::new(devops_providers::LocalGitHost::new(store.as_ref(), policy.clone())),
        store,
        embedder,
        policy,
        settings: Arc::new(Settings {
            cache_root: cache.to_path_buf(),
            mirror: FetchOptions::new(8 << 30, Duration::from_secs(3600)),
            max_file_bytes: 1 << 20,
            chunk: ChunkLimits::default(),
        }),
    }
}

async fn run_index(index: &CodeIndex, tenant: TenantId, url: &str) -> Result<(Progress, Duration)> {
    let source = index.check_url(url).await?;
    let started = Instant::now();
    let progress = index.index(tenant, source, "", false, &|_: &Progress| {}, &CancellationToken::new()).await?;
    Ok((progress, started.elapsed()))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

async fn index_bench(
    dirs: &[PathBuf],
    files: usize,
    postgres: Option<&str>,
    queries: usize,
    postgres_only: bool,
) -> Result<()> {
    let corpus = corpus(dirs, files)?;
    if corpus.len() < files {
        eprintln!("note: only {} source files found under the given directories", corpus.len());
    }
    let work = tempfile::tempdir()?;
    let repo = work.path().join("repo");
    write_repo(&repo, &corpus)?;
    for (backend, store, postgres) in stores(work.path(), postgres).await? {
        if postgres_only && postgres.is_none() {
            continue;
        }
        if let Some((_, url)) = &postgres {
            eprintln!("postgres: indexing into {url} (kept, for `code-bench search --database`)");
        }
        let tenant = store.create_tenant(&format!("bench-{backend}")).await?.id;
        let cache = work.path().join(format!("cache-{backend}"));
        let index = code_index(store.clone(), &cache, work.path(), Arc::new(HashEmbedder));
        let url = repo.to_string_lossy().into_owned();
        let (full, full_time) = run_index(&index, tenant, &url).await?;
        eprintln!(
            "{backend}: full index of {} files ({:.1} MB): {} chunks in {full_time:.2?}",
            full.files_done,
            full.bytes as f64 / 1e6,
            full.chunks
        );

        // 1% of the files gain a function.
        let changed = (corpus.len() / 100).max(1);
        for (path, text) in corpus.iter().step_by(corpus.len() / changed).take(changed) {
            let addition = if path.ends_with(".py") {
                "\n\ndef bench_added_helper(value):\n    return value * 2\n"
            } else {
                "\n\nfunction benchAddedHelper(value) { return value * 2; }\n"
            };
            std::fs::write(repo.join(path), format!("{text}{addition}"))?;
        }
        git(&repo, &["commit", "-qam", "one percent"])?;
        let (delta, delta_time) = run_index(&index, tenant, &url).await?;
        let reuse =
            delta.embeddings_reused as f64 / (delta.embeddings_reused + delta.embeddings_computed).max(1) as f64;
        eprintln!(
            "{backend}: re-index after changing {changed} files: {} files read, {} embedded, {} reused ({:.1}% reuse) in {delta_time:.2?}",
            delta.files_done,
            delta.embeddings_computed,
            delta.embeddings_reused,
            reuse * 100.0
        );
        emit(serde_json::json!({
            "bench": "index", "backend": backend, "files": full.files_done, "bytes": full.bytes, "chunks": full.chunks,
            "full_seconds": full_time.as_secs_f64(), "changed_files": changed, "reindex_seconds": delta_time.as_secs_f64(),
            "reindex_embedded": delta.embeddings_computed, "reindex_reused": delta.embeddings_reused, "reuse": reuse,
        }));
        git(&repo, &["reset", "-q", "--hard", "HEAD~1"])?;

        if let Some((pool, _)) = &postgres {
            analyze(pool).await?;
        }
        let repository = full.repository_id.context("id")?;
        let queries = search_queries(&corpus, queries);
        search_bench(backend, &index, tenant, repository, &queries, &search_filters(&corpus), postgres.map(|p| p.0))
            .await?;
    }
    Ok(())
}

/// One query per sampled file: its first line of some length (search takes
/// at most 1 000 characters).
fn search_queries(corpus: &[(String, String)], queries: usize) -> Vec<String> {
    corpus
        .iter()
        .step_by((corpus.len() / queries).max(1))
        .filter_map(|(_, text)| text.lines().map(str::trim).find(|l| l.len() > 20 && l.chars().count() <= 1000))
        .map(str::to_owned)
        .take(queries)
        .collect()
}

/// A filtered search pass: its label, language and path glob.
type Filter = (String, Option<String>, Option<String>);

/// Search latency over the whole index, query embedding included, then
/// under each filter (and how many queries got fewer than 10 results), then
/// (PostgreSQL) HNSW recall.
async fn search_bench(
    backend: &str,
    index: &CodeIndex,
    tenant: TenantId,
    repository: uuid::Uuid,
    queries: &[String],
    filters: &[Filter],
    pool: Option<sqlx::PgPool>,
) -> Result<()> {
    let (p50, p99, _) = timed_searches(index, tenant, queries, None, None).await?;
    let chunks = index.code.index_size(tenant, repository).await?.1;
    eprintln!(
        "{backend}: hybrid search over {chunks} chunks: p50 {p50:.2?}, p99 {p99:.2?} ({} queries)",
        queries.len()
    );
    emit(serde_json::json!({
        "bench": "search", "backend": backend, "chunks": chunks, "queries": queries.len(),
        "p50_ms": p50.as_secs_f64() * 1e3, "p99_ms": p99.as_secs_f64() * 1e3,
    }));
    for (filter, language, path_glob) in filters {
        let (p50, p99, short) =
            timed_searches(index, tenant, queries, language.as_deref(), path_glob.as_deref()).await?;
        eprintln!(
            "{backend}: hybrid search, {filter}: p50 {p50:.2?}, p99 {p99:.2?}, {short} of {} queries under 10 results",
            queries.len()
        );
        emit(serde_json::json!({
            "bench": "search", "backend": backend, "chunks": chunks, "filter": filter, "queries": queries.len(),
            "p50_ms": p50.as_secs_f64() * 1e3, "p99_ms": p99.as_secs_f64() * 1e3, "under_10": short,
        }));
    }
    if let Some(pool) = pool {
        hnsw_recall(&pool, index, tenant, queries, chunks).await?;
    }
    Ok(())
}

/// Each query's top 10 once, query embedding included: p50, p99, and how
/// many queries got fewer than 10 results.
async fn timed_searches(
    index: &CodeIndex,
    tenant: TenantId,
    queries: &[String],
    language: Option<&str>,
    path_glob: Option<&str>,
) -> Result<(Duration, Duration, usize)> {
    let mut latencies = Vec::with_capacity(queries.len());
    let mut short = 0;
    for query in queries {
        let started = Instant::now();
        let params = SearchParams {
            query: query.clone(),
            limit: 10,
            language: language.map(str::to_owned),
            path_glob: path_glob.map(str::to_owned),
            ..SearchParams::default()
        };
        let hits = index.search(tenant, &params).await?;
        latencies.push(started.elapsed());
        short += usize::from(hits.len() < 10);
    }
    latencies.sort();
    Ok((percentile(&latencies, 0.5), percentile(&latencies, 0.99), short))
}

/// Filters for the filtered search passes: each language that holds at
/// least 1% of the corpus's files, and the smallest root that does (a path
/// glob). Small shares are the hard case for a filtered graph walk.
fn search_filters(corpus: &[(String, String)]) -> Vec<Filter> {
    let mut languages: HashMap<&str, usize> = HashMap::new();
    let mut roots: HashMap<&str, usize> = HashMap::new();
    for (path, _) in corpus {
        *languages.entry(chunk::language_of(path)).or_default() += 1;
        *roots.entry(path.split('/').next().unwrap_or_default()).or_default() += 1;
    }
    let enough = (corpus.len() / 100).max(1);
    let mut languages: Vec<(&str, usize)> = languages.into_iter().filter(|(_, files)| *files >= enough).collect();
    languages.sort();
    let mut filters: Vec<Filter> = languages
        .into_iter()
        .map(|(language, files)| (format!("language {language} ({files} files)"), Some(language.to_owned()), None))
        .collect();
    if let Some((root, files)) =
        roots.into_iter().filter(|(_, files)| *files >= enough).min_by_key(|(root, files)| (*files, *root))
    {
        filters.push((format!("path {root}/** ({files} files)"), None, Some(format!("{root}/**"))));
    }
    filters
}

/// `search_bench` again on the database an `index` run left.
async fn search_existing(
    dirs: &[PathBuf],
    files: usize,
    database: &str,
    queries: usize,
    no_recall: bool,
) -> Result<()> {
    let corpus = corpus(dirs, files)?;
    let store = PostgresStore::connect(&connect_options(database.to_owned())).await?;
    let pool = store.pool().clone();
    let (tenant, repository): (uuid::Uuid, uuid::Uuid) =
        sqlx::query_as("SELECT tenant_id, id FROM repositories LIMIT 1").fetch_one(&pool).await?;
    let work = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(store);
    let index = code_index(store, &work.path().join("cache"), work.path(), Arc::new(HashEmbedder));
    let queries = search_queries(&corpus, queries);
    let pool = (!no_recall).then_some(pool);
    search_bench("postgres", &index, TenantId(tenant), repository, &queries, &search_filters(&corpus), pool).await
}

/// recall@10 against an exact scan: of the HNSW index alone (the 10
/// nearest of 40 candidates, at `ef_search` 100, 200 and 400), and of the
/// vector list as search builds it (its graph candidates and the term
/// lists' chunks, ranked by exact distance). Counted by id, and by distance (a hit counts if it is no
/// farther than the exact 10th, since the exact top 10 often holds ties).
async fn hnsw_recall(
    pool: &sqlx::PgPool,
    index: &CodeIndex,
    tenant: TenantId,
    queries: &[String],
    chunks: u64,
) -> Result<()> {
    const EF_SEARCH: [u32; 3] = [100, 200, 400];
    // Chunks with their content's vector (`code_vectors`, one per distinct content).
    let exact_sql = "SELECT c.id, v.embedding <=> $2::real[]::vector FROM code_chunks c \
                     JOIN code_vectors v USING (tenant_id, embedder, content_hash) WHERE c.tenant_id = $1 \
                     ORDER BY 2, c.id LIMIT 10";
    let approximate_sql = "WITH candidates AS MATERIALIZED ( \
                               SELECT content_hash, embedding <=> $2::real[]::vector AS distance FROM code_vectors \
                               WHERE tenant_id = $1 ORDER BY distance LIMIT 40) \
                           SELECT c.id, n.distance FROM candidates n JOIN code_chunks c ON c.tenant_id = $1 \
                           AND c.content_hash = n.content_hash ORDER BY n.distance, c.id LIMIT 10";
    let hit_sql = "SELECT c.id, v.embedding <=> $2::real[]::vector FROM code_chunks c \
                   JOIN code_vectors v USING (tenant_id, embedder, content_hash) WHERE c.tenant_id = $1 \
                   AND c.path = $3 AND c.start_line = $4 AND c.end_line = $5 ORDER BY 2 LIMIT 1";
    // One column per `ef_search`, then the vector list as search builds it.
    let mut by_id = [0.0; EF_SEARCH.len() + 1];
    let mut by_distance = [0.0; EF_SEARCH.len() + 1];
    let mut count = |column: usize, exact: &[(i64, f64)], found: &[(i64, f64)]| {
        let tenth = exact.last().map_or(0.0, |(_, distance)| *distance);
        let same = exact.iter().filter(|(id, _)| found.iter().any(|(f, _)| f == id)).count();
        let close = found.iter().filter(|(_, distance)| *distance <= tenth + 1e-6).count().min(exact.len());
        by_id[column] += same as f64 / exact.len() as f64;
        by_distance[column] += close as f64 / exact.len() as f64;
    };
    for query in queries {
        let vector = HashEmbedder::embed_one(query);
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL enable_indexscan = off").execute(&mut *tx).await?;
        let exact: Vec<(i64, f64)> = sqlx::query_as(exact_sql).bind(tenant.0).bind(&vector).fetch_all(&mut *tx).await?;
        tx.rollback().await?;
        if exact.is_empty() {
            continue;
        }
        for (n, ef_search) in EF_SEARCH.into_iter().enumerate() {
            let mut tx = pool.begin().await?;
            sqlx::query("SET LOCAL hnsw.iterative_scan = relaxed_order").execute(&mut *tx).await?;
            sqlx::query(&format!("SET LOCAL hnsw.ef_search = {ef_search}")).execute(&mut *tx).await?;
            let approximate: Vec<(i64, f64)> =
                sqlx::query_as(approximate_sql).bind(tenant.0).bind(&vector).fetch_all(&mut *tx).await?;
            tx.rollback().await?;
            count(n, &exact, &approximate);
        }
        let params =
            SearchParams { query: query.clone(), limit: 10, mode: SearchMode::Vector, ..SearchParams::default() };
        let mut listed = Vec::new();
        for hit in index.search(tenant, &params).await? {
            let row: (i64, f64) = sqlx::query_as(hit_sql)
                .bind(tenant.0)
                .bind(&vector)
                .bind(&hit.path)
                .bind(i32::try_from(hit.start_line)?)
                .bind(i32::try_from(hit.end_line)?)
                .fetch_one(pool)
                .await?;
            listed.push(row);
        }
        count(EF_SEARCH.len(), &exact, &listed);
    }
    let n = queries.len().max(1) as f64;
    for (column, ef_search) in EF_SEARCH.into_iter().map(Some).chain([None]).enumerate() {
        let (id, distance) = (by_id[column] / n, by_distance[column] / n);
        let what = ef_search
            .map_or("the vector list as search builds it".to_owned(), |ef| format!("HNSW alone, ef_search {ef}"));
        eprintln!(
            "postgres: recall@10 against exact search over {chunks} chunks, {what}: {distance:.3} by distance, {id:.3} by id"
        );
        emit(serde_json::json!({
            "bench": "hnsw_recall", "chunks": chunks, "queries": queries.len(),
            "ef_search": ef_search, "search_vector_list": ef_search.is_none(),
            "recall_at_10": distance, "recall_at_10_by_id": id,
        }));
    }
    Ok(())
}

/// One docstring → function pair.
struct Pair {
    query: String,
    path: String,
    line: u32,
}

/// Builds the docstring set from `.py` files and writes their copies,
/// docstrings blanked, into `repo`.
fn docstring_set(dir: &Path, repo: &Path, max_queries: usize, max_files: usize) -> Result<Vec<Pair>> {
    let files = corpus(&[dir.to_path_buf()], 100_000)?;
    let files: Vec<_> = files
        .into_iter()
        .filter(|(p, _)| p.ends_with(".py") && !p.contains("/test") && !p.contains("site-packages"))
        .take(max_files)
        .collect();
    let mut parser = tree_sitter::Parser::new();
    parser.set_language(&tree_sitter_python::LANGUAGE.into())?;
    let mut pairs = Vec::new();
    let mut stripped_files = Vec::new();
    for (path, text) in &files {
        let Some(tree) = parser.parse(text, None) else { continue };
        let mut blanks: Vec<(usize, usize)> = Vec::new();
        let mut stack = vec![tree.root_node()];
        while let Some(node) = stack.pop() {
            let mut cursor = node.walk();
            stack.extend(node.named_children(&mut cursor));
            if node.kind() != "function_definition" {
                continue;
            }
            let Some(body) = node.child_by_field_name("body") else { continue };
            let Some(first) = body.named_child(0) else { continue };
            let Some(string) =
                first.named_child(0).filter(|s| first.kind() == "expression_statement" && s.kind() == "string")
            else {
                continue;
            };
            let raw = &text[string.start_byte()..string.end_byte()];
            let doc = raw.trim_matches(|c| c == '"' || c == '\'' || c == 'r' || c == 'u');
            let paragraph: String =
                doc.split("\n\n").next().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ");
            // Queries are 1-1000 characters; a summary longer than that is not a query anyone types.
            if paragraph.split(' ').count() < 4 || paragraph.chars().count() > 1000 {
                continue;
            }
            pairs.push(Pair { query: paragraph, path: path.clone(), line: node.start_position().row as u32 + 1 });
            blanks.push((string.start_byte(), string.end_byte()));
        }
        // The indexed copy has no docstrings: each becomes `...` plus its newlines, so lines keep their numbers.
        let mut stripped = text.clone();
        blanks.sort();
        for (start, end) in blanks.into_iter().rev() {
            let newlines = text[start..end].matches('\n').count();
            stripped.replace_range(start..end, &format!("...{}", "\n".repeat(newlines)));
        }
        stripped_files.push((path.clone(), stripped));
    }
    write_repo(repo, &stripped_files)?;
    // A deterministic spread over the whole tree.
    let step = (pairs.len() / max_queries).max(1);
    Ok(pairs.into_iter().step_by(step).take(max_queries).collect())
}

async fn quality_bench(
    dir: &Path,
    postgres: Option<&str>,
    max_queries: usize,
    max_files: usize,
    model_dir: Option<&Path>,
) -> Result<()> {
    let work = tempfile::tempdir()?;
    let repo = work.path().join("repo");
    let pairs = docstring_set(dir, &repo, max_queries, max_files)?;
    eprintln!("quality: {} docstring → function pairs from {max_files} files of {}", pairs.len(), dir.display());
    for (backend, store, postgres) in stores(work.path(), postgres).await? {
        for embedder in embedders(model_dir)? {
            let tenant = store
                .create_tenant(&format!(
                    "quality-{backend}-{}",
                    embedder.id().replace(|c: char| !c.is_ascii_alphanumeric(), "-")
                ))
                .await?
                .id;
            let cache = work.path().join(format!("cache-{backend}-{}", embedder.id()));
            let index = code_index(store.clone(), &cache, work.path(), embedder.clone());
            let (indexed, took) = run_index(&index, tenant, &repo.to_string_lossy()).await?;
            eprintln!("{backend} {}: indexed {} chunks in {took:.2?}", embedder.id(), indexed.chunks);
            if let Some((pool, _)) = &postgres {
                analyze(pool).await?;
            }
            for mode in [SearchMode::Lexical, SearchMode::Vector, SearchMode::Hybrid] {
                let (mut reciprocal, mut found) = (0.0, 0usize);
                for pair in &pairs {
                    let params = SearchParams { query: pair.query.clone(), limit: 10, mode, ..SearchParams::default() };
                    let hits = index.search(tenant, &params).await?;
                    let rank = hits
                        .iter()
                        .position(|h| h.path == pair.path && h.start_line <= pair.line && pair.line <= h.end_line);
                    if let Some(rank) = rank {
                        reciprocal += 1.0 / (rank as f64 + 1.0);
                        found += 1;
                    }
                }
                let n = pairs.len().max(1) as f64;
                let (mrr, recall) = (reciprocal / n, found as f64 / n);
                eprintln!("{backend} {} {}: MRR@10 {mrr:.3}, recall@10 {recall:.3}", embedder.id(), mode.as_str());
                emit(serde_json::json!({
                    "bench": "quality", "backend": backend, "mode": mode.as_str(), "embedder": embedder.id(),
                    "pairs": pairs.len(), "mrr_at_10": mrr, "recall_at_10": recall,
                }));
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Chunk { dirs, max_files } => chunk_bench(&dirs, max_files),
        Command::Embed { dirs, max_files, model_dir, model_chunks } => {
            embed_bench(&dirs, max_files, model_dir.as_deref(), model_chunks).await
        }
        Command::Index { dirs, files, postgres, queries, postgres_only } => {
            index_bench(&dirs, files, postgres.as_deref(), queries, postgres_only).await
        }
        Command::Search { dirs, files, database, queries, no_recall } => {
            search_existing(&dirs, files, &database, queries, no_recall).await
        }
        Command::Quality { dir, postgres, max_queries, max_files, model_dir } => {
            quality_bench(&dir, postgres.as_deref(), max_queries, max_files, model_dir.as_deref()).await
        }
    }
}
