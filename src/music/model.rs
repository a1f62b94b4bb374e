//! The melody model: a small LSTM in candle over note tokens (a duration token, then a pitch
//! or rest token, per note), and the default weights embedded in the binary.
//!
//! Pitches are absolute (MIDI 48 to 84): the training tunes are transposed into every key
//! that fits, so the model learns shapes, not one key. Every sequence opens with two tokens:
//! major or minor, then the key's tonic, so the model knows the key it is playing in.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{embedding, linear, linear_no_bias, Embedding, Linear, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use super::theory::Pitch;

/// First token of a major-leaning and of a minor-leaning melody.
pub const BOS_MAJOR: u32 = 0;
pub const BOS_MINOR: u32 = 1;
/// Note lengths the model knows, in sixteenths.
pub const DURATIONS: [u8; 8] = [1, 2, 3, 4, 6, 8, 12, 16];
const FIRST_DURATION: u32 = 2;
pub const REST: u32 = FIRST_DURATION + DURATIONS.len() as u32;
const FIRST_PITCH: u32 = REST + 1;
/// Lowest and highest pitch the model knows.
pub const LOWEST: Pitch = 48;
pub const HIGHEST: Pitch = 84;
const FIRST_KEY: u32 = FIRST_PITCH + (HIGHEST - LOWEST) as u32 + 1;
pub const VOCAB: usize = FIRST_KEY as usize + 12;

/// The token naming a key by its tonic's pitch class.
pub fn key_token(tonic: u8) -> u32 {
    FIRST_KEY + (tonic % 12) as u32
}

pub fn duration_token(sixteenths: u8) -> Option<u32> {
    DURATIONS
        .iter()
        .position(|d| *d == sixteenths)
        .map(|i| FIRST_DURATION + i as u32)
}

pub fn token_duration(token: u32) -> Option<u8> {
    (FIRST_DURATION..REST)
        .contains(&token)
        .then(|| DURATIONS[(token - FIRST_DURATION) as usize])
}

pub fn pitch_token(p: Pitch) -> Option<u32> {
    (LOWEST..=HIGHEST)
        .contains(&p)
        .then(|| FIRST_PITCH + (p - LOWEST) as u32)
}

pub fn token_pitch(token: u32) -> Option<Pitch> {
    (FIRST_PITCH..FIRST_KEY)
        .contains(&token)
        .then(|| LOWEST + (token - FIRST_PITCH) as u8)
}

/// Shape of the model (config.json beside the weights).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MelodyConfig {
    pub vocab: usize,
    pub width: usize,
    pub hidden: usize,
}

impl Default for MelodyConfig {
    fn default() -> Self {
        MelodyConfig {
            vocab: VOCAB,
            width: 32,
            hidden: 128,
        }
    }
}

/// One LSTM layer between an embedding and an output head.
pub struct MelodyModel {
    pub config: MelodyConfig,
    embed: Embedding,
    input: Linear,
    recurrent: Linear,
    head: Linear,
}

/// Hidden and cell state, `[batch, hidden]` each.
#[derive(Clone)]
pub struct State {
    h: Tensor,
    c: Tensor,
}

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "melody.safetensors";

/// The default model, trained by `benjamin train music` (see models/music/README.md).
pub mod builtin {
    pub const CONFIG: &str = include_str!("../../models/music/config.json");
    pub const WEIGHTS: &[u8] = include_bytes!("../../models/music/melody.safetensors");
}

impl MelodyModel {
    pub fn new(config: MelodyConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(MelodyModel {
            config,
            embed: embedding(config.vocab, config.width, vb.pp("embed"))?,
            input: linear(config.width, 4 * config.hidden, vb.pp("ih"))?,
            recurrent: linear_no_bias(config.hidden, 4 * config.hidden, vb.pp("hh"))?,
            head: linear(config.hidden, config.vocab, vb.pp("head"))?,
        })
    }

    /// The built-in model, or one from a folder made by `benjamin train music`.
    pub fn load(dir: Option<&Path>) -> Result<(MelodyModel, VarMap)> {
        let (config_text, weights, origin) = match dir {
            None => (
                builtin::CONFIG.to_string(),
                builtin::WEIGHTS.to_vec(),
                "the built-in melody model".to_string(),
            ),
            Some(dir) => {
                let c = dir.join(CONFIG_FILE);
                let w = dir.join(WEIGHTS_FILE);
                (
                    std::fs::read_to_string(&c)
                        .with_context(|| format!("cannot read {}", c.display()))?,
                    std::fs::read(&w).with_context(|| format!("cannot read {}", w.display()))?,
                    w.display().to_string(),
                )
            }
        };
        let config: MelodyConfig = serde_json::from_str(&config_text)
            .with_context(|| format!("the config of {origin} is not valid"))?;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = MelodyModel::new(config, vb)?;
        crate::nn::load_weights(&varmap, &weights, &origin)?;
        Ok((model, varmap))
    }

    pub fn zero_state(&self, batch: usize, device: &Device) -> candle_core::Result<State> {
        let z = Tensor::zeros((batch, self.config.hidden), DType::F32, device)?;
        Ok(State { h: z.clone(), c: z })
    }

    fn cell(&self, gates_in: &Tensor, s: &State) -> candle_core::Result<State> {
        let n = self.config.hidden;
        let gates = (gates_in + self.recurrent.forward(&s.h)?)?;
        let chunk = |i: usize| gates.narrow(D::Minus1, i * n, n);
        let i = candle_nn::ops::sigmoid(&chunk(0)?)?;
        let f = candle_nn::ops::sigmoid(&chunk(1)?)?;
        let g = chunk(2)?.tanh()?;
        let o = candle_nn::ops::sigmoid(&chunk(3)?)?;
        let c = ((f * &s.c)? + (i * g)?)?;
        let h = (o * c.tanh()?)?;
        Ok(State { h, c })
    }

    /// Logits `[batch, time, vocab]` for ids `[batch, time]`, from a zero state.
    pub fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let gates_in = self.input.forward(&self.embed.forward(ids)?)?;
        let mut state = self.zero_state(b, ids.device())?;
        let mut outs = Vec::with_capacity(t);
        for step in 0..t {
            state = self.cell(&gates_in.narrow(1, step, 1)?.squeeze(1)?, &state)?;
            outs.push(state.h.clone());
        }
        self.head.forward(&Tensor::stack(&outs, 1)?)
    }

    /// Mean cross-entropy of predicting each next token of `ids` `[batch, time]`.
    pub fn loss(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let t = ids.dim(1)?;
        let logits = self.forward(&ids.narrow(1, 0, t - 1)?)?;
        let targets = ids.narrow(1, 1, t - 1)?;
        crate::nn::loss::cross_entropy(&logits.flatten_to(1)?, &targets.flatten_all()?)
    }

    /// Feeds one token; returns the log-probabilities of the next one.
    pub fn step(&self, token: u32, state: &mut State) -> candle_core::Result<Vec<f32>> {
        let id = Tensor::new(&[token], &Device::Cpu)?;
        let gates_in = self.input.forward(&self.embed.forward(&id)?)?;
        *state = self.cell(&gates_in, state)?;
        let logits = self.head.forward(&state.h)?;
        candle_nn::ops::log_softmax(&logits, D::Minus1)?
            .squeeze(0)?
            .to_vec1::<f32>()
    }

    pub fn parameter_count(varmap: &VarMap) -> usize {
        varmap
            .all_vars()
            .iter()
            .map(|v| v.as_tensor().elem_count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for d in DURATIONS {
            assert_eq!(token_duration(duration_token(d).unwrap()), Some(d));
        }
        for p in LOWEST..=HIGHEST {
            assert_eq!(token_pitch(pitch_token(p).unwrap()), Some(p));
        }
        assert_eq!(pitch_token(LOWEST - 1), None);
        assert_eq!(token_pitch(REST), None);
        assert_eq!(token_duration(REST), None);
        assert_eq!(token_pitch(key_token(0)), None);
        assert_eq!(key_token(11) as usize, VOCAB - 1);
    }

    #[test]
    fn the_built_in_model_loads_and_predicts() {
        let (model, varmap) = MelodyModel::load(None).unwrap();
        assert!(MelodyModel::parameter_count(&varmap) > 10_000);
        let mut state = model.zero_state(1, &Device::Cpu).unwrap();
        model.step(BOS_MINOR, &mut state).unwrap();
        let logp = model.step(key_token(9), &mut state).unwrap();
        assert_eq!(logp.len(), VOCAB);
        let total: f32 = logp.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-3);
    }
}
