//! A small GPT: token and learned position embeddings, pre-norm blocks of causal
//! self-attention and an MLP, and an output head tied to the token embedding.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::nn::{attention, fused, layer_norm, linear, LayerNorm, Linear};

use super::ModelConfig;

struct Block {
    ln1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    ln2: LayerNorm,
    fc: Linear,
    out: Linear,
    heads: usize,
}

impl Block {
    fn new(c: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let n = c.width;
        Ok(Block {
            ln1: layer_norm(n, vb.pp("ln1"))?,
            qkv: linear(n, 3 * n, vb.pp("qkv"))?,
            proj: linear(n, n, vb.pp("proj"))?,
            ln2: layer_norm(n, vb.pp("ln2"))?,
            fc: linear(n, 4 * n, vb.pp("fc"))?,
            out: linear(4 * n, n, vb.pp("out"))?,
            heads: c.heads,
        })
    }

    /// `x` is `[batch * time, width]`, rows batch-major. `cache` holds the keys and values of
    /// earlier positions (sampling); `None` in training.
    fn forward(
        &self,
        x: &Tensor,
        (b, t): (usize, usize),
        cache: Option<(&mut Option<(Tensor, Tensor)>, usize)>,
    ) -> Result<Tensor> {
        let qkv = self.qkv.forward(&self.ln1.forward(x)?)?;
        let y = match cache {
            None if attention::fused_attention_available(&qkv) => {
                attention::causal_attention(&qkv, self.heads, t)?
            }
            cache => self
                .attend(&qkv.reshape((b, t, ()))?, cache)?
                .reshape((b * t, ()))?,
        };
        let x = (x + self.proj.forward(&y)?)?;
        let h = fused::gelu(&self.fc.forward(&self.ln2.forward(&x)?)?)?;
        x + self.out.forward(&h)?
    }

    /// Attention composed from candle's ops: for sampling with a cache, and off the CPU.
    fn attend(
        &self,
        qkv: &Tensor,
        cache: Option<(&mut Option<(Tensor, Tensor)>, usize)>,
    ) -> Result<Tensor> {
        let (b, t, c3) = qkv.dims3()?;
        let c = c3 / 3;
        let d = c / self.heads;
        let split = |i: usize| -> Result<Tensor> {
            qkv.narrow(2, i * c, c)?
                .reshape((b, t, self.heads, d))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, mut k, mut v) = (split(0)?, split(1)?, split(2)?);
        if let Some((slot, past)) = cache {
            (k, v) = append_kv(slot, &k, &v, past)?;
        }
        let att = fused::causal_softmax(&q.matmul(&k.t()?)?, 1.0 / (d as f64).sqrt())?;
        att.matmul(&v)?.transpose(1, 2)?.reshape((b, t, c))
    }
}

pub struct Gpt {
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    context: usize,
}

impl Gpt {
    pub fn new(c: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let init = Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let wte = vb.get_with_hints((c.vocab, c.width), "wte", init)?;
        let wpe = vb.get_with_hints((c.context, c.width), "wpe", init)?;
        let blocks = (0..c.layers)
            .map(|i| Block::new(c, vb.pp(format!("h{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Gpt {
            wte,
            wpe,
            blocks,
            ln_f: layer_norm(c.width, vb.pp("ln_f"))?,
            context: c.context,
        })
    }

    /// Logits `[batch, time, vocab]` for token ids `[batch, time]` (time <= context).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        self.logits(ids, None)?.reshape((b, t, ()))
    }

    /// Logits `[batch * time, vocab]`, rows batch-major: what the loss takes, with no reshape
    /// (each is a node the backward pass would zero and add a buffer for).
    pub fn logits(&self, ids: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let past = cache.as_ref().map_or(0, |c| c.len);
        if past + t > self.context {
            candle_core::bail!(
                "{} tokens pass the model's context of {}",
                past + t,
                self.context
            );
        }
        let tok = self.wte.embedding(&ids.flatten_all()?)?;
        // Positions added as a bias over the batch (one fused op, cheap to differentiate).
        let positions = self.wpe.narrow(0, past, t)?.flatten_all()?;
        let mut x = fused::add_bias(&tok.reshape((b, ()))?, &positions)?.reshape((b * t, ()))?;
        match cache {
            None => {
                for block in &self.blocks {
                    x = block.forward(&x, (b, t), None)?;
                }
            }
            Some(cache) => {
                if cache.layers.len() != self.blocks.len() {
                    cache.layers = vec![None; self.blocks.len()];
                }
                for (block, layer) in self.blocks.iter().zip(cache.layers.iter_mut()) {
                    x = block.forward(&x, (b, t), Some((layer, past)))?;
                }
                cache.len += t;
            }
        }
        // The output head is tied to the token embedding.
        self.ln_f.forward(&x)?.matmul(&self.wte.t()?)
    }

    /// Logits `[batch, new, vocab]` for `ids` continuing from `cache`, which it extends.
    /// Positions past the context are the caller's to avoid (start a new cache).
    pub fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        self.logits(ids, Some(cache))?.reshape((b, t, ()))
    }

    pub fn context(&self) -> usize {
        self.context
    }
}

/// Keys and values of the positions seen so far, per layer (sampling without recomputation).
/// Each layer's buffers `[batch, heads, room, head width]` have room to grow, so a new token
/// copies only itself; the first `len` positions are valid (a rewind just lowers `len`).
#[derive(Default)]
pub struct KvCache {
    pub(super) layers: Vec<Option<(Tensor, Tensor)>>,
    pub len: usize,
}

/// Writes `k` and `v` `[b, heads, t, d]` at position `past` of a layer's buffers (growing them
/// when full) and gives the keys and values of positions `0..past + t`.
pub(super) fn append_kv(
    slot: &mut Option<(Tensor, Tensor)>,
    k: &Tensor,
    v: &Tensor,
    past: usize,
) -> Result<(Tensor, Tensor)> {
    let (b, h, t, d) = k.dims4()?;
    let needed = past + t;
    let room = match slot {
        Some((kb, _)) => kb.dim(2)?,
        None => 0,
    };
    if room < needed {
        let room = (needed * 2).max(256);
        let kb = Tensor::zeros((b, h, room, d), k.dtype(), k.device())?;
        let vb = Tensor::zeros((b, h, room, v.dim(3)?), v.dtype(), v.device())?;
        if let Some((old_k, old_v)) = slot.as_ref().filter(|_| past > 0) {
            kb.slice_set(&old_k.narrow(2, 0, past)?.contiguous()?, 2, 0)?;
            vb.slice_set(&old_v.narrow(2, 0, past)?.contiguous()?, 2, 0)?;
        }
        *slot = Some((kb, vb));
    }
    let (kb, vb) = slot.as_ref().expect("allocated above");
    kb.slice_set(&k.contiguous()?, 2, past)?;
    vb.slice_set(&v.contiguous()?, 2, past)?;
    Ok((kb.narrow(2, 0, needed)?, vb.narrow(2, 0, needed)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    /// A two-layer GPT small enough to check by hand; the VarMap keeps its weights alive.
    fn tiny() -> Result<(VarMap, Gpt)> {
        let c = ModelConfig {
            arch: super::super::Arch::Gpt,
            vocab: 20,
            context: 8,
            layers: 2,
            heads: 2,
            width: 16,
            hidden: 0,
            adapters: None,
        };
        let varmap = VarMap::new();
        let gpt = Gpt::new(
            &c,
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        )?;
        Ok((varmap, gpt))
    }

    #[test]
    fn attention_is_causal() -> Result<()> {
        let (_vars, gpt) = tiny()?;
        let a = Tensor::new(&[[1u32, 2, 3, 4, 5, 6]], &Device::Cpu)?;
        let b = Tensor::new(&[[1u32, 2, 3, 9, 9, 9]], &Device::Cpu)?;
        let la = gpt
            .forward(&a)?
            .narrow(1, 0, 3)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let lb = gpt
            .forward(&b)?
            .narrow(1, 0, 3)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert_eq!(la, lb, "earlier positions must not see later tokens");
        let full_a = gpt
            .forward(&a)?
            .narrow(1, 3, 1)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let full_b = gpt
            .forward(&b)?
            .narrow(1, 3, 1)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert_ne!(full_a, full_b);
        Ok(())
    }

    #[test]
    fn cached_steps_match_a_full_forward() -> Result<()> {
        let (_vars, gpt) = tiny()?;
        let ids = [3u32, 1, 4, 1, 5, 9];
        let full = gpt.forward(&Tensor::new(&[ids], &Device::Cpu)?)?;
        let mut cache = KvCache::default();
        let first = gpt.forward_cached(&Tensor::new(&[[3u32, 1, 4]], &Device::Cpu)?, &mut cache)?;
        let mut steps = vec![first];
        for id in &ids[3..] {
            steps.push(gpt.forward_cached(&Tensor::new(&[[*id]], &Device::Cpu)?, &mut cache)?);
        }
        let cached = Tensor::cat(&steps, 1)?;
        let diff = (full - cached)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "cached and full logits differ by {diff}");
        Ok(())
    }
}
