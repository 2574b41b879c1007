//! Embeddings, behind [`Embedder`].
//!
//! Every embedder produces [`DIMENSIONS`]-dimensional, L2-normalised vectors,
//! so one pgvector HNSW index serves them all; chunks record which embedder
//! made their vector and search only compares like with like.

use async_trait::async_trait;
use devops_errors::{ErrorCode, HasErrorCode};

use crate::lexical;

/// The width of every vector in the index (that of all-MiniLM-L6-v2).
pub const DIMENSIONS: usize = 384;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding endpoint failed: {0}")]
    Endpoint(String),
    #[error(
        "embedding endpoint returned {got} vectors of {dims} dimensions for {wanted} inputs; expected {DIMENSIONS}"
    )]
    Shape { wanted: usize, got: usize, dims: usize },
    #[error("embedding model: {0}")]
    Model(String),
}

impl HasErrorCode for EmbedError {
    fn code(&self) -> ErrorCode {
        match self {
            EmbedError::Model(_) => ErrorCode::Internal,
            EmbedError::Endpoint(_) | EmbedError::Shape { .. } => ErrorCode::Upstream,
        }
    }
}

#[async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// Stable identity: vectors from different ids are never compared.
    fn id(&self) -> &str;
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// The built-in embedder: no network, no model. Feature hashing of the
/// lexical terms and their character 4-grams into [`DIMENSIONS`] signed
/// buckets, so texts sharing words and word pieces land close together.
#[derive(Debug, Default, Clone)]
pub struct HashEmbedder;

impl HashEmbedder {
    pub const ID: &'static str = "hash-v1";

    pub fn embed_one(text: &str) -> Vec<f32> {
        let mut vector = vec![0f32; DIMENSIONS];
        let mut add = |feature: &str, weight: f32| {
            let h = fixed_hash(feature);
            let bucket = (h % DIMENSIONS as u64) as usize;
            let sign = if (h >> 32) & 1 == 0 { 1.0 } else { -1.0 };
            vector[bucket] += sign * weight;
        };
        for term in lexical::terms(text) {
            add(&term, 1.0);
            let padded: Vec<char> = format!("^{term}$").chars().collect();
            for gram in padded.windows(4) {
                add(&gram.iter().collect::<String>(), 0.3);
            }
        }
        normalize(&mut vector);
        vector
    }
}

#[async_trait]
impl Embedder for HashEmbedder {
    fn id(&self) -> &str {
        Self::ID
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| Self::embed_one(t)).collect())
    }
}

/// A hash that is the same in every process and every release, unlike std's.
fn fixed_hash(feature: &str) -> u64 {
    // FNV-1a, then a finaliser to spread the low bits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in feature.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

pub fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|v| *v /= norm);
    }
}

/// Cosine similarity of two normalised vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// An OpenAI-compatible `/v1/embeddings` endpoint, asked for
/// [`DIMENSIONS`]-wide vectors.
pub struct OpenAiEmbedder {
    client: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<String>,
    id: String,
}

impl OpenAiEmbedder {
    pub fn new(base_url: &str, model: &str, api_key: Option<String>) -> Self {
        Self {
            client: reqwest::Client::builder().timeout(std::time::Duration::from_secs(60)).build().unwrap_or_default(),
            url: format!("{}/v1/embeddings", base_url.trim_end_matches('/').trim_end_matches("/v1")),
            model: model.to_owned(),
            api_key,
            id: format!("openai:{model}"),
        }
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        #[derive(serde::Deserialize)]
        struct Item {
            index: usize,
            embedding: Vec<f32>,
        }
        #[derive(serde::Deserialize)]
        struct Response {
            data: Vec<Item>,
        }
        let mut request = self.client.post(&self.url).json(&serde_json::json!({
            "model": self.model,
            "input": texts,
            "dimensions": DIMENSIONS,
            "encoding_format": "float",
        }));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| EmbedError::Endpoint(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(EmbedError::Endpoint(format!("{status}: {}", body.chars().take(300).collect::<String>())));
        }
        let mut body: Response = response.json().await.map_err(|e| EmbedError::Endpoint(e.to_string()))?;
        body.data.sort_by_key(|item| item.index);
        let dims = body.data.first().map_or(0, |i| i.embedding.len());
        if body.data.len() != texts.len() || body.data.iter().any(|i| i.embedding.len() != DIMENSIONS) {
            return Err(EmbedError::Shape { wanted: texts.len(), got: body.data.len(), dims });
        }
        Ok(body
            .data
            .into_iter()
            .map(|item| {
                let mut v = item.embedding;
                normalize(&mut v);
                v
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn related_texts_are_closer_than_unrelated_ones() {
        let query = HashEmbedder::embed_one("verify webhook signature");
        let related = HashEmbedder::embed_one("fn verify_webhook_signature(secret: &[u8], body: &[u8]) -> bool");
        let unrelated = HashEmbedder::embed_one("fn render_markdown_table(rows: Vec<Row>) -> String");
        assert!(cosine(&query, &related) > cosine(&query, &unrelated) + 0.2);
        assert!((cosine(&related, &related) - 1.0).abs() < 1e-5);
        assert_eq!(query.len(), DIMENSIONS);
    }

    #[test]
    fn hashing_is_stable_across_processes() {
        // A change here silently invalidates every stored vector.
        assert_eq!(fixed_hash("webhook"), 14_565_317_847_800_007_335);
        assert_eq!(HashEmbedder::embed_one("same text"), HashEmbedder::embed_one("same text"));
    }
}
