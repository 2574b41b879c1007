//! The code index: chunks with embeddings and lexical terms, and hybrid
//! search over them.
//!
//! PostgreSQL ranks with pgvector HNSW over one vector per distinct content
//! (cosine, iterative scans so filters still fill `limit`; the term lists'
//! chunks are ranked with the graph's candidates by exact distance),
//! full-text search over a bounded candidate set, and symbols containing an
//! identifier of the query (pg_trgm's index). SQLite
//! scans the tenant's chunks in-process: exact cosine, BM25 and the same
//! symbol match. Both fuse their ranked lists the same way, by reciprocal
//! rank.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use devops_models::{CodeHit, CodeQuery, NewCodeChunk, TenantId};
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

use crate::{Error, PostgresStore, Result, SqliteStore};

/// Rows per multi-row INSERT: 10 binds each stays far below both back ends' limits.
const INSERT_BATCH: usize = 500;
/// The RRF constant from Cormack et al.; 60 is the customary choice.
const RRF_K: f64 = 60.0;

#[async_trait]
pub trait CodeStore: Send + Sync + 'static {
    /// Stored vectors for `hashes` made by `embedder`, for reuse.
    async fn embeddings_by_hash(
        &self,
        tenant: TenantId,
        embedder: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>>;
    /// Replaces every chunk of `paths` in the repository with `chunks`, in
    /// one transaction: readers see a file's old chunks or its new ones.
    async fn replace_files(
        &self,
        tenant: TenantId,
        repository: Uuid,
        embedder: &str,
        paths: &[String],
        chunks: &[NewCodeChunk],
    ) -> Result<()>;
    /// Paths that have chunks.
    async fn indexed_paths(&self, tenant: TenantId, repository: Uuid) -> Result<Vec<String>>;
    /// Files and chunks in the repository's index.
    async fn index_size(&self, tenant: TenantId, repository: Uuid) -> Result<(u64, u64)>;
    async fn search(&self, tenant: TenantId, query: &CodeQuery) -> Result<Vec<CodeHit>>;
}

/// The queries both back ends write the same way (see `sql.rs` for the
/// reasoning): stamped into each `CodeStore` impl.
macro_rules! shared_index_queries {
    ($store:ty) => {
        impl $store {
            async fn paths_with_chunks(&self, tenant: TenantId, repository: Uuid) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT DISTINCT path FROM code_chunks WHERE tenant_id = $1 AND repository_id = $2 ORDER BY path",
                )
                .bind(tenant.0)
                .bind(repository)
                .fetch_all(self.pool())
                .await?)
            }

            async fn count_index(&self, tenant: TenantId, repository: Uuid) -> Result<(u64, u64)> {
                let row = sqlx::query(
                    "SELECT COUNT(DISTINCT path) AS files, COUNT(*) AS chunks FROM code_chunks \
                     WHERE tenant_id = $1 AND repository_id = $2",
                )
                .bind(tenant.0)
                .bind(repository)
                .fetch_one(self.pool())
                .await?;
                let files: i64 = row.try_get("files")?;
                let chunks: i64 = row.try_get("chunks")?;
                Ok((u64::try_from(files).unwrap_or_default(), u64::try_from(chunks).unwrap_or_default()))
            }
        }
    };
}

shared_index_queries!(PostgresStore);
shared_index_queries!(SqliteStore);

/// Candidates each ranked list contributes to fusion.
fn depth(limit: u32) -> i64 {
    i64::from(limit.clamp(1, 100)).max(10) * 4
}

/// Reciprocal rank fusion: each list adds `1 / (k + rank)` to its chunks.
/// The best `limit` chunk ids with their scores; ties go to the chunk listed first.
pub fn fuse_ranked(lists: &[Vec<i64>], limit: usize) -> Vec<(i64, f64)> {
    let mut fused: HashMap<i64, (f64, usize)> = HashMap::new();
    let mut order = 0;
    for list in lists {
        for (rank, id) in list.iter().enumerate() {
            order += 1;
            let entry = fused.entry(*id).or_insert((0.0, order));
            entry.0 += 1.0 / (RRF_K + rank as f64 + 1.0);
        }
    }
    let mut ranked: Vec<(i64, f64, usize)> = fused.into_iter().map(|(id, (score, first))| (id, score, first)).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    ranked.into_iter().take(limit).map(|(id, score, _)| (id, score)).collect()
}

/// The fused chunks as hits, in fused order, from their fetched rows.
fn hits_in_order(fused: &[(i64, f64)], mut rows: HashMap<i64, CodeHit>) -> Vec<CodeHit> {
    fused.iter().filter_map(|(id, score)| rows.remove(id).map(|hit| CodeHit { score: *score, ..hit })).collect()
}

/// A stored chunk of a file being replaced.
struct StoredChunk {
    id: i64,
    path: String,
    content_hash: String,
    symbol: String,
    embedder: String,
    start_line: u32,
    end_line: u32,
}

/// How to turn a file's stored chunks into its new ones with the fewest
/// writes: a chunk whose content is unchanged stays (its line numbers are
/// updated if it moved), so an edit does not re-insert the whole file's
/// vectors into the HNSW index.
#[derive(Default)]
struct ReplacePlan<'a> {
    delete: Vec<i64>,
    /// (id, start line, end line)
    moved: Vec<(i64, u32, u32)>,
    insert: Vec<&'a NewCodeChunk>,
}

fn plan_replace<'a>(stored: Vec<StoredChunk>, chunks: &'a [NewCodeChunk], embedder: &str) -> ReplacePlan<'a> {
    let mut plan = ReplacePlan::default();
    let mut unmatched: HashMap<(String, String, String), Vec<StoredChunk>> = HashMap::new();
    for chunk in stored {
        if chunk.embedder == embedder {
            let key = (chunk.path.clone(), chunk.content_hash.clone(), chunk.symbol.clone());
            unmatched.entry(key).or_default().push(chunk);
        } else {
            // Another embedder's vector: never kept.
            plan.delete.push(chunk.id);
        }
    }
    for chunk in chunks {
        let key = (chunk.path.clone(), chunk.content_hash.clone(), chunk.symbol.clone());
        let candidates = unmatched.get_mut(&key);
        let found = candidates.and_then(|list| {
            let exact = list.iter().position(|c| c.start_line == chunk.start_line && c.end_line == chunk.end_line);
            exact.or((!list.is_empty()).then_some(0)).map(|i| list.swap_remove(i))
        });
        match found {
            Some(old) if old.start_line == chunk.start_line && old.end_line == chunk.end_line => {}
            Some(old) => plan.moved.push((old.id, chunk.start_line, chunk.end_line)),
            None => plan.insert.push(chunk),
        }
    }
    plan.delete.extend(unmatched.into_values().flatten().map(|c| c.id));
    plan
}

fn stored_chunk<R: Row>(row: &R) -> Result<StoredChunk>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    Ok(StoredChunk {
        id: row.try_get("id")?,
        path: row.try_get("path")?,
        content_hash: row.try_get("content_hash")?,
        symbol: row.try_get("symbol")?,
        embedder: row.try_get("embedder")?,
        start_line: to_line(row.try_get("start_line")?),
        end_line: to_line(row.try_get("end_line")?),
    })
}

/// Columns of a stored chunk, with lines as BIGINT on both back ends.
const STORED_COLUMNS: &str = "id, path, content_hash, symbol, embedder, CAST(start_line AS BIGINT) AS start_line, CAST(end_line AS BIGINT) AS end_line";

fn to_line(n: i64) -> u32 {
    u32::try_from(n).unwrap_or_default()
}

/// The terms as a `tsquery` joined by `operator` (`&` or `|`).
fn tsquery(terms: &[String], operator: &str) -> Option<String> {
    let mut unique: Vec<&String> = terms.iter().collect();
    unique.sort();
    unique.dedup();
    // Terms are alphanumeric by construction; quoting keeps it that way.
    let parts: Vec<String> =
        unique.iter().filter(|t| t.chars().all(char::is_alphanumeric)).map(|t| format!("'{t}'")).collect();
    (!parts.is_empty()).then(|| parts.join(&format!(" {operator} ")))
}

/// Full-text candidates ranked per pass: ranking every chunk that holds a
/// common term costs more than it finds.
const LEXICAL_CANDIDATES: i64 = 1000;
/// The HNSW walk's candidate queue (`hnsw.ef_search`) for a top 10. With
/// the term lists' chunks ranked beside the walk's, it brings recall@10
/// against exact search to 0.98 at a million chunks, where 200 gave 0.92
/// and 400 gave 0.94 (docs/benchmarks.md).
const EF_SEARCH: i64 = 800;
/// pgvector refuses a larger `hnsw.ef_search`.
const MAX_EF_SEARCH: i64 = 1000;
/// Symbols containing an identifier that are ranked by similarity.
const SYMBOL_CANDIDATES: i64 = 200;
/// A term in more chunks than this is not required of candidates; it still
/// ranks them.
const COMMON_TERM_MATCHES: f64 = 10_000.0;

/// How many chunks hold each term, estimated from PostgreSQL's own
/// statistics (`pg_stats.most_common_elems` of `search_tsv` and the table's
/// row count, kept by ANALYZE), re-read once a minute. The statistics span
/// tenants: they only choose which terms select candidates.
#[derive(Default)]
pub(crate) struct TermFrequencies {
    cached: Mutex<Option<(Instant, Arc<TermMatches>)>>,
}

/// Estimated chunks holding each listed term. A term the statistics do not
/// list is rarer than every listed one, and counts as PostgreSQL's planner
/// would count it. With no statistics (a fresh table) every term counts as zero.
#[derive(Debug, Default)]
struct TermMatches {
    listed: HashMap<String, f64>,
    unlisted: f64,
}

impl TermMatches {
    fn of(&self, term: &str) -> f64 {
        self.listed.get(term).copied().unwrap_or(self.unlisted)
    }
}

impl TermFrequencies {
    const REFRESH: Duration = Duration::from_secs(60);

    async fn get(&self, pool: &sqlx::PgPool) -> Result<Arc<TermMatches>> {
        if let Some((read_at, matches)) = &*self.cached.lock().expect("term statistics lock")
            && read_at.elapsed() < Self::REFRESH
        {
            return Ok(matches.clone());
        }
        let row = sqlx::query(
            "SELECT s.most_common_elems::text::text[] AS terms, s.most_common_elem_freqs AS shares, \
                    c.reltuples::float8 AS chunks \
             FROM pg_class c LEFT JOIN pg_stats s ON s.schemaname = current_schema() \
                 AND s.tablename = 'code_chunks' AND s.attname = 'search_tsv' \
             WHERE c.oid = 'code_chunks'::regclass",
        )
        .fetch_one(pool)
        .await?;
        let terms: Option<Vec<String>> = row.try_get("terms")?;
        let shares: Option<Vec<f32>> = row.try_get("shares")?;
        let chunks: f64 = row.try_get::<f64, _>("chunks")?.max(0.0);
        // The shares run three entries past the terms (min, max, null share); zip drops them.
        let listed: HashMap<String, f64> = terms
            .unwrap_or_default()
            .into_iter()
            .zip(shares.unwrap_or_default())
            .map(|(term, share)| (term, f64::from(share) * chunks))
            .collect();
        // PostgreSQL's own guess for an unlisted term (`ts_selfuncs.c`): half the rarest listed share, at most 0.5%.
        let unlisted =
            listed.values().copied().reduce(f64::min).map_or(0.0, |rarest| (rarest / 2.0).min(0.005 * chunks));
        let matches = Arc::new(TermMatches { listed, unlisted });
        *self.cached.lock().expect("term statistics lock") = Some((Instant::now(), matches.clone()));
        Ok(matches)
    }
}

/// The two candidate passes of the lexical list, as `tsquery` text: chunks
/// holding every selective term (or the rarest term, if none is), then, if
/// those are too few, chunks holding any of the rarest terms, as many terms
/// as together hold about `LEXICAL_CANDIDATES` chunks (at least one), so
/// the pass ranks all it finds rather than an arbitrary part of it. `None`
/// for a pass that adds nothing.
fn candidate_passes(terms: &[String], matches: &TermMatches) -> [Option<String>; 2] {
    let mut unique: Vec<(&String, f64)> = terms.iter().map(|t| (t, matches.of(t))).collect();
    unique.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(b.0)));
    unique.dedup_by(|a, b| a.0 == b.0);
    let selective: Vec<String> =
        unique.iter().filter(|(_, matches)| *matches <= COMMON_TERM_MATCHES).map(|(t, _)| (*t).clone()).collect();
    let all = if selective.is_empty() { unique.iter().take(1).map(|(t, _)| (*t).clone()).collect() } else { selective };
    let mut spent = 0.0;
    let rarest: Vec<String> = unique
        .iter()
        .enumerate()
        .take_while(|(n, (_, matches))| {
            spent += matches;
            *n == 0 || spent <= LEXICAL_CANDIDATES as f64
        })
        .map(|(_, (t, _))| (*t).clone())
        .collect();
    let all = tsquery(&all, "&");
    let any = tsquery(&rarest, "|").filter(|any| rarest.len() > 1 && Some(any) != all.as_ref());
    [all, any]
}

/// `identifier` as a LIKE pattern for symbols that contain it.
fn containing(identifier: &str) -> String {
    let mut pattern = String::with_capacity(identifier.len() + 2);
    pattern.push('%');
    for c in identifier.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

const HIT_COLUMNS: &str = "c.id, c.repository_id, r.url, c.path, c.language, c.symbol, CAST(c.start_line AS BIGINT) AS start_line, \
     CAST(c.end_line AS BIGINT) AS end_line, c.content";

/// A row of `HIT_COLUMNS`, keyed by chunk id, on either back end.
fn hit_from<R: Row>(row: &R) -> Result<(i64, CodeHit)>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Uuid: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    Ok((
        row.try_get("id")?,
        CodeHit {
            repository_id: row.try_get("repository_id")?,
            repository_url: row.try_get("url")?,
            path: row.try_get("path")?,
            language: row.try_get("language")?,
            symbol: row.try_get("symbol")?,
            start_line: to_line(row.try_get("start_line")?),
            end_line: to_line(row.try_get("end_line")?),
            content: row.try_get("content")?,
            score: 0.0,
        },
    ))
}

#[async_trait]
impl CodeStore for PostgresStore {
    async fn embeddings_by_hash(
        &self,
        tenant: TenantId,
        embedder: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>> {
        if hashes.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = sqlx::query(
            "SELECT content_hash, embedding::real[] AS embedding FROM code_vectors \
             WHERE tenant_id = $1 AND embedder = $2 AND content_hash = ANY($3)",
        )
        .bind(tenant.0)
        .bind(embedder)
        .bind(hashes)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|row| Ok((row.try_get("content_hash")?, row.try_get("embedding")?))).collect()
    }

    async fn replace_files(
        &self,
        tenant: TenantId,
        repository: Uuid,
        embedder: &str,
        paths: &[String],
        chunks: &[NewCodeChunk],
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        let stored = sqlx::query(&format!(
            "SELECT {STORED_COLUMNS} FROM code_chunks WHERE tenant_id = $1 AND repository_id = $2 AND path = ANY($3) \
             FOR UPDATE"
        ))
        .bind(tenant.0)
        .bind(repository)
        .bind(paths)
        .fetch_all(&mut *tx)
        .await?;
        let stored = stored.iter().map(stored_chunk).collect::<Result<Vec<_>>>()?;
        let plan = plan_replace(stored, chunks, embedder);
        // New chunks and their vectors go in before old chunks go out, so a
        // content that only moved keeps its vector (see `code_vectors_release`).
        let mut vectors: HashMap<&str, &[f32]> = HashMap::new();
        for chunk in &plan.insert {
            vectors.entry(chunk.content_hash.as_str()).or_insert(&chunk.embedding);
        }
        let hashes: Vec<&str> = vectors.keys().copied().collect();
        // Locked so a concurrent run releasing its last chunk of a content
        // leaves that vector to this one.
        let present: Vec<String> = sqlx::query_scalar(
            "SELECT content_hash FROM code_vectors WHERE tenant_id = $1 AND embedder = $2 AND content_hash = ANY($3) \
             FOR KEY SHARE",
        )
        .bind(tenant.0)
        .bind(embedder)
        .bind(&hashes)
        .fetch_all(&mut *tx)
        .await?;
        for hash in &present {
            vectors.remove(hash.as_str());
        }
        // In hash order: two runs inserting the same new contents wait for
        // each other instead of deadlocking.
        let mut missing: Vec<(&str, &[f32])> = vectors.into_iter().collect();
        missing.sort_unstable_by_key(|(hash, _)| *hash);
        for batch in missing.chunks(INSERT_BATCH) {
            let mut insert =
                QueryBuilder::new("INSERT INTO code_vectors (tenant_id, embedder, content_hash, embedding) ");
            insert.push_values(batch, |mut row, (hash, embedding)| {
                row.push_bind(tenant.0)
                    .push_bind(embedder)
                    .push_bind(*hash)
                    .push_bind(*embedding)
                    .push_unseparated("::real[]::vector");
            });
            insert.push(" ON CONFLICT DO NOTHING");
            insert.build().execute(&mut *tx).await?;
        }
        for batch in plan.insert.chunks(INSERT_BATCH) {
            let mut insert = QueryBuilder::new(
                "INSERT INTO code_chunks (tenant_id, repository_id, path, language, symbol, start_line, end_line, \
                 content_hash, content, search_text, embedder) ",
            );
            insert.push_values(batch, |mut row, chunk| {
                row.push_bind(tenant.0)
                    .push_bind(repository)
                    .push_bind(&chunk.path)
                    .push_bind(&chunk.language)
                    .push_bind(&chunk.symbol)
                    .push_bind(i32::try_from(chunk.start_line).unwrap_or(i32::MAX))
                    .push_bind(i32::try_from(chunk.end_line).unwrap_or(i32::MAX))
                    .push_bind(&chunk.content_hash)
                    .push_bind(&chunk.content)
                    .push_bind(&chunk.search_text)
                    .push_bind(embedder);
            });
            insert.build().execute(&mut *tx).await?;
        }
        for (id, start, end) in &plan.moved {
            sqlx::query("UPDATE code_chunks SET start_line = $3, end_line = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id)
                .bind(i32::try_from(*start).unwrap_or(i32::MAX))
                .bind(i32::try_from(*end).unwrap_or(i32::MAX))
                .execute(&mut *tx)
                .await?;
        }
        if !plan.delete.is_empty() {
            sqlx::query("DELETE FROM code_chunks WHERE tenant_id = $1 AND id = ANY($2)")
                .bind(tenant.0)
                .bind(&plan.delete)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn indexed_paths(&self, tenant: TenantId, repository: Uuid) -> Result<Vec<String>> {
        self.paths_with_chunks(tenant, repository).await
    }

    async fn index_size(&self, tenant: TenantId, repository: Uuid) -> Result<(u64, u64)> {
        self.count_index(tenant, repository).await
    }

    async fn search(&self, tenant: TenantId, query: &CodeQuery) -> Result<Vec<CodeHit>> {
        let depth = depth(query.limit);
        let filters = "c.tenant_id = $1 AND (cardinality($2::uuid[]) = 0 OR c.repository_id = ANY($2)) \
                       AND ($3::text IS NULL OR c.language = $3) AND ($4::text IS NULL OR c.path ~ $4)";
        // The term lists come first: they feed the vector list too.
        let mut term_lists: Vec<Vec<i64>> = Vec::new();

        // Lexical: a bounded set of candidates (see `candidate_passes`),
        // ranked by every term of the query. Each statement is planned for
        // its own terms (not a cached generic plan, which bitmap-scans every
        // match of a common term).
        if let Some(rank_by) = tsquery(&query.terms, "|") {
            let matches = self.term_frequencies().get(self.pool()).await?;
            let sql = format!(
                "SELECT id FROM ( \
                     SELECT c.id, ts_rank(c.search_tsv, to_tsquery('simple', $8), 1) AS rank FROM code_chunks c \
                     WHERE {filters} AND c.search_tsv @@ to_tsquery('simple', $5) LIMIT $7) m \
                 ORDER BY rank DESC, id LIMIT $6"
            );
            let mut ranked: Vec<i64> = Vec::new();
            for matching in candidate_passes(&query.terms, &matches).into_iter().flatten() {
                let ids: Vec<i64> = sqlx::query_scalar(&sql)
                    .persistent(false)
                    .bind(tenant.0)
                    .bind(&query.repositories)
                    .bind(&query.language)
                    .bind(&query.path_regex)
                    .bind(matching)
                    .bind(depth)
                    .bind(LEXICAL_CANDIDATES)
                    .bind(&rank_by)
                    .fetch_all(self.pool())
                    .await?;
                for id in ids {
                    if !ranked.contains(&id) {
                        ranked.push(id);
                    }
                }
                if ranked.len() as i64 >= depth {
                    break;
                }
            }
            ranked.truncate(usize::try_from(depth).unwrap_or(usize::MAX));
            term_lists.push(ranked);
        }

        // Identifiers: symbols that contain one (a substring match pg_trgm's
        // index answers from the identifier's trigrams), most similar first.
        for identifier in query.identifiers.iter().take(2) {
            let sql = format!(
                "SELECT id FROM ( \
                     SELECT c.id, similarity(lower(c.symbol), $5) AS score FROM code_chunks c \
                     WHERE {filters} AND lower(c.symbol) LIKE $8 LIMIT $7) m \
                 ORDER BY score DESC, id LIMIT $6"
            );
            let ids: Vec<i64> = sqlx::query_scalar(&sql)
                .persistent(false)
                .bind(tenant.0)
                .bind(&query.repositories)
                .bind(&query.language)
                .bind(&query.path_regex)
                .bind(identifier)
                .bind(depth)
                .bind(SYMBOL_CANDIDATES)
                .bind(containing(identifier))
                .fetch_all(self.pool())
                .await?;
            term_lists.push(ids);
        }

        // Vector: HNSW with iterative scans, so filtered queries still fill
        // the list. The term lists' chunks are ranked with it by their exact
        // distance: the greedy graph walk misses near neighbours that share
        // the query's words, and full text finds those.
        let mut lists = Vec::new();
        if query.mode.uses_vectors() {
            let mut seen: Vec<i64> = term_lists.iter().flatten().copied().collect();
            seen.sort_unstable();
            seen.dedup();
            let mut tx = self.pool().begin().await?;
            sqlx::query("SET LOCAL hnsw.iterative_scan = relaxed_order").execute(&mut *tx).await?;
            sqlx::query(&format!("SET LOCAL hnsw.ef_search = {}", (depth * 5).clamp(EF_SEARCH, MAX_EF_SEARCH)))
                .execute(&mut *tx)
                .await?;
            // The walk is over distinct contents (`code_vectors`); each
            // content's chunks that pass the filters join it in order.
            let sql = format!(
                "WITH nearest AS MATERIALIZED ( \
                     SELECT c.id, v.embedding <=> $6::real[]::vector AS distance FROM code_vectors v \
                     JOIN code_chunks c ON c.tenant_id = v.tenant_id AND c.embedder = v.embedder \
                         AND c.content_hash = v.content_hash \
                     WHERE v.tenant_id = $1 AND v.embedder = $5 AND {filters} ORDER BY distance LIMIT $7), \
                 seen AS ( \
                     SELECT c.id, v.embedding <=> $6::real[]::vector AS distance FROM code_chunks c \
                     JOIN code_vectors v ON v.tenant_id = c.tenant_id AND v.embedder = c.embedder \
                         AND v.content_hash = c.content_hash \
                     WHERE c.tenant_id = $1 AND c.id = ANY($8) AND c.embedder = $5) \
                 SELECT id FROM (SELECT id, distance FROM nearest UNION ALL SELECT id, distance FROM seen) u \
                 GROUP BY id ORDER BY min(distance), id LIMIT $7"
            );
            let ids: Vec<i64> = sqlx::query_scalar(&sql)
                .bind(tenant.0)
                .bind(&query.repositories)
                .bind(&query.language)
                .bind(&query.path_regex)
                .bind(&query.embedder)
                .bind(&query.embedding)
                .bind(depth)
                .bind(&seen)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            lists.push(ids);
        }
        if query.mode.uses_terms() {
            lists.extend(term_lists);
        }

        // Only the fused results are read whole.
        let fused = fuse_ranked(&lists, query.limit as usize);
        if fused.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = fused.iter().map(|(id, _)| *id).collect();
        let sql = format!(
            "SELECT {HIT_COLUMNS} FROM code_chunks c JOIN repositories r ON r.id = c.repository_id \
             WHERE c.tenant_id = $1 AND c.id = ANY($2)"
        );
        let rows = sqlx::query(&sql).bind(tenant.0).bind(&ids).fetch_all(self.pool()).await?;
        Ok(hits_in_order(&fused, rows.iter().map(hit_from).collect::<Result<_>>()?))
    }
}

fn blob_from(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn vector_from(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// pg_trgm's similarity: shared trigrams of the padded words over all trigrams.
fn trigram_similarity(a: &str, b: &str) -> f64 {
    fn grams(s: &str) -> std::collections::HashSet<[char; 3]> {
        let mut set = std::collections::HashSet::new();
        for word in s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let padded: Vec<char> = format!("  {word} ").chars().collect();
            for w in padded.windows(3) {
                set.insert([w[0], w[1], w[2]]);
            }
        }
        set
    }
    let (a, b) = (grams(a), grams(b));
    let union = a.union(&b).count();
    if union == 0 { 0.0 } else { a.intersection(&b).count() as f64 / union as f64 }
}

/// One scanned row of the embedded index.
struct Candidate {
    id: i64,
    cosine: Option<f32>,
    bm25: f64,
    /// The best trigram similarity among the query's identifiers the symbol contains.
    symbol_match: Option<f64>,
}

#[async_trait]
impl CodeStore for SqliteStore {
    async fn embeddings_by_hash(
        &self,
        tenant: TenantId,
        embedder: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>> {
        if hashes.is_empty() {
            return Ok(HashMap::new());
        }
        let hashes = serde_json::to_string(hashes).map_err(|e| Error::Invalid(e.to_string()))?;
        let rows = sqlx::query(
            "SELECT content_hash, embedding FROM code_chunks WHERE tenant_id = $1 AND embedder = $2 \
             AND content_hash IN (SELECT value FROM json_each($3)) GROUP BY content_hash",
        )
        .bind(tenant.0)
        .bind(embedder)
        .bind(hashes)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let blob: Vec<u8> = row.try_get("embedding")?;
                Ok((row.try_get("content_hash")?, vector_from(&blob)))
            })
            .collect()
    }

    async fn replace_files(
        &self,
        tenant: TenantId,
        repository: Uuid,
        embedder: &str,
        paths: &[String],
        chunks: &[NewCodeChunk],
    ) -> Result<()> {
        let paths = serde_json::to_string(paths).map_err(|e| Error::Invalid(e.to_string()))?;
        // The first statement writes (a no-op update), so the transaction holds the write lock
        // before it reads what it will replace.
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE repositories SET id = id WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(repository)
            .execute(&mut *tx)
            .await?;
        let stored = sqlx::query(&format!(
            "SELECT {STORED_COLUMNS} FROM code_chunks WHERE tenant_id = $1 AND repository_id = $2 \
             AND path IN (SELECT value FROM json_each($3))"
        ))
        .bind(tenant.0)
        .bind(repository)
        .bind(paths)
        .fetch_all(&mut *tx)
        .await?;
        let stored = stored.iter().map(stored_chunk).collect::<Result<Vec<_>>>()?;
        let plan = plan_replace(stored, chunks, embedder);
        let delete = serde_json::to_string(&plan.delete).map_err(|e| Error::Invalid(e.to_string()))?;
        sqlx::query("DELETE FROM code_chunks WHERE tenant_id = $1 AND id IN (SELECT value FROM json_each($2))")
            .bind(tenant.0)
            .bind(delete)
            .execute(&mut *tx)
            .await?;
        for (id, start, end) in &plan.moved {
            sqlx::query("UPDATE code_chunks SET start_line = $3, end_line = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id)
                .bind(i64::from(*start))
                .bind(i64::from(*end))
                .execute(&mut *tx)
                .await?;
        }
        for batch in plan.insert.chunks(INSERT_BATCH) {
            let mut insert = QueryBuilder::new(
                "INSERT INTO code_chunks (tenant_id, repository_id, path, language, symbol, start_line, end_line, \
                 content_hash, content, search_text, embedder, embedding) ",
            );
            insert.push_values(batch, |mut row, chunk| {
                row.push_bind(tenant.0)
                    .push_bind(repository)
                    .push_bind(&chunk.path)
                    .push_bind(&chunk.language)
                    .push_bind(&chunk.symbol)
                    .push_bind(i64::from(chunk.start_line))
                    .push_bind(i64::from(chunk.end_line))
                    .push_bind(&chunk.content_hash)
                    .push_bind(&chunk.content)
                    .push_bind(&chunk.search_text)
                    .push_bind(embedder)
                    .push_bind(blob_from(&chunk.embedding));
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn indexed_paths(&self, tenant: TenantId, repository: Uuid) -> Result<Vec<String>> {
        self.paths_with_chunks(tenant, repository).await
    }

    async fn index_size(&self, tenant: TenantId, repository: Uuid) -> Result<(u64, u64)> {
        self.count_index(tenant, repository).await
    }

    async fn search(&self, tenant: TenantId, query: &CodeQuery) -> Result<Vec<CodeHit>> {
        use futures::TryStreamExt;

        let path_regex = query
            .path_regex
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| Error::Invalid(format!("bad path pattern: {e}")))?;
        let repositories: std::collections::HashSet<Uuid> = query.repositories.iter().copied().collect();
        let mut wanted: HashMap<&str, usize> = HashMap::new();
        for term in &query.terms {
            let next = wanted.len();
            wanted.entry(term.as_str()).or_insert(next);
        }

        // One pass: vector score, per-term frequencies for BM25, symbol match.
        let mut rows = sqlx::query(
            "SELECT id, repository_id, path, symbol, search_text, embedder, embedding FROM code_chunks \
             WHERE tenant_id = $1 AND ($2 IS NULL OR language = $2)",
        )
        .bind(tenant.0)
        .bind(&query.language)
        .fetch(self.pool());
        let mut candidates = Vec::new();
        let mut frequencies: Vec<(usize, Vec<(usize, u32)>)> = Vec::new();
        let mut document_frequency = vec![0u32; wanted.len()];
        while let Some(row) = rows.try_next().await? {
            let repository: Uuid = row.try_get("repository_id")?;
            if !repositories.is_empty() && !repositories.contains(&repository) {
                continue;
            }
            let path: String = row.try_get("path")?;
            if path_regex.as_ref().is_some_and(|re| !re.is_match(&path)) {
                continue;
            }
            let embedder: String = row.try_get("embedder")?;
            let cosine = if embedder == query.embedder {
                let blob: Vec<u8> = row.try_get("embedding")?;
                Some(
                    blob.chunks_exact(4)
                        .zip(&query.embedding)
                        .map(|(b, q)| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * q)
                        .sum(),
                )
            } else {
                None
            };
            let text: String = row.try_get("search_text")?;
            let mut length = 0usize;
            let mut counts: Vec<(usize, u32)> = Vec::new();
            for word in text.split(' ') {
                length += 1;
                if let Some(&slot) = wanted.get(word) {
                    match counts.iter_mut().find(|(s, _)| *s == slot) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((slot, 1)),
                    }
                }
            }
            for (slot, _) in &counts {
                document_frequency[*slot] += 1;
            }
            let symbol: String = row.try_get("symbol")?;
            let symbol = symbol.to_lowercase();
            let symbol_match = query
                .identifiers
                .iter()
                .take(2)
                .filter(|ident| symbol.contains(ident.as_str()))
                .map(|ident| trigram_similarity(&symbol, ident))
                .reduce(f64::max);
            frequencies.push((length, counts));
            candidates.push(Candidate { id: row.try_get("id")?, cosine, bm25: 0.0, symbol_match });
        }
        drop(rows);

        // BM25 with the usual k1 = 1.2, b = 0.75.
        let n = candidates.len() as f64;
        let average = frequencies.iter().map(|(len, _)| *len as f64).sum::<f64>() / n.max(1.0);
        for (candidate, (length, counts)) in candidates.iter_mut().zip(&frequencies) {
            candidate.bm25 = counts
                .iter()
                .map(|(slot, tf)| {
                    let df = f64::from(document_frequency[*slot]);
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    let tf = f64::from(*tf);
                    idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * *length as f64 / average.max(1.0)))
                })
                .sum();
        }

        let depth = usize::try_from(depth(query.limit)).unwrap_or(40);
        let top = |score: &dyn Fn(&Candidate) -> Option<f64>| -> Vec<i64> {
            let mut scored: Vec<(f64, i64)> = candidates.iter().filter_map(|c| score(c).map(|s| (s, c.id))).collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            scored.into_iter().take(depth).map(|(_, id)| id).collect()
        };
        let mut ranked = Vec::new();
        if query.mode.uses_vectors() {
            ranked.push(top(&|c| c.cosine.map(f64::from)));
        }
        if query.mode.uses_terms() {
            ranked.push(top(&|c| (c.bm25 > 0.0).then_some(c.bm25)));
        }
        if query.mode.uses_terms() && !query.identifiers.is_empty() {
            ranked.push(top(&|c| c.symbol_match));
        }

        // Fuse, then read only the fused results whole.
        let fused = fuse_ranked(&ranked, query.limit as usize);
        let ids: Vec<i64> = fused.iter().map(|(id, _)| *id).collect();
        let ids_json = serde_json::to_string(&ids).map_err(|e| Error::Invalid(e.to_string()))?;
        let sql = format!(
            "SELECT {HIT_COLUMNS} FROM code_chunks c JOIN repositories r ON r.id = c.repository_id \
             WHERE c.tenant_id = $1 AND c.id IN (SELECT value FROM json_each($2))"
        );
        let rows = sqlx::query(&sql).bind(tenant.0).bind(ids_json).fetch_all(self.pool()).await?;
        Ok(hits_in_order(&fused, rows.iter().map(hit_from).collect::<Result<_>>()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(path: &str) -> CodeHit {
        CodeHit {
            repository_id: Uuid::nil(),
            repository_url: String::new(),
            path: path.into(),
            language: "rust".into(),
            symbol: String::new(),
            start_line: 1,
            end_line: 1,
            content: String::new(),
            score: 0.0,
        }
    }

    #[test]
    fn fusion_rewards_agreement() {
        let fused = fuse_ranked(&[vec![1, 2, 3], vec![3, 4]], 10);
        let ids: Vec<i64> = fused.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [3, 1, 2, 4], "ties keep first-seen order");
        assert!(fused[0].1 > fused[1].1);
        assert_eq!(fuse_ranked(&[vec![1, 2]], 1).len(), 1);
    }

    #[test]
    fn fused_hits_keep_fused_order_and_scores() {
        let rows = HashMap::from([(1, hit("a")), (2, hit("b"))]);
        // A chunk deleted between ranking and reading is left out.
        let hits = hits_in_order(&[(2, 0.5), (3, 0.4), (1, 0.25)], rows);
        let found: Vec<(&str, f64)> = hits.iter().map(|h| (h.path.as_str(), h.score)).collect();
        assert_eq!(found, [("b", 0.5), ("a", 0.25)]);
    }

    #[test]
    fn common_terms_rank_but_are_not_required() {
        let terms: Vec<String> = ["window", "sys", "verifi", "signatur"].map(String::from).into();
        let listed = [("window", 900_000.0), ("sys", 50_000.0), ("verifi", 400.0)];
        let matches =
            TermMatches { listed: listed.into_iter().map(|(t, n)| (t.to_owned(), n)).collect(), unlisted: 400.0 };
        // `signatur` is not listed, and counts as `unlisted`; it sorts first on the tie.
        let [all, any] = candidate_passes(&terms, &matches);
        assert_eq!(all.as_deref(), Some("'signatur' & 'verifi'"));
        assert_eq!(any.as_deref(), Some("'signatur' | 'verifi'"));

        // Only common terms: the rarest is required, and there is no second pass.
        let common: Vec<String> = ["window", "sys"].map(String::from).into();
        assert_eq!(candidate_passes(&common, &matches), [Some("'sys'".to_owned()), None]);

        // The fallback takes only as many rare terms as it can rank whole.
        let rare: Vec<String> = ["aa", "bb", "cc"].map(String::from).into();
        let matches = TermMatches { listed: HashMap::new(), unlisted: 400.0 };
        assert_eq!(candidate_passes(&rare, &matches)[1].as_deref(), Some("'aa' | 'bb'"));

        // No statistics (a fresh table): every term is required, and any of them will do.
        let [all, any] = candidate_passes(&terms, &TermMatches::default());
        assert_eq!(all.as_deref(), Some("'signatur' & 'sys' & 'verifi' & 'window'"));
        assert_eq!(any.as_deref(), Some("'signatur' | 'sys' | 'verifi' | 'window'"));
    }

    #[test]
    fn identifiers_match_as_literal_substrings() {
        assert_eq!(containing("verify_signature"), "%verify\\_signature%");
        assert_eq!(containing("100%\\x"), "%100\\%\\\\x%");
    }

    #[test]
    fn trigram_similarity_matches_pg_trgm_on_simple_words() {
        // pg_trgm: similarity('word', 'two words') = 0.36363637
        assert!((trigram_similarity("word", "two words") - 0.363_636_37).abs() < 1e-6);
        assert!(trigram_similarity("verify_signature", "verify_signature") > 0.99);
    }

    #[test]
    fn replacing_a_file_keeps_what_did_not_change() {
        let new = |hash: &str, start: u32| NewCodeChunk {
            path: "a.rs".into(),
            language: "rust".into(),
            symbol: "f".into(),
            start_line: start,
            end_line: start + 2,
            content_hash: hash.into(),
            content: String::new(),
            search_text: String::new(),
            embedding: vec![],
        };
        let stored = |id: i64, hash: &str, start: u32, embedder: &str| StoredChunk {
            id,
            path: "a.rs".into(),
            content_hash: hash.into(),
            symbol: "f".into(),
            embedder: embedder.into(),
            start_line: start,
            end_line: start + 2,
        };
        let chunks = [new("same", 1), new("moved", 20), new("fresh", 30), new("rehash", 40)];
        let plan = plan_replace(
            vec![
                stored(1, "same", 1, "e"),
                stored(2, "moved", 10, "e"),
                stored(3, "gone", 5, "e"),
                stored(4, "rehash", 40, "old"),
            ],
            &chunks,
            "e",
        );
        let mut deleted = plan.delete.clone();
        deleted.sort_unstable();
        assert_eq!(deleted, [3, 4], "removed content and other embedders' vectors go");
        assert_eq!(plan.moved, [(2, 20, 22)], "unchanged content that moved only gets new lines");
        let inserted: Vec<&str> = plan.insert.iter().map(|c| c.content_hash.as_str()).collect();
        assert_eq!(inserted, ["fresh", "rehash"]);
    }

    #[test]
    fn tsquery_quotes_and_dedups() {
        assert_eq!(tsquery(&["b".into(), "a".into(), "b".into()], "|").as_deref(), Some("'a' | 'b'"));
        assert_eq!(tsquery(&["b".into(), "a".into()], "&").as_deref(), Some("'a' & 'b'"));
        assert_eq!(tsquery(&["it's".into()], "|"), None);
    }
}
