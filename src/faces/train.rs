//! Training the swap model: each identity's decoder learns to rebuild its aligned faces from
//! randomly warped copies through the shared encoder (so the encoder learns what faces have in
//! common and each decoder learns one person), with an adversarial loss from a PatchGAN per
//! identity and a learned mask. Checkpoints carry the weights, both optimisers' moments and
//! the step, so a run that stops (budget, Ctrl-C) resumes where it stopped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::model::{Discriminators, ModelConfig, SwapModel};
use super::warp::{warp_batch, Warp};
use crate::nn::loss::least_squares;
use crate::nn::{load_weights, save_tensors, var_tensors, AdamW};
use crate::progress::Progress;
use crate::vision::image::Planar;

/// The aligned faces (R x R, RGB 0-255) of one identity.
#[derive(Debug, Clone)]
pub struct FaceSet {
    pub name: String,
    pub faces: Vec<Planar>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Faces per identity per step.
    pub batch: usize,
    pub lr: f64,
    /// Weight of the adversarial loss (LSGAN) in the generator's loss.
    pub adversarial: f64,
    /// Weight of the mask's L1 distance to the face region (the template's ellipse, warped
    /// as the target is): the mask learns where the face is, rather than the easy way out of
    /// showing the input through.
    pub mask_weight: f64,
    /// Stop after this many steps in all (counting resumed ones), if time is left.
    pub max_steps: Option<usize>,
    pub seed: u64,
    /// Seconds between checkpoints.
    pub checkpoint_seconds: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            batch: 8,
            lr: 2e-4,
            adversarial: 0.1,
            mask_weight: 0.5,
            max_steps: None,
            seed: 1,
            checkpoint_seconds: 60.0,
        }
    }
}

/// What a training run did (also kept in the checkpoint, accumulated over resumed runs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainReport {
    pub steps: usize,
    pub resumed_from: usize,
    /// Seconds of training in this run.
    pub seconds: f64,
    pub steps_per_second: f64,
    pub parameters: usize,
    /// Mean reconstruction loss (L1 of the masked face) per identity over the last steps.
    pub reconstruction: Vec<f32>,
    pub adversarial: f32,
    pub discriminator: f32,
    /// (step, mean reconstruction loss over identities), every few steps, across runs.
    pub history: Vec<(usize, f32)>,
    /// The lowest mean SSIM over the judged identities' held-out faces, after training.
    #[serde(default)]
    pub held_out_ssim: Option<f32>,
}

const CONFIG: &str = "config.json";
/// The generator's weights in a checkpoint folder (what conversion needs).
pub const GENERATOR: &str = "generator.safetensors";
const DISCRIMINATOR: &str = "discriminator.safetensors";
const OPT_G: &str = "optimizer-g.safetensors";
const OPT_D: &str = "optimizer-d.safetensors";
const STATE: &str = "state.json";

/// A model being trained, with its optimisers, and where it is saved.
pub struct Trainer {
    pub model: SwapModel,
    pub disc: Discriminators,
    opt_g: AdamW,
    opt_d: AdamW,
    pub report: TrainReport,
    dir: Option<PathBuf>,
}

impl Trainer {
    /// A fresh model, or the one checkpointed in `dir` when its config is the same.
    pub fn open(config: &ModelConfig, dir: Option<&Path>, device: &Device) -> Result<Self> {
        let model = SwapModel::new(config, device)?;
        let disc = Discriminators::new(config, device)?;
        let mut opt_g = AdamW::new(&model.varmap, 0.0)?;
        let mut opt_d = AdamW::new(&disc.varmap, 0.0)?;
        for o in [&mut opt_g, &mut opt_d] {
            o.beta1 = 0.5;
            o.beta2 = 0.999;
        }
        let mut report = TrainReport {
            parameters: model.parameter_count(),
            ..Default::default()
        };
        if let Some(dir) = dir {
            if let Some(saved) = read_config(dir)? {
                if &saved == config {
                    let read = |name: &str| -> Result<Vec<u8>> {
                        std::fs::read(dir.join(name)).with_context(|| {
                            format!("the checkpoint in {} lacks {name}", dir.display())
                        })
                    };
                    load_weights(&model.varmap, &read(GENERATOR)?, GENERATOR)?;
                    load_weights(&disc.varmap, &read(DISCRIMINATOR)?, DISCRIMINATOR)?;
                    let cpu = Device::Cpu;
                    opt_g
                        .load_state(&candle_core::safetensors::load_buffer(&read(OPT_G)?, &cpu)?)?;
                    opt_d
                        .load_state(&candle_core::safetensors::load_buffer(&read(OPT_D)?, &cpu)?)?;
                    let state: TrainReport = serde_json::from_slice(&read(STATE)?)
                        .context("the checkpoint's state.json is damaged")?;
                    report.steps = state.steps;
                    report.history = state.history;
                    report.resumed_from = state.steps;
                }
            }
        }
        Ok(Trainer {
            model,
            disc,
            opt_g,
            opt_d,
            report,
            dir: dir.map(Path::to_path_buf),
        })
    }

    /// Saves the model, the optimisers and the step (each file atomically; the config last).
    pub fn save(&self) -> Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        std::fs::create_dir_all(dir)?;
        // The config goes first and is removed while the rest is written, so a half-saved
        // checkpoint is never resumed from.
        let _ = std::fs::remove_file(dir.join(CONFIG));
        save_tensors(&dir.join(GENERATOR), &var_tensors(&self.model.varmap))?;
        save_tensors(&dir.join(DISCRIMINATOR), &var_tensors(&self.disc.varmap))?;
        save_tensors(&dir.join(OPT_G), &self.opt_g.state()?)?;
        save_tensors(&dir.join(OPT_D), &self.opt_d.state()?)?;
        crate::fsutil::write_atomic(&dir.join(STATE), &serde_json::to_vec_pretty(&self.report)?)?;
        crate::fsutil::write_atomic(
            &dir.join(CONFIG),
            &serde_json::to_vec_pretty(&self.model.config)?,
        )?;
        Ok(())
    }

    /// One step on every identity: the generator, then the discriminators. Returns
    /// (reconstruction loss per identity, adversarial loss, discriminator loss).
    pub fn step(
        &mut self,
        sets: &[FaceSet],
        opts: &TrainOptions,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Vec<f32>, f32, f32)> {
        let dev = self.model.device.clone();
        // Which face each sample warps, and its warp's seed, are drawn here in order, so that
        // a seed gives the same data however many cores warp them and shards train on them.
        let mut draws = Vec::with_capacity(sets.len() * opts.batch);
        for (si, set) in sets.iter().enumerate() {
            for _ in 0..opts.batch {
                draws.push((
                    si,
                    rng.random_range(0..set.faces.len()),
                    rng.random::<u64>(),
                ));
            }
        }
        let mut batches = Vec::with_capacity(sets.len());
        for chunk in draws.chunks(opts.batch.max(1)) {
            let faces: Vec<&Planar> = (chunk.iter())
                .map(|&(si, fi, _)| &sets[si].faces[fi])
                .collect();
            let warps: Vec<Warp> = (faces.iter().zip(chunk))
                .map(|(f, &(_, _, seed))| Warp::draw(f.width, &mut ChaCha8Rng::seed_from_u64(seed)))
                .collect();
            let [input, target, mask] = warp_batch(&faces, &warps, &dev)?;
            batches.push((input, target, mask));
        }
        anyhow::ensure!(!batches.is_empty(), "no identities to train");
        // Per identity: the reconstruction loss and the adversarial loss, for the report.
        let watched = std::sync::Mutex::new(vec![(0f32, 0f32); sets.len()]);
        let (model, disc) = (&self.model, &self.disc);
        let [(_, g_grads), (d_total, d_grads)] =
            crate::nn::sharded_gradients(&dev, opts.batch, |start, len| {
                let share = len as f32 / opts.batch as f32;
                let (mut g_loss, mut d_loss) = (None::<Tensor>, None::<Tensor>);
                let inputs = (batches.iter())
                    .map(|(inp, _, _)| inp.narrow(0, start, len))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                let painted = model.forward_each(&inputs)?;
                for (id, (_, tgt, region)) in batches.iter().enumerate() {
                    let (inp, tgt) = (&inputs[id], tgt.narrow(0, start, len)?);
                    let region = region.narrow(0, start, len)?;
                    let (face, mask) = (&painted[id].0, &painted[id].1);
                    let comp = (mask.broadcast_mul(face)?
                        + mask.affine(-1.0, 1.0)?.broadcast_mul(inp)?)?;
                    let rec = (&comp - &tgt)?.abs()?.mean_all()?;
                    let raw = (face - &tgt)?.abs()?.mean_all()?;
                    let adv = least_squares(&disc.nets[id].forward(&comp)?, 1.0)?;
                    {
                        let mut w = watched.lock().expect("no shard panicked");
                        w[id].0 += rec.to_scalar::<f32>()? * share;
                        w[id].1 += adv.to_scalar::<f32>()? * share;
                    }
                    let mask_loss = (mask - &region)?.abs()?.mean_all()?;
                    let loss = (((&rec + (raw * 0.5)?)? + (mask_loss * opts.mask_weight)?)?
                        + (adv * opts.adversarial)?)?;
                    g_loss = Some(match g_loss {
                        Some(a) => (a + loss)?,
                        None => loss,
                    });
                    let real = disc.nets[id].forward(&tgt)?;
                    let fake = disc.nets[id].forward(&comp.detach())?;
                    let d = ((least_squares(&real, 1.0)? + least_squares(&fake, 0.0)?)? * 0.5)?;
                    d_loss = Some(match d_loss {
                        Some(a) => (a + d)?,
                        None => d,
                    });
                }
                Ok([
                    g_loss.expect("identities checked"),
                    d_loss.expect("identities checked"),
                ])
            })?;
        self.opt_g.apply(&g_grads, opts.lr, 10.0)?;
        self.opt_d.apply(&d_grads, opts.lr, 10.0)?;
        let watched = watched.into_inner().expect("no shard panicked");
        let n = sets.len() as f32;
        let recs = watched.iter().map(|w| w.0).collect();
        let adv = watched.iter().map(|w| w.1).sum::<f32>() / n;
        Ok((recs, adv, d_total / n))
    }

    /// Trains until `deadline` (or `opts.max_steps`), checkpointing as it goes and at the end.
    pub fn train(
        &mut self,
        sets: &[FaceSet],
        opts: &TrainOptions,
        deadline: Instant,
        progress: &Progress,
    ) -> Result<TrainReport> {
        anyhow::ensure!(
            sets.len() == self.model.config.identities.len(),
            "the model has {} identities, the training data {}",
            self.model.config.identities.len(),
            sets.len()
        );
        for s in sets {
            anyhow::ensure!(
                !s.faces.is_empty(),
                "identity {} has no faces to learn",
                s.name
            );
        }
        let start_step = self.report.steps;
        let mut rng =
            ChaCha8Rng::seed_from_u64(opts.seed ^ (start_step as u64).wrapping_mul(0x9e37_79b9));
        let started = Instant::now();
        let mut last_save = Instant::now();
        let total = opts.max_steps.unwrap_or(usize::MAX);
        let bar = progress.bar(
            opts.max_steps
                .map(|m| m.saturating_sub(start_step))
                .unwrap_or(0) as u64,
            "training",
            "steps",
        );
        let mut recent: Vec<Vec<f32>> = Vec::new();
        let (mut adv, mut dl) = (0f32, 0f32);
        while self.report.steps < total && Instant::now() < deadline {
            crate::progress::check_interrupted()?;
            let (rec, a, d) = self.step(sets, opts, &mut rng)?;
            adv = a;
            dl = d;
            self.report.steps += 1;
            let mean = rec.iter().sum::<f32>() / rec.len() as f32;
            let every = (self.report.steps / 50).clamp(1, 25);
            if self.report.steps.is_multiple_of(every) || self.report.steps == 1 {
                self.report.history.push((self.report.steps, mean));
            }
            recent.push(rec);
            if recent.len() > 20 {
                recent.remove(0);
            }
            bar.inc(1);
            bar.set_message(format!("rec {mean:.4}"));
            if last_save.elapsed() > Duration::from_secs_f64(opts.checkpoint_seconds) {
                self.finish_report(&recent, adv, dl, started);
                self.save()?;
                last_save = Instant::now();
            }
        }
        bar.finish_and_clear();
        self.finish_report(&recent, adv, dl, started);
        self.save()?;
        Ok(self.report.clone())
    }

    fn finish_report(&mut self, recent: &[Vec<f32>], adv: f32, dl: f32, started: Instant) {
        let ids = self.model.config.identities.len();
        self.report.reconstruction = (0..ids)
            .map(|i| recent.iter().map(|r| r[i]).sum::<f32>() / recent.len().max(1) as f32)
            .collect();
        self.report.adversarial = adv;
        self.report.discriminator = dl;
        self.report.seconds = started.elapsed().as_secs_f64();
        self.report.steps_per_second =
            (self.report.steps - self.report.resumed_from) as f64 / self.report.seconds.max(1e-9);
    }
}

/// The model config saved in a checkpoint folder, if any.
pub fn read_config(dir: &Path) -> Result<Option<ModelConfig>> {
    let path = dir.join(CONFIG);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read(&path)?;
    Ok(serde_json::from_slice(&text).ok())
}

/// A trained model, for conversion only.
pub fn load_model(dir: &Path, device: &Device) -> Result<SwapModel> {
    let config =
        read_config(dir)?.with_context(|| format!("no trained swap model in {}", dir.display()))?;
    let model = SwapModel::new(&config, device)?;
    let bytes = std::fs::read(dir.join(GENERATOR))?;
    load_weights(&model.varmap, &bytes, GENERATOR)?;
    Ok(model)
}

/// Model size from the time training may take and the device (a GPU gets a larger model).
pub fn choose_config(train_seconds: f64, device: &Device, identities: Vec<String>) -> ModelConfig {
    let (resolution, width, latent) = if device.is_cuda() {
        (128, 32, 512)
    } else if train_seconds < 15.0 * 60.0 {
        (32, 16, 128)
    } else if train_seconds < 2.0 * 3600.0 {
        (64, 32, 256)
    } else {
        (64, 48, 512)
    };
    ModelConfig {
        resolution,
        width,
        latent,
        identities,
    }
}

/// Steps a swap model is trained for even when the budget is spent: an untrained decoder
/// paints noise.
const MIN_STEPS: usize = 30;

/// Trains for about `seconds` more, and at least [`MIN_STEPS`] more steps.
pub fn train_for(
    trainer: &mut Trainer,
    sets: &[FaceSet],
    seed: u64,
    seconds: f64,
    progress: &Progress,
) -> Result<TrainReport> {
    let opts = TrainOptions {
        seed,
        max_steps: Some(trainer.report.steps + 200_000),
        ..Default::default()
    };
    let first = TrainOptions {
        max_steps: Some(trainer.report.steps + MIN_STEPS),
        ..opts.clone()
    };
    let report = trainer.train(
        sets,
        &first,
        Instant::now() + Duration::from_secs(3600),
        progress,
    )?;
    if seconds <= report.seconds {
        return Ok(report);
    }
    let deadline = Instant::now() + Duration::from_secs_f64(seconds - report.seconds);
    trainer.train(sets, &opts, deadline, progress)
}
