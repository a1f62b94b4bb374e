//! A llama decoder (SmolLM2's architecture: RMS norms, rotary positions, grouped-query
//! attention, a SwiGLU MLP, the output head tied to the embedding) over a frozen pretrained
//! base, fine-tuned through low-rank adapters (LoRA) on every projection and trained
//! embeddings for benjamin's genre and end tokens, which the base lacks.
//!
//! The base is dequantized to float32 for training, where the frozen products give only their
//! inputs' gradients ([`crate::nn::frozen_linear`]); for sampling, where reading the weights is
//! the cost of every token, each adapter is folded into its product, quantized to 8 bits.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::base::{Base, LlamaShape};
use super::gpt::{append_kv, KvCache};
use crate::nn::llama_kernels::{rms_norm, rope_interleaved, swiglu};
use crate::nn::{frozen_linear, fused, loss};

enum Frozen {
    Dense(Tensor),
    Quantized(QMatMul),
}

impl Frozen {
    fn load(base: &Base, name: &str, dev: &Device) -> anyhow::Result<Self> {
        Ok(Frozen::Dense(base.tensor(name, dev)?.dequantize(dev)?))
    }

    /// The weight as 8-bit blocks, for sampling: candle's CPU products have vector kernels
    /// for those but not for the 4-bit blocks with offsets (Q4_1) SmolLM2 ships in, and 8
    /// bits hold those values closely.
    fn quantize(w: &Tensor) -> Result<Self> {
        Ok(Frozen::Quantized(QMatMul::from_qtensor(
            QTensor::quantize(w, GgmlDType::Q8_0)?,
        )?))
    }

    /// `x W^T` for rows `x` `[n, in]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Frozen::Dense(w) => frozen_linear(x, w),
            Frozen::Quantized(q) => q.forward(x),
        }
    }
}

/// A frozen projection plus its adapter: `x W^T + scale (x A^T) B^T`; for sampling the two
/// are merged into one quantized weight.
struct Adapted {
    base: Frozen,
    a: Tensor,
    b: Tensor,
    scale: f64,
    merged: bool,
}

impl Adapted {
    #[allow(clippy::too_many_arguments)]
    fn new(
        base: &Base,
        name: &str,
        (inputs, outputs): (usize, usize),
        rank: usize,
        vb: VarBuilder,
    ) -> anyhow::Result<Self> {
        // The usual LoRA start: A small and random, B zero, so training begins at the base.
        let a = vb.get_with_hints(
            (rank, inputs),
            "lora_a",
            Init::Randn {
                mean: 0.0,
                stdev: (1.0 / (3.0 * inputs as f64)).sqrt(),
            },
        )?;
        let b = vb.get_with_hints((outputs, rank), "lora_b", Init::Const(0.0))?;
        Ok(Adapted {
            base: Frozen::load(base, name, vb.device())?,
            a,
            b,
            // alpha = 2 * rank, as is common.
            scale: 2.0,
            merged: false,
        })
    }

    /// `W + scale B A` quantized to 8-bit blocks: sampling then reads one weight per product.
    fn merge(&mut self) -> Result<()> {
        if let Frozen::Dense(w) = &self.base {
            self.base = Frozen::quantize(&(w + (self.b.matmul(&self.a)? * self.scale)?)?)?;
            self.merged = true;
        }
        Ok(())
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.base.forward(x)?;
        if self.merged {
            return Ok(y);
        }
        let low = x.matmul(&self.a.t()?)?.matmul(&self.b.t()?)?;
        y + (low * self.scale)?
    }
}

struct Layer {
    attn_norm: Tensor,
    q: Adapted,
    k: Adapted,
    v: Adapted,
    o: Adapted,
    ffn_norm: Tensor,
    gate: Adapted,
    up: Adapted,
    down: Adapted,
}

/// The model: the frozen base and its adapters.
pub struct Llama {
    shape: LlamaShape,
    embed: Tensor,
    /// Embeddings (and output rows) of the tokens after the base's vocabulary: each starts
    /// as a base token's row (`extra_start`) and learns a change (`extra`).
    extra_start: Tensor,
    extra: Tensor,
    head: Frozen,
    layers: Vec<Layer>,
    norm: Tensor,
    cos: Tensor,
    sin: Tensor,
    /// Longest context kept while sampling.
    context: usize,
}

/// Positions the rotary tables cover.
const MAX_POSITIONS: usize = 4096;

impl Llama {
    /// The base with adapters of `rank` and new tokens that start as the base's tokens
    /// `extra_from`, variables in `vb`.
    pub fn new(
        base: &Base,
        rank: usize,
        extra_from: &[u32],
        context: usize,
        vb: VarBuilder,
    ) -> anyhow::Result<Self> {
        let s = base.shape.clone();
        let dev = vb.device().clone();
        let f32_tensor = |name: &str| -> anyhow::Result<Tensor> {
            Ok(base.tensor(name, &dev)?.dequantize(&dev)?)
        };
        let embed = f32_tensor("token_embd.weight")?;
        anyhow::ensure!(
            embed.dims() == [s.vocab, s.width],
            "{}: token_embd.weight is {:?}, expected [{}, {}]",
            base.file.display(),
            embed.dims(),
            s.vocab,
            s.width
        );
        let extra_start = embed.index_select(&Tensor::new(extra_from, &dev)?, 0)?;
        let extra = vb.get_with_hints(
            (extra_from.len(), s.width),
            "extra_tokens",
            Init::Const(0.0),
        )?;
        let head = match base.tensor("output.weight", &dev) {
            Ok(_) => Frozen::load(base, "output.weight", &dev)?,
            // Tied to the embedding, as in SmolLM2.
            Err(_) => Frozen::Dense(embed.clone()),
        };
        let (kv_width, hd) = (s.kv_heads * s.head_dim(), s.head_dim());
        let mut layers = Vec::with_capacity(s.layers);
        for i in 0..s.layers {
            let vb = vb.pp(format!("layers.{i}"));
            let p = |n: &str| format!("blk.{i}.{n}.weight");
            let adapted = |n: &str, io: (usize, usize), name: &str| {
                Adapted::new(base, &p(n), io, rank, vb.pp(name))
            };
            layers.push(Layer {
                attn_norm: f32_tensor(&p("attn_norm"))?,
                q: adapted("attn_q", (s.width, s.width), "q")?,
                k: adapted("attn_k", (s.width, kv_width), "k")?,
                v: adapted("attn_v", (s.width, kv_width), "v")?,
                o: adapted("attn_output", (s.width, s.width), "o")?,
                ffn_norm: f32_tensor(&p("ffn_norm"))?,
                gate: adapted("ffn_gate", (s.width, s.ffn), "gate")?,
                up: adapted("ffn_up", (s.width, s.ffn), "up")?,
                down: adapted("ffn_down", (s.ffn, s.width), "down")?,
            });
        }
        let theta: Vec<f32> = (0..hd / 2)
            .map(|i| 1.0 / s.rope_theta.powf(2.0 * i as f32 / hd as f32))
            .collect();
        let positions = Tensor::arange(0u32, MAX_POSITIONS as u32, &dev)?
            .to_dtype(DType::F32)?
            .reshape((MAX_POSITIONS, 1))?;
        let angles = positions.matmul(&Tensor::new(theta.as_slice(), &dev)?.reshape((1, ()))?)?;
        Ok(Llama {
            norm: f32_tensor("output_norm.weight")?,
            cos: angles.cos()?,
            sin: angles.sin()?,
            embed,
            extra_start,
            extra,
            head,
            layers,
            context: context.min(MAX_POSITIONS),
            shape: s,
        })
    }

    pub fn context(&self) -> usize {
        self.context
    }

    /// Folds the adapters (as trained or loaded) into 8-bit copies of the base's products, for
    /// sampling; the model no longer learns after this.
    pub fn merge_adapters(&mut self) -> Result<()> {
        for l in &mut self.layers {
            for p in [
                &mut l.q,
                &mut l.k,
                &mut l.v,
                &mut l.o,
                &mut l.gate,
                &mut l.up,
                &mut l.down,
            ] {
                p.merge()?;
            }
        }
        if let Frozen::Dense(w) = &self.head {
            self.head = Frozen::quantize(w)?;
        }
        Ok(())
    }

    fn extra_rows(&self) -> Result<Tensor> {
        &self.extra_start + &self.extra
    }

    /// Embeddings of `ids`: the base's table for its own tokens, `extra` for benjamin's.
    fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let ids = ids.flatten_all()?.to_vec1::<u32>()?;
        let v = self.shape.vocab as u32;
        let dev = self.embed.device();
        let base_ids: Vec<u32> = ids.iter().map(|&i| if i < v { i } else { 0 }).collect();
        let x = self
            .embed
            .embedding(&Tensor::new(base_ids.as_slice(), dev)?)?;
        if ids.iter().all(|&i| i < v) {
            return Ok(x);
        }
        let extra_ids: Vec<u32> = ids.iter().map(|&i| i.saturating_sub(v)).collect();
        let is_extra: Vec<f32> = ids.iter().map(|&i| f32::from(u8::from(i >= v))).collect();
        let mask = Tensor::from_vec(is_extra, (ids.len(), 1), dev)?;
        let y = self
            .extra_rows()?
            .embedding(&Tensor::new(extra_ids.as_slice(), dev)?)?;
        x.broadcast_mul(&(1.0 - &mask)?)? + y.broadcast_mul(&mask)?
    }

    /// Logits `[rows, vocab + extra]` for rows of final hidden states.
    fn head(&self, h: &Tensor) -> Result<Tensor> {
        let h = rms_norm(h, &self.norm, self.shape.rms_eps)?;
        let base = self.head.forward(&h)?;
        let extra = h.matmul(&self.extra_rows()?.t()?)?;
        Tensor::cat(&[&base, &extra], 1)
    }

    /// Final hidden states `[b * t, width]` for every position of `ids` `[b, t]`.
    fn hidden(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let mut x = self.embed(ids)?;
        for layer in &self.layers {
            x = self.layer(layer, &x, (b, t), 0, None)?;
        }
        Ok(x)
    }

    /// Logits `[b * t, vocab]` for every position of `ids` `[b, t]`.
    pub fn logits(&self, ids: &Tensor) -> Result<Tensor> {
        self.head(&self.hidden(ids)?)
    }

    /// Mean cross-entropy of every position of `ids` `[b, t]` predicting `targets` (training
    /// and evaluation): the output layer and the loss in one op, which never holds the whole
    /// `[b * t, vocab]` logits.
    pub fn loss(&self, ids: &Tensor, targets: &[u32]) -> Result<Tensor> {
        let x = self.hidden(ids)?;
        match &self.head {
            Frozen::Dense(w) => {
                let h = rms_norm(&x, &self.norm, self.shape.rms_eps)?;
                crate::nn::head_cross_entropy(&h, w, &self.extra_rows()?, targets)
            }
            Frozen::Quantized(_) => {
                loss::cross_entropy(&self.head(&x)?, &Tensor::new(targets, x.device())?)
            }
        }
    }

    /// Logits `[b, 1, vocab]` of the last position, reading and extending `cache` (sampling).
    pub fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let past = cache.len;
        if past + t > MAX_POSITIONS {
            candle_core::bail!("{} tokens pass the {MAX_POSITIONS} positions", past + t);
        }
        if cache.layers.len() != self.layers.len() {
            cache.layers = vec![None; self.layers.len()];
        }
        let mut x = self.embed(ids)?;
        for (layer, kv) in self.layers.iter().zip(cache.layers.iter_mut()) {
            x = self.layer(layer, &x, (b, t), past, Some(kv))?;
        }
        cache.len = past + t;
        let last = x.reshape((b, t, ()))?.narrow(1, t - 1, 1)?.squeeze(1)?;
        self.head(&last)?.unsqueeze(1)
    }

    /// One block on rows `x` `[b * t, width]` at positions `past..past + t`.
    fn layer(
        &self,
        l: &Layer,
        x: &Tensor,
        (b, t): (usize, usize),
        past: usize,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let s = &self.shape;
        let (hd, eps) = (s.head_dim(), s.rms_eps);
        let h = rms_norm(x, &l.attn_norm, eps)?;
        let heads = |y: Tensor, n: usize| -> Result<Tensor> {
            y.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous()
        };
        let cos = self.cos.narrow(0, past, t)?;
        let sin = self.sin.narrow(0, past, t)?;
        let q = rope_interleaved(&heads(l.q.forward(&h)?, s.heads)?, &cos, &sin)?;
        let mut k = rope_interleaved(&heads(l.k.forward(&h)?, s.kv_heads)?, &cos, &sin)?;
        let mut v = heads(l.v.forward(&h)?, s.kv_heads)?;
        if let Some(slot) = cache {
            (k, v) = append_kv(slot, &k, &v, past)?;
        }
        let (groups, scale) = (s.heads / s.kv_heads, 1.0 / (hd as f64).sqrt());
        let y = if t == 1 {
            // One new token sees every key: the query heads sharing a key-value head go
            // through it as rows of one product, with no copies of the cache.
            let q = q.reshape((b, s.kv_heads, groups, hd))?;
            let p = candle_nn::ops::softmax_last_dim(&(q.matmul(&k.t()?)? * scale)?)?;
            p.matmul(&v)?.reshape((b, s.heads, 1, hd))?
        } else {
            let k = candle_transformers::utils::repeat_kv(k.contiguous()?, groups)?;
            let v = candle_transformers::utils::repeat_kv(v.contiguous()?, groups)?;
            let p = fused::causal_softmax(&q.matmul(&k.t()?)?, scale)?;
            p.matmul(&v)?
        };
        let y = y.transpose(1, 2)?.reshape((b * t, s.width))?;
        let x = (x + l.o.forward(&y)?)?;
        let h = rms_norm(&x, &l.ffn_norm, eps)?;
        let mlp = swiglu(&l.gate.forward(&h)?, &l.up.forward(&h)?)?;
        x + l.down.forward(&mlp)?
    }
}
