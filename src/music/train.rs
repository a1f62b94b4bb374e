//! Training the melody model: the tunes of [`super::corpus`] in every key plus rule melodies,
//! windows of tokens, AdamW with warm-up and cosine decay; the best model by validation loss
//! is what ends up in the output folder.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::corpus::{parse_tunes, rule_melody, transpositions, TUNES};
use super::model::{MelodyConfig, MelodyModel, CONFIG_FILE, WEIGHTS_FILE};
use crate::film::Genre;
use crate::fsutil;
use crate::nn::{cosine_lr, save_tensors, var_tensors, AdamW};
use crate::progress::{check_interrupted, Progress};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    pub config: MelodyConfig,
    pub steps: usize,
    pub batch: usize,
    /// Tokens a window (two a note, so half as many notes).
    pub window: usize,
    pub max_lr: f64,
    pub min_lr: f64,
    pub warmup: usize,
    pub eval_every: usize,
    /// Rule melodies per genre added to the tunes.
    pub rule_melodies: usize,
    pub seed: u64,
    /// Stop early when this runs out.
    pub budget_s: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            config: MelodyConfig::default(),
            steps: 1000,
            batch: 32,
            window: 64,
            max_lr: 3e-3,
            min_lr: 3e-4,
            warmup: 50,
            eval_every: 100,
            rule_melodies: 300,
            seed: 1,
            budget_s: 3600.0,
        }
    }
}

/// What training did (training.json beside the weights).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    pub options: TrainOptions,
    pub parameters: usize,
    pub tunes: usize,
    pub train_sequences: usize,
    pub val_sequences: usize,
    pub train_tokens: usize,
    pub steps: usize,
    pub seconds: f64,
    pub first_train_loss: f32,
    pub final_train_loss: f32,
    pub best_val_loss: f32,
    /// Validation loss at each check: (step, loss).
    pub val_curve: Vec<(usize, f32)>,
}

/// Token sequences to learn from.
pub struct Dataset {
    pub train: Vec<Vec<u32>>,
    pub val: Vec<Vec<u32>>,
    /// Public-domain tunes among them (each in every key that fits).
    pub tunes: usize,
}

/// The training and validation sequences: every tenth tune (with all its keys) and every
/// tenth rule melody is held out.
pub fn dataset(rule_melodies: usize, seed: u64) -> Result<Dataset> {
    let tunes = parse_tunes(TUNES)?;
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (i, t) in tunes.iter().enumerate() {
        let keys = transpositions(t);
        if i % 10 == 7 {
            val.extend(keys);
        } else {
            train.extend(keys);
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in 0..rule_melodies {
        for g in Genre::ALL {
            let tune = rule_melody(g, &mut rng);
            let shift = rng.random_range(-5..=5);
            if let Some(seq) = super::corpus::tokens(&tune, shift) {
                if i % 10 == 9 {
                    val.push(seq);
                } else {
                    train.push(seq);
                }
            }
        }
    }
    Ok(Dataset {
        train,
        val,
        tunes: tunes.len(),
    })
}

/// A batch of windows: a random sequence's two opening tokens (mode and key), then its notes
/// from a random note on (a short sequence starts over, as a tune is repeated).
fn batch(seqs: &[Vec<u32>], n: usize, window: usize, rng: &mut impl Rng) -> Result<Tensor> {
    let mut ids = Vec::with_capacity(n * window);
    for _ in 0..n {
        let s = &seqs[rng.random_range(0..seqs.len())];
        let (head, body) = s.split_at(2);
        let body_len = window - 2;
        let start = if body.len() > body_len {
            2 * rng.random_range(0..=(body.len() - body_len) / 2)
        } else {
            0
        };
        ids.extend_from_slice(head);
        ids.extend((0..body_len).map(|j| body[(start + j) % body.len()]));
    }
    Ok(Tensor::from_vec(ids, (n, window), &Device::Cpu)?)
}

fn mean_loss(model: &MelodyModel, seqs: &[Vec<u32>], window: usize) -> Result<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut total = 0.0;
    let rounds = 4;
    for _ in 0..rounds {
        let ids = batch(seqs, 64, window, &mut rng)?;
        total += model.loss(&ids)?.to_scalar::<f32>()?;
    }
    Ok(total / rounds as f32)
}

/// Trains a melody model into `out` (config.json, melody.safetensors, training.json).
pub fn train(opts: &TrainOptions, out: &Path, progress: &Progress) -> Result<TrainReport> {
    let Dataset {
        train: train_set,
        val: val_set,
        tunes,
    } = dataset(opts.rule_melodies, opts.seed)?;
    if train_set.is_empty() || val_set.is_empty() {
        bail!("no melodies to train on");
    }
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = MelodyModel::new(opts.config, vb)?;
    let mut opt = AdamW::new(&varmap, 0.01)?;
    let parameters = opt.parameter_count();
    progress.info(format!(
        "melody model: {parameters} parameters; {} training and {} validation sequences ({tunes} tunes in every key that fits, plus rule melodies)",
        train_set.len(),
        val_set.len()
    ));
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let started = Instant::now();
    let budget = Duration::from_secs_f64(opts.budget_s);
    let bar = progress.bar(opts.steps as u64, "training", "steps");
    let (mut first, mut last) = (f32::NAN, f32::NAN);
    let mut best = f32::INFINITY;
    let mut curve = Vec::new();
    let mut steps = 0;
    std::fs::create_dir_all(out)?;
    for step in 0..opts.steps {
        check_interrupted()?;
        if started.elapsed() > budget {
            break;
        }
        let ids = batch(&train_set, opts.batch, opts.window, &mut rng)?;
        let loss = model.loss(&ids)?;
        let lr = cosine_lr(step, opts.warmup, opts.steps, opts.max_lr, opts.min_lr);
        opt.backward_step(&loss, lr, 1.0)?;
        last = loss.to_scalar::<f32>()?;
        if step == 0 {
            first = last;
        }
        steps = step + 1;
        bar.inc(1);
        if steps % opts.eval_every == 0 || steps == opts.steps {
            let val = mean_loss(&model, &val_set, opts.window)?;
            curve.push((steps, val));
            bar.set_message(format!("val {val:.3}"));
            if val < best {
                best = val;
                save_tensors(&out.join(WEIGHTS_FILE), &var_tensors(&varmap))?;
            }
        }
    }
    bar.finish_and_clear();
    if !best.is_finite() {
        let val = mean_loss(&model, &val_set, opts.window)?;
        curve.push((steps, val));
        best = val;
        save_tensors(&out.join(WEIGHTS_FILE), &var_tensors(&varmap))?;
    }
    fsutil::write_atomic(
        &out.join(CONFIG_FILE),
        &serde_json::to_vec_pretty(&opts.config)?,
    )?;
    let report = TrainReport {
        options: opts.clone(),
        parameters,
        tunes,
        train_sequences: train_set.len(),
        val_sequences: val_set.len(),
        train_tokens: train_set.iter().map(Vec::len).sum(),
        steps,
        seconds: started.elapsed().as_secs_f64(),
        first_train_loss: first,
        final_train_loss: last,
        best_val_loss: best,
        val_curve: curve,
    };
    fsutil::write_atomic(
        &out.join("training.json"),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_model_learns_and_saves() {
        let dir = tempfile::tempdir().unwrap();
        let opts = TrainOptions {
            config: MelodyConfig {
                hidden: 16,
                width: 8,
                ..Default::default()
            },
            steps: 30,
            batch: 8,
            window: 24,
            eval_every: 15,
            rule_melodies: 10,
            max_lr: 1e-2,
            warmup: 5,
            ..Default::default()
        };
        let report = train(&opts, dir.path(), &Progress::hidden()).unwrap();
        assert_eq!(report.steps, 30);
        assert!(
            report.final_train_loss < report.first_train_loss,
            "{report:?}"
        );
        let (model, _) = MelodyModel::load(Some(dir.path())).unwrap();
        assert_eq!(model.config.hidden, 16);
    }
}
