//! `benjamin write`, `train screenplay` and `corpus`: the screenplay's commands.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::lm::{self, Arch};
use super::{corpus, fountain, stage};
use crate::film::{FilmSettings, Genre};
use crate::progress::{print_json, Progress};

#[derive(Args)]
pub struct WriteArgs {
    #[arg(long, value_enum)]
    pub genre: Genre,
    #[arg(long, default_value = "Untitled")]
    pub title: String,
    #[arg(long)]
    pub line: Option<String>,
    #[arg(long)]
    pub prop: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 4.0, value_parser = crate::film::parse_minutes)]
    pub minutes: f64,
    /// The screenplay model: smollm2 (the built-in adapters on SmolLM2, default), gpt
    /// (the built-in small GPT), or a folder made by `benjamin train screenplay`.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Sampling temperature (0 is greedy).
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
}

/// Writes a screenplay to stdout, as the screenplay stage would for a film of these settings.
pub fn write(a: WriteArgs, json: bool, progress: &Progress) -> Result<()> {
    let mut settings = FilmSettings::new(a.title, a.genre, a.seed, 1.0);
    settings.line = a.line;
    settings.prop = a.prop;
    settings.minutes = a.minutes;
    settings.sampling = lm::sample::SamplingOptions {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        ..Default::default()
    };
    let bundle = stage::load_model(a.model.as_deref())?;
    let req = stage::request(&settings);
    let (script, stats) = stage::write_screenplay(&bundle, &req, None, progress)?;
    if json {
        print_json(&serde_json::json!({"screenplay": script, "stats": stats}));
        return Ok(());
    }
    crate::progress::write_stdout(format_args!("{}", fountain::write(&script)));
    progress.info(format!(
        "{} scenes, {:.0} s of screen time; {} tokens in {:.1} s ({:.0} tokens/s)",
        script.scenes.len(),
        script.estimated_seconds,
        stats.tokens,
        stats.seconds,
        stats.tokens_per_second
    ));
    Ok(())
}

#[derive(Args)]
pub struct TrainScreenplayArgs {
    /// Corpus folder with noir/, scifi/, romance/ sub-folders (or one plain text file).
    #[arg(long, default_value = "corpora")]
    pub corpus: PathBuf,
    /// Model architecture: llama fine-tunes adapters on the pretrained base; gpt and lstm
    /// train from scratch.
    #[arg(long, value_enum, default_value = "llama")]
    pub arch: Arch,
    /// The pretrained base for --arch llama: a GGUF file or a folder holding one (default:
    /// the one `scripts/setup.sh` unpacks).
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Adapter rank for --arch llama.
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// Wall-clock budget in hours; training stops inside it and keeps the best checkpoint.
    #[arg(long, default_value_t = 0.25, value_parser = crate::film::parse_hours)]
    pub hours: f64,
    /// Output folder (config.json, model.safetensors, tokenizer.json, checkpoint/). Resumes from
    /// its checkpoint. Default: models/screenplay-smollm2 for llama, models/screenplay else.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Tokenizer vocabulary (gpt, lstm): 260 is one token per byte (character level), more learns BPE merges.
    #[arg(long, default_value_t = 1024)]
    pub vocab: usize,
    /// Stop after this many steps even if time is left.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Layers (default 4 for gpt, 2 for lstm).
    #[arg(long)]
    pub layers: Option<usize>,
    /// Embedding width (default 128).
    #[arg(long)]
    pub width: Option<usize>,
    /// Attention heads, gpt only (default 4).
    #[arg(long)]
    pub heads: Option<usize>,
    /// Recurrent state size, lstm only (default 256).
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Context length in tokens (default 128).
    #[arg(long)]
    pub context: Option<usize>,
    /// Sequences per step (default 12).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Peak learning rate (default 1e-3 for gpt, 3e-3 for lstm).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Steps between validation checks (default 100).
    #[arg(long)]
    pub eval_every: Option<usize>,
}

/// Trains the screenplay model (adapters on the base, or a GPT or LSTM from scratch).
pub fn train(a: TrainScreenplayArgs, json: bool, progress: &Progress) -> Result<()> {
    let docs = lm::train::read_corpus(&a.corpus)?;
    let texts: Vec<String> = docs.iter().map(|d| d.text.clone()).collect();
    let base = match a.arch {
        Arch::Llama => Some(lm::base::locate(a.base.as_deref())?),
        _ => None,
    };
    let (tokenizer, config) = match &base {
        Some(b) => (b.tokenizer()?, lm::ModelConfig::on_base(b, a.rank, 256)),
        None => {
            let tokenizer = lm::ScreenplayTokenizer::train(&texts, a.vocab)?;
            let config = lm::ModelConfig::default_for(a.arch, tokenizer.vocab_size());
            (tokenizer, config)
        }
    };
    let mut config = config;
    config.layers = a.layers.unwrap_or(config.layers);
    config.width = a.width.unwrap_or(config.width);
    config.heads = a.heads.unwrap_or(config.heads);
    config.hidden = a.hidden.unwrap_or(config.hidden);
    config.context = a.context.unwrap_or(config.context);
    let mut opts =
        lm::train::TrainOptions::new(config, std::time::Duration::from_secs_f64(a.hours * 3600.0));
    opts.max_steps = a.steps;
    opts.batch = a.batch.unwrap_or(opts.batch);
    opts.eval_every = a.eval_every.unwrap_or(opts.eval_every);
    if let Some(lr) = a.lr {
        opts.max_lr = lr;
        opts.min_lr = lr / 10.0;
    }
    progress.info(format!(
        "training a {:?} on {} documents from {} ({} tokens in the vocabulary)",
        a.arch,
        docs.len(),
        a.corpus.display(),
        tokenizer.vocab_size()
    ));
    // The adapters and the built-in GPT each keep their own folder by default.
    let out = a.out.clone().unwrap_or_else(|| match a.arch {
        Arch::Llama => "models/screenplay-smollm2".into(),
        _ => "models/screenplay".into(),
    });
    let report = lm::train::train(&docs, &tokenizer, &opts, &out, progress, base.as_ref())?;
    if json {
        print_json(&report);
    } else if !progress.is_quiet() {
        crate::errln!(
            "trained {} steps in {:.0} s ({:.0} tokens/s, {} parameters): best validation loss {:.4}; model in {}",
            report.steps, report.seconds, report.tokens_per_second, report.parameters, report.best_val_loss, out.display()
        );
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum CorpusCommand {
    /// Add your own screenplays (.fountain or .txt) to a genre's corpus.
    Add {
        files: Vec<PathBuf>,
        #[arg(long, value_enum)]
        genre: Genre,
        #[arg(long, default_value = "corpora")]
        corpus: PathBuf,
    },
    /// Show what each genre's corpus holds.
    List {
        #[arg(long, default_value = "corpora")]
        corpus: PathBuf,
    },
}

impl CorpusCommand {
    pub fn run(self, json: bool, progress: &Progress) -> Result<()> {
        match self {
            CorpusCommand::Add {
                files,
                genre,
                corpus,
            } => {
                let added = corpus::add(&corpus, genre, &files)?;
                progress.info(format!(
                    "added {} file(s) to {}",
                    added.len(),
                    corpus.join(genre.name()).display()
                ));
            }
            CorpusCommand::List { corpus } => {
                let rows = corpus::list(&corpus)?;
                if json {
                    let rows: Vec<_> = rows
                        .iter()
                        .map(|(g, n, b)| serde_json::json!({"genre": g, "files": n, "bytes": b}))
                        .collect();
                    print_json(&rows);
                } else {
                    for (g, n, b) in rows {
                        crate::outln!("{:>8}  {n:>4} files  {:>8} KB", g.name(), b / 1024);
                    }
                }
            }
        }
        Ok(())
    }
}
