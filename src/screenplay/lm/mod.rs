//! The screenplay language model: tokenizer, the two architectures, training and sampling.

pub mod gpt;
pub mod lstm;
pub mod sample;
pub mod tokenizer;
pub mod train;

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

pub use tokenizer::ScreenplayTokenizer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Multi-layer LSTM.
    Lstm,
    /// Small GPT (causal self-attention, learned positions).
    Gpt,
}

/// Shape of a model; saved as config.json beside its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab: usize,
    /// Tokens the model sees at once (GPT positions; LSTM training window).
    pub context: usize,
    pub layers: usize,
    /// Attention heads (GPT).
    #[serde(default)]
    pub heads: usize,
    /// Embedding width.
    pub width: usize,
    /// Recurrent state size (LSTM).
    #[serde(default)]
    pub hidden: usize,
}

impl ModelConfig {
    /// The default shapes: about a million parameters each, a few MB on disk.
    pub fn default_for(arch: Arch, vocab: usize) -> Self {
        match arch {
            Arch::Gpt => ModelConfig {
                arch,
                vocab,
                context: 128,
                layers: 4,
                heads: 4,
                width: 128,
                hidden: 0,
            },
            Arch::Lstm => ModelConfig {
                arch,
                vocab,
                context: 128,
                layers: 2,
                heads: 0,
                width: 128,
                hidden: 256,
            },
        }
    }
}

enum Net {
    Gpt(gpt::Gpt),
    Lstm(lstm::Lstm),
}

/// A model with its variables.
pub struct LanguageModel {
    pub config: ModelConfig,
    pub varmap: VarMap,
    net: Net,
    pub device: Device,
}

impl LanguageModel {
    /// A freshly initialised model.
    pub fn new(config: &ModelConfig, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let net = match config.arch {
            Arch::Gpt => {
                anyhow::ensure!(
                    config.heads > 0 && config.width.is_multiple_of(config.heads),
                    "GPT width must divide into its heads"
                );
                Net::Gpt(gpt::Gpt::new(config, vb)?)
            }
            Arch::Lstm => Net::Lstm(lstm::Lstm::new(config, vb)?),
        };
        Ok(LanguageModel {
            config: config.clone(),
            varmap,
            net,
            device: device.clone(),
        })
    }

    /// Loads weights (safetensors bytes); `origin` names them in errors.
    pub fn load(
        config: &ModelConfig,
        weights: &[u8],
        origin: &str,
        device: &Device,
    ) -> Result<Self> {
        let model = Self::new(config, device)?;
        crate::nn::load_weights(&model.varmap, weights, origin)?;
        Ok(model)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::nn::save_tensors(path, &crate::nn::var_tensors(&self.varmap))
    }

    pub fn parameter_count(&self) -> usize {
        self.varmap.all_vars().iter().map(|v| v.elem_count()).sum()
    }

    /// Logits `[batch, time, vocab]`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(match &self.net {
            Net::Gpt(m) => m.forward(ids)?,
            Net::Lstm(m) => m.forward(ids)?,
        })
    }

    /// Mean next-token cross-entropy of `inputs` predicting `targets` (both `[batch, time]`).
    pub fn loss(&self, inputs: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let logits = match &self.net {
            Net::Gpt(m) => m.logits(inputs, None)?,
            Net::Lstm(m) => {
                let logits = m.forward(inputs)?;
                let v = logits.dim(2)?;
                logits.reshape(((), v))?
            }
        };
        Ok(crate::nn::fused::cross_entropy(
            &logits,
            &targets.flatten_all()?,
        )?)
    }
}

/// Feeds tokens one by one and gives the next-token logits; the LSTM keeps its state, the GPT
/// its keys and values (between half and all of its context).
pub struct Stepper<'a> {
    model: &'a LanguageModel,
    tokens: Vec<u32>,
    state: Option<lstm::LstmState>,
    cache: gpt::KvCache,
    consumed: usize,
}

impl<'a> Stepper<'a> {
    pub fn new(model: &'a LanguageModel) -> Self {
        Stepper {
            model,
            tokens: Vec::new(),
            state: None,
            cache: gpt::KvCache::default(),
            consumed: 0,
        }
    }

    pub fn push(&mut self, ids: &[u32]) {
        self.tokens.extend_from_slice(ids);
    }

    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    pub fn next_logits(&mut self) -> Result<Vec<f32>> {
        anyhow::ensure!(!self.tokens.is_empty(), "nothing to continue from");
        let dev = &self.model.device;
        let logits = match &self.model.net {
            Net::Gpt(m) => {
                // Keys and values are cached; when the context fills up, start again from
                // the last half of it (positions are absolute, so the window cannot slide).
                let fresh = self.tokens.len() - self.consumed;
                if self.cache.len + fresh > m.context() {
                    self.cache = gpt::KvCache::default();
                    self.consumed = self.tokens.len().saturating_sub(m.context() / 2);
                }
                let ids = Tensor::new(&self.tokens[self.consumed..], dev)?.unsqueeze(0)?;
                self.consumed = self.tokens.len();
                m.forward_cached(&ids, &mut self.cache)?
            }
            Net::Lstm(m) => {
                if self.state.is_none() {
                    self.state = Some(m.zero_state(1, dev)?);
                }
                let ids = Tensor::new(&self.tokens[self.consumed..], dev)?.unsqueeze(0)?;
                self.consumed = self.tokens.len();
                m.forward_from(&ids, self.state.as_mut().unwrap())?
            }
        };
        let t = logits.dim(1)?;
        Ok(logits
            .narrow(1, t - 1, 1)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }
}

/// A model with its tokenizer, as saved in a folder (config.json, model.safetensors, tokenizer.json).
pub struct ModelBundle {
    pub config: ModelConfig,
    pub tokenizer: ScreenplayTokenizer,
    pub model: LanguageModel,
    /// Hash of the weights and tokenizer, for stage manifests.
    pub hash: String,
}

/// Identity of a model for manifests: its weights and tokenizer files, as stored.
pub fn model_hash(weights: &[u8], tokenizer: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(weights);
    h.update(tokenizer);
    h.finalize().to_hex().to_string()
}

/// Files of a model folder.
pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

impl ModelBundle {
    pub fn from_parts(
        config: &str,
        weights: &[u8],
        tokenizer_json: &str,
        origin: &str,
        device: &Device,
    ) -> Result<Self> {
        let config: ModelConfig = serde_json::from_str(config).with_context(|| {
            format!("{origin}/{CONFIG_FILE} is not a valid model configuration")
        })?;
        let tokenizer =
            ScreenplayTokenizer::from_json(tokenizer_json, &format!("{origin}/{TOKENIZER_FILE}"))?;
        anyhow::ensure!(
            tokenizer.vocab_size() == config.vocab,
            "{origin}: the tokenizer has {} tokens, the model {}",
            tokenizer.vocab_size(),
            config.vocab
        );
        let model = LanguageModel::load(
            &config,
            weights,
            &format!("{origin}/{WEIGHTS_FILE}"),
            device,
        )?;
        let hash = model_hash(weights, tokenizer_json.as_bytes());
        Ok(ModelBundle {
            config,
            tokenizer,
            model,
            hash,
        })
    }

    pub fn load_dir(dir: &Path, device: &Device) -> Result<Self> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).with_context(|| {
                format!(
                    "cannot read {}; is {} a model folder made by `benjamin train screenplay`?",
                    dir.join(name).display(),
                    dir.display()
                )
            })
        };
        let config = String::from_utf8(read(CONFIG_FILE)?).context("config.json is not UTF-8")?;
        let tokenizer =
            String::from_utf8(read(TOKENIZER_FILE)?).context("tokenizer.json is not UTF-8")?;
        Self::from_parts(
            &config,
            &read(WEIGHTS_FILE)?,
            &tokenizer,
            &dir.display().to_string(),
            device,
        )
    }
}
