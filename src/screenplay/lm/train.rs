//! Training a screenplay model within a time budget: AdamW, warm-up and cosine decay,
//! gradient clipping, a validation split, and checkpoints that resume exactly. The best
//! model by validation loss is what ends up in the output folder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::base::Base;
use super::tokenizer::{genre_token, ScreenplayTokenizer, END};
use super::{LanguageModel, ModelConfig, CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use crate::film::Genre;
use crate::fsutil;
use crate::nn::{cosine_lr, AdamW};
use crate::progress::Progress;

/// One training document: its genre (if any) and text.
pub struct Document {
    pub genre: Option<Genre>,
    pub text: String,
}

/// Reads a corpus: a folder with one sub-folder per genre (noir/, scifi/, romance/) of
/// .fountain / .txt files, or a single text file with no genre.
pub fn read_corpus(path: &Path) -> Result<Vec<Document>> {
    if path.is_file() {
        let text = crate::screenplay::corpus::read_text(path)?;
        return Ok(vec![Document { genre: None, text }]);
    }
    let mut docs = Vec::new();
    for genre in Genre::ALL {
        for file in crate::screenplay::corpus::files(&path.join(genre.name()))? {
            docs.push(Document {
                genre: Some(genre),
                text: crate::screenplay::corpus::read_text(&file)?,
            });
        }
    }
    if docs.is_empty() {
        bail!("{} holds no screenplays: expected noir/, scifi/ or romance/ folders of .fountain or .txt files (see corpora/)", path.display());
    }
    Ok(docs)
}

/// How to train.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    pub config: ModelConfig,
    pub batch: usize,
    pub max_lr: f64,
    pub min_lr: f64,
    pub warmup: usize,
    /// Stop after this many steps (else when the budget runs out).
    pub max_steps: Option<usize>,
    pub budget_s: f64,
    pub eval_every: usize,
    pub eval_batches: usize,
    pub weight_decay: f64,
    pub seed: u64,
}

impl TrainOptions {
    pub fn new(config: ModelConfig, budget: Duration) -> Self {
        let budget_s = budget.as_secs_f64();
        if config.arch == super::Arch::Llama {
            // Adapters on a pretrained base: a gentler rate, fewer and longer windows (each
            // token costs a hundred times a small model's), no decay pulling them to zero.
            return TrainOptions {
                config,
                batch: 4,
                max_lr: 4e-4,
                min_lr: 4e-5,
                warmup: 20,
                max_steps: None,
                budget_s,
                eval_every: 50,
                eval_batches: 6,
                weight_decay: 0.0,
                seed: 1337,
            };
        }
        let max_lr = if config.arch == super::Arch::Lstm {
            3e-3
        } else {
            1e-3
        };
        TrainOptions {
            config,
            batch: 12,
            max_lr,
            min_lr: max_lr / 10.0,
            warmup: 100,
            max_steps: None,
            budget_s,
            eval_every: 100,
            eval_batches: 20,
            weight_decay: 0.1,
            seed: 1337,
        }
    }
}

/// Where training stands; saved with each checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainState {
    pub step: usize,
    /// Steps the schedule decays over (fixed once estimated, so a resumed run keeps it).
    pub total_steps: usize,
    pub best_val: Option<f32>,
    pub last_train: Option<f32>,
    pub history: Vec<(usize, f32, f32)>,
    /// Training seconds over all sessions.
    pub seconds: f64,
    pub tokens_seen: u64,
}

/// What a training run achieved.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub steps: usize,
    pub parameters: usize,
    pub best_val_loss: f32,
    pub last_train_loss: f32,
    pub tokens_per_second: f64,
    /// The same over the optimisation steps alone (no evaluation, loading or saving).
    pub train_tokens_per_second: f64,
    pub seconds: f64,
    pub chars_per_token: f64,
    pub resumed_from: Option<usize>,
}

/// Token streams for training and validation: the last 10% of every document is held out.
pub struct Split {
    pub train: Vec<u32>,
    pub val: Vec<u32>,
}

/// `with_cast` names each screenplay's cast on its title page (see [`crate::screenplay::cast`]).
pub fn split(
    docs: &[Document],
    tok: &ScreenplayTokenizer,
    with_cast: bool,
) -> Result<(Split, f64)> {
    let (mut train, mut val, mut chars) = (Vec::new(), Vec::new(), 0usize);
    for d in docs {
        let mut ids = Vec::new();
        if let Some(g) = d.genre {
            ids.push(tok.id(&genre_token(g)));
        }
        let text = if with_cast {
            crate::screenplay::cast::with_cast_line(&d.text)
        } else {
            d.text.clone()
        };
        ids.extend(tok.encode(&text)?);
        ids.push(tok.id(END));
        chars += text.chars().count();
        let cut = ids.len() * 9 / 10;
        train.extend_from_slice(&ids[..cut]);
        val.extend_from_slice(&ids[cut..]);
    }
    let per_token = chars as f64 / (train.len() + val.len()).max(1) as f64;
    Ok((Split { train, val }, per_token))
}

/// A batch of `batch` windows of `len + 1` tokens, drawn by `rng`.
fn batch(
    data: &[u32],
    batch: usize,
    len: usize,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    anyhow::ensure!(
        data.len() > len + 1,
        "the text is too short for a context of {len} tokens ({} tokens)",
        data.len()
    );
    let mut x = Vec::with_capacity(batch * len);
    let mut y = Vec::with_capacity(batch * len);
    for _ in 0..batch {
        let start = rng.random_range(0..data.len() - len - 1);
        x.extend_from_slice(&data[start..start + len]);
        y.extend_from_slice(&data[start + 1..start + len + 1]);
    }
    Ok((
        Tensor::from_vec(x, (batch, len), device)?,
        Tensor::from_vec(y, (batch, len), device)?,
    ))
}

/// Mean validation loss over fixed batches (the same every time, so values compare).
pub fn evaluate(model: &LanguageModel, data: &[u32], opts: &TrainOptions) -> Result<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0xe7a1);
    let len = opts.config.context.min(data.len().saturating_sub(2));
    let batches = (0..opts.eval_batches)
        .map(|_| batch(data, opts.batch, len, &mut rng, &model.device))
        .collect::<Result<Vec<_>>>()?;
    let losses = crate::nn::on_cores(batches.len(), |i| {
        Ok(model
            .loss(&batches[i].0, &batches[i].1)?
            .to_scalar::<f32>()?)
    })?;
    Ok(losses.iter().sum::<f32>() / opts.eval_batches as f32)
}

/// The files of a training folder.
pub struct TrainDir(pub PathBuf);

impl TrainDir {
    fn checkpoint(&self) -> PathBuf {
        self.0.join("checkpoint")
    }
}

/// One optimisation step (exposed so tests can compare a resumed run step by step).
pub fn train_step(
    model: &LanguageModel,
    opt: &mut AdamW,
    split: &Split,
    opts: &TrainOptions,
    total: usize,
) -> Result<f32> {
    let step = opt.step;
    let mut rng = ChaCha8Rng::seed_from_u64(
        opts.seed
            .wrapping_mul(0x9e37_79b9)
            .wrapping_add(step as u64),
    );
    let (x, y) = batch(
        &split.train,
        opts.batch,
        opts.config.context,
        &mut rng,
        &model.device,
    )?;
    let [(value, grads)] =
        crate::nn::sharded_gradients(&model.device, opts.batch, |start, len| {
            Ok([model.loss(&x.narrow(0, start, len)?, &y.narrow(0, start, len)?)?])
        })?;
    let lr = cosine_lr(
        step,
        opts.warmup.min(total / 10 + 1),
        total,
        opts.max_lr,
        opts.min_lr,
    );
    opt.apply(&grads, lr, 1.0)?;
    Ok(value)
}

/// Saves model, optimizer and state so that [`train`] can pick up exactly here.
pub fn save_checkpoint(
    dir: &Path,
    model: &LanguageModel,
    opt: &AdamW,
    state: &TrainState,
    opts: &TrainOptions,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    model.save(&dir.join(WEIGHTS_FILE))?;
    crate::nn::save_tensors(&dir.join("optimizer.safetensors"), &opt.state()?)?;
    fsutil::write_atomic(&dir.join("options.json"), &serde_json::to_vec_pretty(opts)?)?;
    // The state goes last: a checkpoint without it is ignored.
    fsutil::write_atomic(&dir.join("state.json"), &serde_json::to_vec_pretty(state)?)
}

/// Loads a checkpoint made with the same model shape; `None` when there is none.
pub fn load_checkpoint(
    dir: &Path,
    model: &LanguageModel,
    opt: &mut AdamW,
) -> Result<Option<TrainState>> {
    let Ok(text) = std::fs::read_to_string(dir.join("state.json")) else {
        return Ok(None);
    };
    let state: TrainState = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is damaged; delete it to start over",
            dir.join("state.json").display()
        )
    })?;
    let weights = std::fs::read(dir.join(WEIGHTS_FILE))
        .with_context(|| format!("checkpoint {} lacks its weights", dir.display()))?;
    crate::nn::load_weights(
        &model.varmap,
        &weights,
        &dir.join(WEIGHTS_FILE).display().to_string(),
    )?;
    let opt_state = candle_core::safetensors::load(dir.join("optimizer.safetensors"), &Device::Cpu)
        .with_context(|| {
            format!(
                "checkpoint {} has a damaged optimizer state; delete it to start over",
                dir.display()
            )
        })?;
    opt.load_state(&opt_state)?;
    Ok(Some(state))
}

/// Trains on `docs` into `out` (config.json, model.safetensors, tokenizer.json, checkpoint/),
/// resuming from `out/checkpoint` when one of the same shape is there. With a `base`, trains
/// adapters on it (and writes no tokenizer: the base carries its own).
pub fn train(
    docs: &[Document],
    tokenizer: &ScreenplayTokenizer,
    opts: &TrainOptions,
    out: &Path,
    progress: &Progress,
    base: Option<&Base>,
) -> Result<TrainReport> {
    let start = Start {
        base,
        ..Default::default()
    };
    train_from(docs, tokenizer, opts, out, progress, &start)
}

/// Where a training run starts.
#[derive(Default)]
pub struct Start<'a> {
    /// The pretrained base the adapters sit on.
    pub base: Option<&'a Base>,
    /// Weights to start from when the folder holds no checkpoint (fine-tuning a model).
    pub weights: Option<&'a [u8]>,
    /// A resumed run whose schedule has ended starts a new one for this budget (fine-tuning
    /// that goes on film after film), instead of stopping at once.
    pub extend: bool,
}

/// [`train`] from a [`Start`].
pub fn train_from(
    docs: &[Document],
    tokenizer: &ScreenplayTokenizer,
    opts: &TrainOptions,
    out: &Path,
    progress: &Progress,
    start: &Start,
) -> Result<TrainReport> {
    let base = start.base;
    let started = Instant::now();
    let budget = Duration::from_secs_f64(opts.budget_s);
    let dir = TrainDir(out.to_path_buf());
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let (split, chars_per_token) = split(docs, tokenizer, opts.config.reads_cast())?;
    let device = crate::nn::device();
    let model = match base {
        Some(b) => LanguageModel::on_base(&opts.config, b, &device)?,
        None => LanguageModel::new(&opts.config, &device)?,
    };
    let mut opt = AdamW::new(&model.varmap, opts.weight_decay)?;
    let same_shape = std::fs::read_to_string(dir.checkpoint().join("options.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<TrainOptions>(&t).ok())
        .is_some_and(|o| o.config == opts.config);
    let mut state = match same_shape {
        true => load_checkpoint(&dir.checkpoint(), &model, &mut opt)?,
        false => None,
    };
    match (&mut state, start.weights) {
        (Some(s), _) if start.extend => s.total_steps = 0,
        (None, Some(weights)) => {
            crate::nn::load_weights(&model.varmap, weights, "the starting weights")?
        }
        _ => {}
    }
    let mut state = state.unwrap_or_default();
    let resumed_from = (state.step > 0).then_some(state.step);
    if let Some(step) = resumed_from {
        progress.info(format!(
            "resuming from step {step} (best validation loss {:.3})",
            state.best_val.unwrap_or(f32::NAN)
        ));
    }
    if base.is_none() {
        fsutil::write_atomic(&out.join(TOKENIZER_FILE), tokenizer.to_json()?.as_bytes())?;
    }
    fsutil::write_atomic(
        &out.join(CONFIG_FILE),
        &serde_json::to_vec_pretty(&opts.config)?,
    )?;
    let tokens_per_step = (opts.batch * opts.config.context) as u64;
    let bar = progress.spinner("training");
    let session_start = Instant::now();
    let resumed_seconds = state.seconds;
    let mut step_time = Duration::ZERO;
    let mut steps_time = Duration::ZERO;
    let mut eval_time = Duration::from_secs_f64(0.0);
    loop {
        crate::progress::check_interrupted()?;
        if state.total_steps == 0 && opt.step >= 5 {
            // Fix the schedule's length from the measured speed, so it decays within the budget.
            let per_step = session_start.elapsed().as_secs_f64()
                / (opt.step - resumed_from.unwrap_or(0)).max(1) as f64;
            let left = budget.saturating_sub(started.elapsed()).as_secs_f64() * 0.9;
            state.total_steps = opts
                .max_steps
                .unwrap_or(opt.step + (left / per_step) as usize)
                .max(opt.step + 1);
        }
        let total = if state.total_steps > 0 {
            state.total_steps
        } else {
            opts.max_steps.unwrap_or(usize::MAX)
        };
        let out_of_time = started.elapsed() + step_time + eval_time > budget;
        if opt.step >= total || (out_of_time && opt.step > 0) {
            break;
        }
        let t0 = Instant::now();
        let loss = train_step(
            &model,
            &mut opt,
            &split,
            opts,
            total.min(opts.max_steps.unwrap_or(total)),
        )?;
        step_time = t0.elapsed();
        steps_time += step_time;
        state.step = opt.step;
        state.last_train = Some(loss);
        state.tokens_seen += tokens_per_step;
        bar.set_message(format!(
            "step {}/{} loss {loss:.3} best val {:.3}",
            opt.step,
            total,
            state.best_val.unwrap_or(f32::NAN)
        ));
        let last = opt.step >= total;
        if opt.step % opts.eval_every == 0
            || last
            || started.elapsed() + step_time * 2 + eval_time > budget
        {
            let t1 = Instant::now();
            let val = evaluate(&model, &split.val, opts)?;
            state.history.push((opt.step, loss, val));
            if state.best_val.is_none_or(|b| val < b) {
                state.best_val = Some(val);
                model.save(&out.join(WEIGHTS_FILE))?;
            }
            state.seconds = resumed_seconds + session_start.elapsed().as_secs_f64();
            save_checkpoint(&dir.checkpoint(), &model, &opt, &state, opts)?;
            eval_time = t1.elapsed();
            progress.info(format!(
                "step {:>6}  train {loss:.4}  val {val:.4}  {:.0} tokens/s",
                opt.step,
                state.tokens_seen as f64 / session_start.elapsed().as_secs_f64()
            ));
        }
    }
    bar.finish_and_clear();
    let seconds = session_start.elapsed().as_secs_f64();
    let session_steps = opt.step - resumed_from.unwrap_or(0);
    Ok(TrainReport {
        steps: opt.step,
        parameters: opt.parameter_count(),
        best_val_loss: state.best_val.unwrap_or(f32::NAN),
        last_train_loss: state.last_train.unwrap_or(f32::NAN),
        tokens_per_second: (session_steps as u64 * tokens_per_step) as f64 / seconds.max(1e-9),
        train_tokens_per_second: (session_steps as u64 * tokens_per_step) as f64
            / steps_time.as_secs_f64().max(1e-9),
        seconds,
        chars_per_token,
        resumed_from,
    })
}
