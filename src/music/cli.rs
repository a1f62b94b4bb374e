//! `benjamin train music`: its options and what it prints.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::model::MelodyConfig;
use super::train::{train, TrainOptions};
use crate::progress::Progress;

#[derive(Args, Debug)]
pub struct TrainMusicArgs {
    /// Output folder (config.json, melody.safetensors, training.json).
    #[arg(long, default_value = "models/music")]
    pub out: PathBuf,
    /// Training steps.
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Wall-clock budget in hours; training stops inside it and keeps the best model.
    #[arg(long, default_value_t = 1.0, value_parser = crate::film::parse_hours)]
    pub hours: f64,
    /// Recurrent state size.
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Token embedding width.
    #[arg(long, default_value_t = 32)]
    pub width: usize,
    /// Windows a step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Tokens a window (two a note).
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Melodies made by benjamin's rules, per genre, added to the public-domain tunes.
    #[arg(long, default_value_t = 300)]
    pub rule_melodies: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Trains the melody model and reports it.
pub fn train_music(a: TrainMusicArgs, progress: &Progress, json: bool) -> Result<()> {
    let opts = TrainOptions {
        config: MelodyConfig {
            hidden: a.hidden,
            width: a.width,
            ..Default::default()
        },
        steps: a.steps,
        batch: a.batch,
        window: a.window,
        max_lr: a.lr,
        min_lr: a.lr / 10.0,
        rule_melodies: a.rule_melodies,
        seed: a.seed,
        budget_s: a.hours * 3600.0,
        ..Default::default()
    };
    let report = train(&opts, &a.out, progress)?;
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?);
    } else if !progress.is_quiet() {
        crate::errln!(
            "trained {} steps in {:.0} s ({} parameters): train loss {:.3} -> {:.3}, best validation loss {:.3}; model in {}",
            report.steps,
            report.seconds,
            report.parameters,
            report.first_train_loss,
            report.final_train_loss,
            report.best_val_loss,
            a.out.display()
        );
    }
    Ok(())
}
