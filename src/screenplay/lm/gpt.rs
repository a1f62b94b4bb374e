//! A small GPT: token and learned position embeddings, pre-norm blocks of causal
//! self-attention and an MLP, and an output head tied to the token embedding.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{linear, Init, Linear, VarBuilder};

use crate::nn::{layer_norm, LayerNorm};

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

    fn forward(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let d = c / self.heads;
        let qkv = self.qkv.forward(&self.ln1.forward(x)?)?;
        let split = |i: usize| -> Result<Tensor> {
            qkv.narrow(2, i * c, c)?
                .reshape((b, t, self.heads, d))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let att = (q.matmul(&k.t()?)? * (1.0 / (d as f64).sqrt()))?.broadcast_add(mask)?;
        let att = crate::nn::softmax_last_dim(&att)?;
        let y = att.matmul(&v)?.transpose(1, 2)?.reshape((b, t, c))?;
        let x = (x + self.proj.forward(&y)?)?;
        let h = self.fc.forward(&self.ln2.forward(&x)?)?.gelu()?;
        x + self.out.forward(&h)?
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
        if t > self.context {
            candle_core::bail!(
                "sequence of {t} tokens is longer than the model's context of {}",
                self.context
            );
        }
        let tok = self
            .wte
            .embedding(&ids.flatten_all()?)?
            .reshape((b, t, ()))?;
        let x = tok.broadcast_add(&self.wpe.narrow(0, 0, t)?)?;
        let mask = causal_mask(t, ids.device())?;
        let mut x = x;
        for block in &self.blocks {
            x = block.forward(&x, &mask)?;
        }
        let x = self.ln_f.forward(&x)?;
        x.broadcast_matmul(&self.wte.t()?)
    }

    pub fn context(&self) -> usize {
        self.context
    }
}

fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (t, t), device)?.to_dtype(DType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    #[test]
    fn attention_is_causal() -> Result<()> {
        let c = ModelConfig {
            arch: super::super::Arch::Gpt,
            vocab: 20,
            context: 8,
            layers: 2,
            heads: 2,
            width: 16,
            hidden: 0,
        };
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let gpt = Gpt::new(&c, vb)?;
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
}
