//! A multi-layer LSTM language model (Benjamin's own kind). Input projections for a whole
//! sequence are computed at once; only the recurrence runs step by step.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{embedding, linear_no_bias, Embedding, VarBuilder};

use crate::nn::{linear, Linear};

use super::ModelConfig;

struct Layer {
    input: Linear,
    hidden: candle_nn::Linear,
    size: usize,
}

/// Hidden and cell state of every layer, `[batch, hidden]` each.
#[derive(Clone)]
pub struct LstmState(pub Vec<(Tensor, Tensor)>);

impl Layer {
    fn cell(&self, gates_in: &Tensor, h: &Tensor, c: &Tensor) -> Result<(Tensor, Tensor)> {
        let gates = (gates_in + self.hidden.forward(h)?)?;
        let chunk = |i: usize| gates.narrow(D::Minus1, i * self.size, self.size);
        let i = candle_nn::ops::sigmoid(&chunk(0)?)?;
        let f = candle_nn::ops::sigmoid(&chunk(1)?)?;
        let g = chunk(2)?.tanh()?;
        let o = candle_nn::ops::sigmoid(&chunk(3)?)?;
        let c = ((f * c)? + (i * g)?)?;
        let h = (o * c.tanh()?)?;
        Ok((h, c))
    }
}

pub struct Lstm {
    embed: Embedding,
    layers: Vec<Layer>,
    head: Linear,
    hidden: usize,
}

impl Lstm {
    pub fn new(c: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let layers = (0..c.layers)
            .map(|i| {
                let input = if i == 0 { c.width } else { c.hidden };
                Ok(Layer {
                    input: linear(input, 4 * c.hidden, vb.pp(format!("l{i}.ih")))?,
                    hidden: linear_no_bias(c.hidden, 4 * c.hidden, vb.pp(format!("l{i}.hh")))?,
                    size: c.hidden,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Lstm {
            embed: embedding(c.vocab, c.width, vb.pp("embed"))?,
            layers,
            head: linear(c.hidden, c.vocab, vb.pp("head"))?,
            hidden: c.hidden,
        })
    }

    pub fn zero_state(&self, batch: usize, device: &candle_core::Device) -> Result<LstmState> {
        let z = Tensor::zeros((batch, self.hidden), candle_core::DType::F32, device)?;
        Ok(LstmState(
            self.layers.iter().map(|_| (z.clone(), z.clone())).collect(),
        ))
    }

    /// Logits `[batch, time, vocab]` for ids `[batch, time]`, from `state` (updated in place).
    pub fn forward_from(&self, ids: &Tensor, state: &mut LstmState) -> Result<Tensor> {
        let (_, t) = ids.dims2()?;
        let mut x = self.embed.forward(ids)?;
        for (layer, (h, c)) in self.layers.iter().zip(state.0.iter_mut()) {
            let gates_in = layer.input.forward(&x)?;
            let mut outs = Vec::with_capacity(t);
            for step in 0..t {
                let (nh, nc) = layer.cell(&gates_in.narrow(1, step, 1)?.squeeze(1)?, h, c)?;
                *h = nh;
                *c = nc;
                outs.push(h.clone());
            }
            x = Tensor::stack(&outs, 1)?;
        }
        self.head.forward(&x)
    }

    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let mut state = self.zero_state(ids.dim(0)?, ids.device())?;
        self.forward_from(ids, &mut state)
    }
}
