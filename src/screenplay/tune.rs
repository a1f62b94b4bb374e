//! Fine-tuning on the film's genre, continued film after film: each genre keeps a checkpoint
//! of the built-in model in the user's data folder (`<data>/screenplay/<genre>/<model>/`),
//! trained on that genre's part of the shipped corpora. A film with time to spare trains it
//! on from where the last film left off; every film drafts with the best weights so far (by
//! held-out loss on the genre).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::lm::base::{self, Base};
use super::lm::tokenizer::ScreenplayTokenizer;
use super::lm::train::{self, Document, Start, TrainOptions};
use super::lm::{Arch, LanguageModel, ModelConfig, WEIGHTS_FILE};
use super::models::{built_in, BuiltIn};
use crate::film::{FilmSettings, Genre};
use crate::fsutil;
use crate::progress::Progress;

/// The shipped corpora, embedded at build time (see build.rs): (genre, text).
const CORPORA: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/corpora.rs"));

/// Seconds kept for the evaluation that ends a session and saves the checkpoint.
pub const EVAL_ALLOWANCE_S: f64 = 25.0;

/// The least time worth a session: building the model, the evaluation, and about ten of the
/// built-in adapters' steps (17 s each on the reference machine), the fewest that move the
/// genre's held-out loss by more than its noise.
pub const LEAST_SESSION_S: f64 = 240.0;

/// Tokens one step trains on (the adapters' batch of 4 windows of 256).
pub const TOKENS_PER_STEP: usize = 1024;

/// Validation windows per evaluation: fixed, so losses compare across films.
const EVAL_BATCHES: usize = 3;

/// The record beside the checkpoint: the built-in model's loss on the genre before any
/// fine-tuning, and the best since.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GenreRecord {
    pub baseline_val_loss: f32,
    pub best_val_loss: Option<f32>,
    pub steps: usize,
    pub sessions: usize,
}

/// What one session did.
#[derive(Debug, Clone, Serialize)]
pub struct TuneReport {
    pub genre: Genre,
    pub steps_before: usize,
    pub steps: usize,
    pub baseline_val_loss: f32,
    pub best_val_loss: f32,
    pub seconds: f64,
    pub train_tokens_per_second: f64,
}

/// The genre's folder for a built-in model (by its hash).
pub fn genre_dir(genre: Genre, model_hash: &str) -> PathBuf {
    crate::film::data_dir()
        .join("screenplay")
        .join(genre.name())
        .join(&model_hash[..16.min(model_hash.len())])
}

/// The genre's best fine-tuned weights so far, if a film has tuned it.
pub fn tuned_weights(genre: Genre, model_hash: &str) -> Option<Vec<u8>> {
    std::fs::read(genre_dir(genre, model_hash).join(WEIGHTS_FILE)).ok()
}

pub fn record(genre: Genre, model_hash: &str) -> Option<GenreRecord> {
    let path = genre_dir(genre, model_hash).join("genre.json");
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn docs(genre: Genre) -> Vec<Document> {
    CORPORA
        .iter()
        .filter(|(g, _)| *g == genre.name())
        .map(|(_, text)| Document {
            genre: Some(genre),
            text: text.to_string(),
        })
        .collect()
}

/// Whether the film's model can be fine-tuned here (the built-in ones can).
pub fn can_tune(settings: &FilmSettings) -> bool {
    built_in(settings.screenplay_model.as_deref()).is_ok() && !docs(settings.genre).is_empty()
}

/// Trains the genre's checkpoint on for about `seconds`. `None` when the film's model is not
/// a built-in one, or another benjamin is tuning this genre now (it is not waited for).
pub fn tune(
    settings: &FilmSettings,
    model_hash: &str,
    seconds: f64,
    progress: &Progress,
) -> Result<Option<TuneReport>> {
    let Ok(model) = built_in(settings.screenplay_model.as_deref()) else {
        return Ok(None);
    };
    let started = Instant::now();
    let genre = settings.genre;
    let dir = genre_dir(genre, model_hash);
    let Ok(_lock) = fsutil::FolderLock::acquire(&dir, "the genre's checkpoint") else {
        progress.info(format!(
            "screenplay: another benjamin is fine-tuning {genre} now; drafting without tuning"
        ));
        return Ok(None);
    };
    let config: ModelConfig = serde_json::from_str(model.config).context("a built-in config")?;
    let base = match config.arch {
        Arch::Llama => Some(base::locate(None)?),
        _ => None,
    };
    let tokenizer = tokenizer(&model, base.as_ref())?;
    let docs = docs(genre);
    let path = dir.join("genre.json");
    let mut rec = match record(genre, model_hash) {
        Some(r) => r,
        None => GenreRecord {
            baseline_val_loss: baseline(&model, &config, base.as_ref(), &tokenizer, &docs)?,
            ..Default::default()
        },
    };
    let budget = (seconds - started.elapsed().as_secs_f64() - EVAL_ALLOWANCE_S).max(1.0);
    let mut opts = TrainOptions::new(config, Duration::from_secs_f64(budget));
    opts.eval_batches = EVAL_BATCHES;
    let start = Start {
        base: base.as_ref(),
        weights: Some(model.weights),
        extend: true,
    };
    let steps_before = rec.steps;
    let report = train::train_from(&docs, &tokenizer, &opts, &dir, progress, &start)?;
    rec.steps = report.steps;
    rec.sessions += 1;
    rec.best_val_loss = Some(report.best_val_loss);
    fsutil::write_atomic(&path, &serde_json::to_vec_pretty(&rec)?)?;
    Ok(Some(TuneReport {
        genre,
        steps_before,
        steps: report.steps,
        baseline_val_loss: rec.baseline_val_loss,
        best_val_loss: report.best_val_loss,
        seconds: started.elapsed().as_secs_f64(),
        train_tokens_per_second: report.train_tokens_per_second,
    }))
}

fn tokenizer(model: &BuiltIn, base: Option<&Base>) -> Result<ScreenplayTokenizer> {
    match (model.tokenizer, base) {
        (Some(json), _) => ScreenplayTokenizer::from_json(json, model.name),
        (None, Some(base)) => base.tokenizer(),
        (None, None) => anyhow::bail!("{} has no tokenizer", model.name),
    }
}

/// The built-in model's loss on the genre's held-out text, before any fine-tuning.
fn baseline(
    model: &BuiltIn,
    config: &ModelConfig,
    base: Option<&Base>,
    tokenizer: &ScreenplayTokenizer,
    docs: &[Document],
) -> Result<f32> {
    let device = crate::nn::device();
    let lm = match base {
        Some(b) => LanguageModel::on_base(config, b, &device)?,
        None => LanguageModel::new(config, &device)?,
    };
    crate::nn::load_weights(&lm.varmap, model.weights, model.name)?;
    let (split, _) = train::split(docs, tokenizer, config.reads_cast())?;
    let mut opts = TrainOptions::new(config.clone(), Duration::ZERO);
    opts.eval_batches = EVAL_BATCHES;
    train::evaluate(&lm, &split.val, &opts)
}
