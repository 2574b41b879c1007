//! `devops-mcp index` and `devops-mcp search`: the code index from a
//! terminal, through a running indexer (as `up` or the indexer service).

use std::io::{IsTerminal, Write};

use devops_config::Config;
use devops_proto::indexer::v1 as pb;
use devops_runtime::{Error, Result};

pub(crate) fn failed(what: &str, status: tonic::Status) -> Error {
    let api = devops_errors::ApiError::from(&status);
    Error::Serve(std::io::Error::other(format!("{what}: {api}")))
}

/// A local directory becomes an absolute path; URLs pass through.
pub(crate) fn repository_argument(raw: &str) -> String {
    let path = std::path::Path::new(raw);
    if !raw.contains("://") && !raw.contains('@') && path.exists() {
        return std::fs::canonicalize(path).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| raw.into());
    }
    raw.to_owned()
}

pub async fn index(config: &Config, tenant: &str, repository: &str, git_ref: String, full: bool) -> Result<()> {
    let store = crate::admin::connect(config).await?;
    let tenant = crate::admin::resolve_tenant(store.as_ref(), tenant).await?;
    let request = pb::IndexRepositoryRequest {
        tenant_id: tenant.id.to_string(),
        repository_url: repository_argument(repository),
        git_ref,
        full,
    };
    let mut client = devops_runtime::clients::indexer(config)?;
    let mut stream = client.index_repository(request).await.map_err(|s| failed("index", s))?.into_inner();
    let terminal = std::io::stderr().is_terminal();
    let mut last_phase = String::new();
    let mut last = None;
    while let Some(progress) = stream.message().await.map_err(|s| failed("index", s))? {
        let line = progress_line(&progress);
        if terminal {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else if progress.phase != last_phase || progress.done {
            eprintln!("{line}");
        }
        last_phase.clone_from(&progress.phase);
        last = Some(progress);
    }
    if terminal {
        eprintln!();
    }
    let Some(done) = last.filter(|p| p.done) else {
        return Err(Error::Serve(std::io::Error::other("the indexer ended the run without a result")));
    };
    println!(
        "indexed {} at {}: {} files read, {} deleted, {} skipped; {} chunks; {} embeddings reused, {} computed",
        done.repository_id,
        &done.commit[..done.commit.len().min(12)],
        done.files_done,
        done.files_deleted,
        done.files_skipped,
        done.chunks,
        done.embeddings_reused,
        done.embeddings_computed
    );
    for skipped in done.skipped.iter().take(20) {
        println!("  skipped {} ({})", skipped.path, skipped.reason);
    }
    if done.skipped.len() > 20 {
        println!("  … and {} more skipped", done.files_skipped.saturating_sub(20));
    }
    Ok(())
}

fn progress_line(p: &pb::IndexProgress) -> String {
    let width = 30usize;
    let filled = (p.files_done * width as u64).checked_div(p.files_total).unwrap_or(0) as usize;
    let eta = if p.eta_ms > 0 { format!(", ETA {:.0}s", p.eta_ms as f64 / 1000.0) } else { String::new() };
    format!(
        "{:<9} [{}{}] {}/{} files, {} chunks, {} reused{eta}",
        p.phase,
        "#".repeat(filled.min(width)),
        " ".repeat(width - filled.min(width)),
        p.files_done,
        p.files_total,
        p.chunks,
        p.embeddings_reused
    )
}

pub struct SearchArgs {
    pub query: String,
    pub limit: u32,
    pub repositories: Vec<String>,
    pub path_glob: Option<String>,
    pub language: Option<String>,
    pub json: bool,
}

pub async fn search(config: &Config, tenant: &str, args: SearchArgs) -> Result<()> {
    let store = crate::admin::connect(config).await?;
    let tenant = crate::admin::resolve_tenant(store.as_ref(), tenant).await?;
    let request = pb::SearchRequest {
        tenant_id: tenant.id.to_string(),
        query: args.query,
        limit: args.limit,
        repositories: args.repositories.iter().map(|r| repository_argument(r)).collect(),
        path_glob: args.path_glob.unwrap_or_default(),
        language: args.language.unwrap_or_default(),
        mode: String::new(),
    };
    let mut client = devops_runtime::clients::indexer(config)?;
    let hits = client.search(request).await.map_err(|s| failed("search", s))?.into_inner().hits;
    if args.json {
        let hits: Vec<serde_json::Value> = hits
            .iter()
            .map(|h| {
                serde_json::json!({
                    "repository_url": h.repository_url, "path": h.path, "start_line": h.start_line,
                    "end_line": h.end_line, "symbol": h.symbol, "language": h.language, "score": h.score,
                    "snippet": h.snippet,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&hits).unwrap_or_default());
        return Ok(());
    }
    if hits.is_empty() {
        println!("no results");
    }
    for (rank, hit) in hits.iter().enumerate() {
        let symbol = if hit.symbol.is_empty() { String::new() } else { format!("  {}", hit.symbol) };
        println!(
            "{}. {}:{}-{}{symbol}  ({:.4}, {})",
            rank + 1,
            hit.path,
            hit.start_line,
            hit.end_line,
            hit.score,
            hit.repository_url
        );
        for line in hit.snippet.lines().take(4) {
            println!("     {line}");
        }
    }
    Ok(())
}
