//! The screenplay language model: tokenizer, the architectures (a pretrained llama base
//! fine-tuned with adapters, and two small models trained from scratch), training and sampling.

pub mod base;
pub mod draft;
pub mod gpt;
pub mod llama;
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
    /// A pretrained llama base (SmolLM2-135M) with low-rank adapters.
    Llama,
}

/// What adapters sit on: the base file and its hash, and their rank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    pub rank: usize,
    /// The base's file name, for messages.
    pub base: String,
    /// blake3 of the base file: adapters only fit the base they were trained on.
    pub base_hash: String,
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
    /// The pretrained base and adapters (llama), trained on screenplays whose title page
    /// names their cast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapters: Option<AdapterConfig>,
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
                adapters: None,
            },
            Arch::Lstm => ModelConfig {
                arch,
                vocab,
                context: 128,
                layers: 2,
                heads: 0,
                width: 128,
                hidden: 256,
                adapters: None,
            },
            Arch::Llama => panic!("a llama's shape comes from its base: ModelConfig::on_base"),
        }
    }

    /// Whether the model was trained to read the cast from the title page.
    pub fn reads_cast(&self) -> bool {
        self.adapters.is_some()
    }

    /// Adapters of `rank` on `base`, trained on windows of `context` tokens.
    pub fn on_base(base: &base::Base, rank: usize, context: usize) -> Self {
        let s = &base.shape;
        ModelConfig {
            arch: Arch::Llama,
            vocab: s.vocab + tokenizer::specials().len(),
            context,
            layers: s.layers,
            heads: s.heads,
            width: s.width,
            hidden: s.ffn,
            adapters: Some(AdapterConfig {
                rank,
                base: base
                    .file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                base_hash: base.hash.clone(),
            }),
        }
    }
}

enum Net {
    Gpt(gpt::Gpt),
    Lstm(lstm::Lstm),
    Llama(llama::Llama),
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
            Arch::Llama => anyhow::bail!("a llama model needs its base: LanguageModel::on_base"),
        };
        Ok(LanguageModel {
            config: config.clone(),
            varmap,
            net,
            device: device.clone(),
        })
    }

    /// Adapters (fresh) on `base`, which must be the one `config` names; loaded through
    /// [`ModelBundle`], they are folded into the base for sampling.
    pub fn on_base(config: &ModelConfig, base: &base::Base, device: &Device) -> Result<Self> {
        let adapters = config
            .adapters
            .as_ref()
            .context("the model configuration names no base")?;
        anyhow::ensure!(
            adapters.base_hash == base.hash,
            "these adapters were trained on another base than {} (its hash differs); \
             rerun `bash scripts/setup.sh` to restore {}, or train adapters for this base",
            base.file.display(),
            adapters.base
        );
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let extra_from = base.tokenizer()?.extra_token_origins(base.shape.vocab)?;
        anyhow::ensure!(
            config.vocab == base.shape.vocab + extra_from.len(),
            "the model has {} tokens, its base and benjamin's {}",
            config.vocab,
            base.shape.vocab + extra_from.len()
        );
        let net = llama::Llama::new(
            base,
            adapters.rank,
            &extra_from,
            config.context.max(2048),
            vb,
        )?;
        Ok(LanguageModel {
            config: config.clone(),
            varmap,
            net: Net::Llama(net),
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
            Net::Llama(m) => {
                let (b, t) = ids.dims2()?;
                m.logits(ids)?.reshape((b, t, ()))?
            }
        })
    }

    /// Mean next-token cross-entropy of `inputs` predicting `targets` (both `[batch, time]`).
    pub fn loss(&self, inputs: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let logits = match &self.net {
            Net::Gpt(m) => m.logits(inputs, None)?,
            Net::Llama(m) => return Ok(m.loss(inputs, &targets.flatten_all()?.to_vec1()?)?),
            Net::Lstm(m) => {
                let logits = m.forward(inputs)?;
                let v = logits.dim(2)?;
                logits.reshape(((), v))?
            }
        };
        Ok(crate::nn::loss::cross_entropy(
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

    /// Forgets the tokens from `len` on (a line rewritten): the cached keys and values of
    /// the positions kept stay, but for the last kept token, which goes through again (its
    /// logits are the next ones asked for); a recurrent state starts again from the first.
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len >= self.tokens.len() {
            return Ok(());
        }
        self.tokens.truncate(len);
        let kept = len.saturating_sub(1);
        if self.consumed <= kept {
            return Ok(());
        }
        let first_cached = self.consumed - self.cache.len;
        if matches!(self.model.net, Net::Lstm(_)) || kept <= first_cached {
            self.state = None;
            self.cache = gpt::KvCache::default();
            self.consumed = 0;
            return Ok(());
        }
        // The positions past `kept` are overwritten as tokens come.
        self.cache.len = kept - first_cached;
        self.consumed = kept;
        Ok(())
    }

    pub fn next_logits(&mut self) -> Result<Vec<f32>> {
        anyhow::ensure!(!self.tokens.is_empty(), "nothing to continue from");
        let dev = &self.model.device;
        let logits = match &self.model.net {
            Net::Gpt(m) => self.cached(m.context(), |ids, c| m.forward_cached(ids, c))?,
            Net::Llama(m) => self.cached(m.context(), |ids, c| m.forward_cached(ids, c))?,
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

impl Stepper<'_> {
    /// Runs the tokens not yet seen through a model with a key-value cache. When the context
    /// fills up, starts again from the last half of it (the GPT's positions are absolute, so
    /// its window cannot slide).
    fn cached(
        &mut self,
        context: usize,
        forward: impl Fn(&Tensor, &mut gpt::KvCache) -> candle_core::Result<Tensor>,
    ) -> Result<Tensor> {
        let fresh = self.tokens.len() - self.consumed;
        if self.cache.len + fresh > context {
            self.cache = gpt::KvCache::default();
            self.consumed = self.tokens.len().saturating_sub(context / 2);
        }
        let ids = Tensor::new(&self.tokens[self.consumed..], &self.model.device)?.unsqueeze(0)?;
        self.consumed = self.tokens.len();
        Ok(forward(&ids, &mut self.cache)?)
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

/// Identity of a model folder's contents without loading it: adapters are named by their
/// weights and their base's hash (checked against the base when they load).
pub fn bundle_hash(config: &str, weights: &[u8], tokenizer: Option<&[u8]>) -> Result<String> {
    let config: ModelConfig =
        serde_json::from_str(config).context("not a valid model configuration")?;
    Ok(match (&config.adapters, tokenizer) {
        (Some(a), _) => model_hash(weights, a.base_hash.as_bytes()),
        (None, Some(t)) => model_hash(weights, t),
        (None, None) => anyhow::bail!("the model has no {TOKENIZER_FILE}"),
    })
}

/// Files of a model folder.
pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

impl ModelBundle {
    /// A model from its files' contents; `tokenizer_json` is `None` for adapters, which take
    /// the tokenizer of their base (found on [`base::search_path`], or at `base_path`).
    pub fn from_parts(
        config: &str,
        weights: &[u8],
        tokenizer_json: Option<&str>,
        base_path: Option<&Path>,
        origin: &str,
        device: &Device,
    ) -> Result<Self> {
        let config: ModelConfig = serde_json::from_str(config).with_context(|| {
            format!("{origin}/{CONFIG_FILE} is not a valid model configuration")
        })?;
        let weights_origin = format!("{origin}/{WEIGHTS_FILE}");
        let (tokenizer, model, hash) = if config.arch == Arch::Llama {
            let base = base::locate(base_path)?;
            let tokenizer = base.tokenizer()?;
            let mut model = LanguageModel::on_base(&config, &base, device)?;
            crate::nn::load_weights(&model.varmap, weights, &weights_origin)?;
            if let Net::Llama(m) = &mut model.net {
                m.merge_adapters()?;
            }
            let hash = model_hash(weights, base.hash.as_bytes());
            (tokenizer, model, hash)
        } else {
            let json = tokenizer_json.with_context(|| {
                format!("{origin} has no {TOKENIZER_FILE}; is it a model folder made by `benjamin train screenplay`?")
            })?;
            let tokenizer =
                ScreenplayTokenizer::from_json(json, &format!("{origin}/{TOKENIZER_FILE}"))?;
            let model = LanguageModel::load(&config, weights, &weights_origin, device)?;
            (tokenizer, model, model_hash(weights, json.as_bytes()))
        };
        anyhow::ensure!(
            tokenizer.vocab_size() == config.vocab,
            "{origin}: the tokenizer has {} tokens, the model {}",
            tokenizer.vocab_size(),
            config.vocab
        );
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
        let tokenizer = match std::fs::read(dir.join(TOKENIZER_FILE)) {
            Ok(bytes) => Some(String::from_utf8(bytes).context("tokenizer.json is not UTF-8")?),
            Err(_) => None,
        };
        Self::from_parts(
            &config,
            &read(WEIGHTS_FILE)?,
            tokenizer.as_deref(),
            None,
            &dir.display().to_string(),
            device,
        )
    }
}
