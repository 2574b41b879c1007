//! Repositories a tenant indexes, and the code chunks of their index.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::TenantId;

/// Where a repository's index stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IndexState {
    /// Known, never indexed.
    Registered,
    Indexing,
    /// Searchable at `last_indexed_commit`.
    Ready,
    /// The last run failed; `last_error` says why. An earlier index, if any, is still searchable.
    Failed,
}

impl IndexState {
    pub fn as_str(self) -> &'static str {
        match self {
            IndexState::Registered => "registered",
            IndexState::Indexing => "indexing",
            IndexState::Ready => "ready",
            IndexState::Failed => "failed",
        }
    }
}

impl fmt::Display for IndexState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IndexState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "registered" => Ok(IndexState::Registered),
            "indexing" => Ok(IndexState::Indexing),
            "ready" => Ok(IndexState::Ready),
            "failed" => Ok(IndexState::Failed),
            other => Err(format!("unknown index state {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    pub id: Uuid,
    pub tenant_id: TenantId,
    /// Canonical clone URL (no credentials); unique per tenant.
    pub url: String,
    /// `owner/name`.
    pub name: String,
    pub state: IndexState,
    pub last_indexed_commit: Option<String>,
    /// The embedder whose vectors the index holds.
    pub embedder: Option<String>,
    pub file_count: u64,
    pub chunk_count: u64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub indexed_at: Option<DateTime<Utc>>,
}

/// The outcome of an index run, recorded on the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRecord {
    pub state: IndexState,
    /// Unchanged when `None`.
    pub commit: Option<String>,
    pub embedder: Option<String>,
    pub file_count: Option<u64>,
    pub chunk_count: Option<u64>,
    pub last_error: Option<String>,
}

/// A chunk with its vector, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCodeChunk {
    pub path: String,
    pub language: String,
    pub symbol: String,
    pub start_line: u32,
    pub end_line: u32,
    pub content_hash: String,
    pub content: String,
    /// Normalised lexical terms, space separated.
    pub search_text: String,
    pub embedding: Vec<f32>,
}

/// Which rankings a search fuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Vector, lexical and identifier rankings, fused.
    #[default]
    Hybrid,
    /// Full-text terms and identifier trigrams only.
    Lexical,
    /// Embedding similarity only.
    Vector,
}

impl SearchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Hybrid => "hybrid",
            SearchMode::Lexical => "lexical",
            SearchMode::Vector => "vector",
        }
    }

    /// `hybrid`, `lexical` or `vector`; empty means hybrid.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "" | "hybrid" => Some(SearchMode::Hybrid),
            "lexical" => Some(SearchMode::Lexical),
            "vector" => Some(SearchMode::Vector),
            _ => None,
        }
    }

    pub fn uses_vectors(self) -> bool {
        self != SearchMode::Lexical
    }

    pub fn uses_terms(self) -> bool {
        self != SearchMode::Vector
    }
}

/// A hybrid search over one tenant's chunks.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeQuery {
    pub embedder: String,
    pub embedding: Vec<f32>,
    /// Normalised lexical terms of the query.
    pub terms: Vec<String>,
    /// Identifier-like words, matched against the symbols that contain them.
    pub identifiers: Vec<String>,
    pub limit: u32,
    /// Empty means every repository of the tenant.
    pub repositories: Vec<Uuid>,
    pub language: Option<String>,
    /// An anchored regular expression over the path (from a glob).
    pub path_regex: Option<String>,
    pub mode: SearchMode,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeHit {
    pub repository_id: Uuid,
    pub repository_url: String,
    pub path: String,
    pub language: String,
    pub symbol: String,
    pub start_line: u32,
    pub end_line: u32,
    pub content: String,
    /// Reciprocal-rank-fusion score: higher is better.
    pub score: f64,
}
