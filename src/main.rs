//! The `benjamin` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use benjamin::cut::{self, CutOptions, EditList};
use benjamin::film::request::FilmArgs;
use benjamin::film::{Film, FilmSettings, Genre};
use benjamin::pipeline::{Pipeline, StageId};
use benjamin::progress::{install_interrupt_handler, Progress};
use benjamin::screenplay::lm::{self, Arch};
use benjamin::screenplay::{self, corpus};

/// benjamin makes a short film on its own: it writes a screenplay, voices it, picks shots from
/// public-domain footage, swaps in consenting actors' faces, scores it and cuts it with FFmpeg.
#[derive(Parser)]
#[command(
    name = "benjamin",
    version,
    after_help = "Start with: benjamin make --genre noir --hours 0.1\nEach stage's artifacts live in the film folder; `benjamin status --film DIR` shows them."
)]
struct Cli {
    /// Print nothing but errors (and the --json summary).
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Print machine-readable JSON on stdout (make, run, status, cut, corpus list, archive, faces detect).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a film: run every stage that is not up to date, in order, within the time budget.
    Make(FilmArgs),
    /// Rerun one stage even if it is up to date; the stages after it become stale.
    Run {
        /// The stage to rerun.
        stage: StageId,
        /// The film folder.
        #[arg(long)]
        film: PathBuf,
        /// Use a new seed for this and later runs (e.g. a new screenplay).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Show each stage of a film: fresh, stale (and why), never run, or not built yet.
    Status {
        /// The film folder.
        #[arg(long)]
        film: PathBuf,
    },
    /// Train a model (the screenplay language model, the melody model).
    #[command(subcommand)]
    Train(TrainCommand),
    /// Write a screenplay (Fountain, to stdout) without making a film.
    Write {
        #[arg(long, value_enum)]
        genre: Genre,
        #[arg(long, default_value = "Untitled")]
        title: String,
        #[arg(long)]
        line: Option<String>,
        #[arg(long)]
        prop: Option<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 4.0, value_parser = benjamin::film::parse_minutes)]
        minutes: f64,
        /// The screenplay model: smollm2 (the built-in adapters on SmolLM2, default), gpt
        /// (the built-in small GPT), or a folder made by `benjamin train screenplay`.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Sampling temperature (0 is greedy).
        #[arg(long, default_value_t = 0.8)]
        temperature: f32,
        #[arg(long, default_value_t = 40)]
        top_k: usize,
        #[arg(long, default_value_t = 0.95)]
        top_p: f32,
    },
    /// Voice a Fountain screenplay into a folder (one WAV per line, dialogue.json, voices.json).
    Speak {
        /// The screenplay (.fountain).
        #[arg(long)]
        screenplay: PathBuf,
        /// Output folder; a voices.json already there is honoured.
        #[arg(long)]
        out: PathBuf,
    },
    /// Add to or list the genre corpora the screenplay model learns from.
    #[command(subcommand)]
    Corpus(CorpusCommand),
    /// The footage archive: add videos and stills, list, search, remove.
    #[command(subcommand)]
    Archive(benjamin::archive::cli::ArchiveCommand),
    /// Register, list or remove the actors whose faces may be swapped in (consent required).
    #[command(subcommand)]
    Actors(benjamin::faces::cli::ActorsCommand),
    /// Find faces and their landmarks in a picture or a video.
    #[command(subcommand)]
    Faces(benjamin::faces::cli::FacesCommand),
    /// Convert third-party model weights (MTCNN from facenet-pytorch) for benjamin.
    #[command(subcommand)]
    Models(benjamin::faces::cli::ModelsCommand),
    /// Cut a film from a hand-written edit list (JSON), without the other stages.
    Cut {
        /// The edit list (see examples/demo/edl.json).
        #[arg(long)]
        edl: PathBuf,
        /// The MP4 to write; the .srt and .otio go beside it.
        #[arg(long)]
        out: PathBuf,
        /// x264 preset: ultrafast, veryfast, medium, slow, ... (slower is smaller).
        #[arg(long, default_value = "veryfast")]
        preset: String,
    },
}

#[derive(Subcommand)]
enum TrainCommand {
    /// Train the screenplay language model on genre corpora, within a time budget.
    Screenplay(TrainScreenplayArgs),
    /// Train the melody model of the score (models/music by default).
    Music(benjamin::music::cli::TrainMusicArgs),
}

#[derive(Args)]
struct TrainScreenplayArgs {
    /// Corpus folder with noir/, scifi/, romance/ sub-folders (or one plain text file).
    #[arg(long, default_value = "corpora")]
    corpus: PathBuf,
    /// Model architecture: llama fine-tunes adapters on the pretrained base; gpt and lstm
    /// train from scratch.
    #[arg(long, value_enum, default_value = "llama")]
    arch: Arch,
    /// The pretrained base for --arch llama: a GGUF file or a folder holding one (default:
    /// the one `scripts/setup.sh` unpacks).
    #[arg(long)]
    base: Option<PathBuf>,
    /// Adapter rank for --arch llama.
    #[arg(long, default_value_t = 8)]
    rank: usize,
    /// Wall-clock budget in hours; training stops inside it and keeps the best checkpoint.
    #[arg(long, default_value_t = 0.25, value_parser = benjamin::film::parse_hours)]
    hours: f64,
    /// Output folder (config.json, model.safetensors, tokenizer.json, checkpoint/). Resumes from
    /// its checkpoint. Default: models/screenplay-smollm2 for llama, models/screenplay else.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Tokenizer vocabulary (gpt, lstm): 260 is one token per byte (character level), more learns BPE merges.
    #[arg(long, default_value_t = 1024)]
    vocab: usize,
    /// Stop after this many steps even if time is left.
    #[arg(long)]
    steps: Option<usize>,
    /// Layers (default 4 for gpt, 2 for lstm).
    #[arg(long)]
    layers: Option<usize>,
    /// Embedding width (default 128).
    #[arg(long)]
    width: Option<usize>,
    /// Attention heads, gpt only (default 4).
    #[arg(long)]
    heads: Option<usize>,
    /// Recurrent state size, lstm only (default 256).
    #[arg(long)]
    hidden: Option<usize>,
    /// Context length in tokens (default 128).
    #[arg(long)]
    context: Option<usize>,
    /// Sequences per step (default 12).
    #[arg(long)]
    batch: Option<usize>,
    /// Peak learning rate (default 1e-3 for gpt, 3e-3 for lstm).
    #[arg(long)]
    lr: Option<f64>,
    /// Steps between validation checks (default 100).
    #[arg(long)]
    eval_every: Option<usize>,
}

#[derive(Subcommand)]
enum CorpusCommand {
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

fn main() -> ExitCode {
    // Only `write` samples without training anything in the same process.
    benjamin::nn::configure_threads(std::env::args().nth(1).as_deref() == Some("write"));
    let cli = Cli::parse();
    install_interrupt_handler();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            benjamin::errln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let progress = Progress::new(cli.quiet);
    match cli.command {
        Command::Make(args) => {
            let (film, _lock) =
                benjamin::film::request::prepare(args, Path::new("films"), &progress)?;
            let reports = Pipeline::default().make(&film, &progress)?;
            let mp4 = film.dir.join("film.mp4");
            if cli.json {
                print_json(
                    &serde_json::json!({"film": film.dir, "stages": reports, "film_mp4": mp4.is_file().then_some(&mp4)}),
                );
            } else if !cli.quiet {
                if mp4.is_file()
                    && reports
                        .iter()
                        .any(|r| r.stage == StageId::Cut && r.action != "blocked")
                {
                    benjamin::errln!("film: {}", mp4.display());
                } else {
                    benjamin::errln!("no film yet: some stages are not built or blocked (see above); `benjamin status --film {}`", film.dir.display());
                }
            }
        }
        Command::Run { stage, film, seed } => {
            let mut film = Film::open(&film)?;
            let _lock = Film::lock(&film.dir)?;
            if let Some(seed) = seed {
                film.settings.seed = seed;
                film = Film::save(&film.dir, &film.settings)?;
            }
            let report = Pipeline::default().run_one(&film, stage, &progress)?;
            if cli.json {
                print_json(&report);
            }
        }
        Command::Status { film } => {
            let film = Film::open(&film)?;
            let stages = Pipeline::default().status(&film)?;
            let cast = screenplay::stage::cast_of(&film);
            if cli.json {
                print_json(
                    &serde_json::json!({"film": film.dir, "settings": film.settings, "cast": cast, "stages": stages}),
                );
            } else {
                benjamin::outln!(
                    "{} ({}, seed {}, {} h budget) in {}",
                    film.settings.title,
                    film.settings.genre,
                    film.settings.seed,
                    film.settings.hours,
                    film.dir.display()
                );
                if let Some(cast) = cast.filter(|c| !c.is_empty()) {
                    benjamin::outln!("cast: {}", cast.join(", "));
                }
                for s in stages {
                    let mut line = format!("{:>10}  {:<13}", s.stage.name(), s.state);
                    if let Some(d) = s.last_duration_s {
                        line += &format!(" last run {d:.1} s");
                    }
                    if let Some(why) = s.reason {
                        line += &format!("  ({why})");
                    }
                    benjamin::outln!("{}", line.trim_end());
                }
            }
        }
        Command::Train(TrainCommand::Screenplay(a)) => {
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
            let mut opts = lm::train::TrainOptions::new(
                config,
                std::time::Duration::from_secs_f64(a.hours * 3600.0),
            );
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
            let report =
                lm::train::train(&docs, &tokenizer, &opts, &out, &progress, base.as_ref())?;
            if cli.json {
                print_json(&report);
            } else if !cli.quiet {
                benjamin::errln!(
                    "trained {} steps in {:.0} s ({:.0} tokens/s, {} parameters): best validation loss {:.4}; model in {}",
                    report.steps, report.seconds, report.tokens_per_second, report.parameters, report.best_val_loss, out.display()
                );
            }
        }
        Command::Train(TrainCommand::Music(a)) => {
            benjamin::music::cli::train_music(a, &progress, cli.json)?
        }
        Command::Write {
            genre,
            title,
            line,
            prop,
            seed,
            minutes,
            model,
            temperature,
            top_k,
            top_p,
        } => {
            let mut settings = FilmSettings::new(title, genre, seed, 1.0);
            settings.line = line;
            settings.prop = prop;
            settings.minutes = minutes;
            settings.sampling = screenplay::lm::sample::SamplingOptions {
                temperature,
                top_k,
                top_p,
                ..Default::default()
            };
            let film = Film {
                dir: PathBuf::from("."),
                settings,
            };
            let bundle = screenplay::stage::load_model(model.as_deref())?;
            let req = screenplay::stage::request(&film);
            let (script, stats) =
                screenplay::stage::write_screenplay(&bundle, &req, None, &progress)?;
            if cli.json {
                print_json(&serde_json::json!({"screenplay": script, "stats": stats}));
            } else {
                benjamin::progress::write_stdout(format_args!(
                    "{}",
                    screenplay::fountain::write(&script)
                ));
                progress.info(format!(
                    "{} scenes, {:.0} s of screen time; {} tokens in {:.1} s ({:.0} tokens/s)",
                    script.scenes.len(),
                    script.estimated_seconds,
                    stats.tokens,
                    stats.seconds,
                    stats.tokens_per_second
                ));
            }
        }
        Command::Speak {
            screenplay: path,
            out,
        } => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let script = screenplay::fountain::parse(&text);
            if script.characters.is_empty() {
                bail!("{} has no dialogue to voice", path.display());
            }
            let voices = out.join(benjamin::voice::VOICES_FILE);
            let existing = match std::fs::read_to_string(&voices) {
                Ok(t) => serde_json::from_str(&t)
                    .with_context(|| format!("{} is not a valid cast", voices.display()))?,
                Err(_) => Default::default(),
            };
            let cast = benjamin::voice::cast::cast(&script, &existing);
            let mut engine = benjamin::voice::engine::Espeak::new()?;
            let started = std::time::Instant::now();
            let timings =
                benjamin::voice::voice_screenplay(&script, &cast, &mut engine, &out, &progress)?;
            let seconds = started.elapsed().as_secs_f64();
            benjamin::fsutil::write_atomic(&voices, &serde_json::to_vec_pretty(&cast)?)?;
            benjamin::fsutil::write_atomic(
                &out.join(benjamin::voice::DIALOGUE_FILE),
                &serde_json::to_vec_pretty(&timings)?,
            )?;
            let speech: f64 = timings.lines.iter().map(|l| l.end - l.start).sum();
            let summary = serde_json::json!({"lines": timings.lines.len(), "speech_seconds": speech, "wall_seconds": seconds, "real_time_factor": seconds / speech.max(1e-9)});
            if cli.json {
                print_json(&summary);
            } else {
                progress.info(format!(
                    "voiced {} lines ({speech:.1} s of speech) in {seconds:.2} s into {}",
                    timings.lines.len(),
                    out.display()
                ));
            }
        }
        Command::Corpus(CorpusCommand::Add {
            files,
            genre,
            corpus,
        }) => {
            let added = corpus::add(&corpus, genre, &files)?;
            progress.info(format!(
                "added {} file(s) to {}",
                added.len(),
                corpus.join(genre.name()).display()
            ));
        }
        Command::Archive(cmd) => benjamin::archive::cli::run(cmd, cli.json, &progress)?,
        Command::Corpus(CorpusCommand::List { corpus }) => {
            let rows = corpus::list(&corpus)?;
            if cli.json {
                print_json(
                    &rows
                        .iter()
                        .map(|(g, n, b)| serde_json::json!({"genre": g, "files": n, "bytes": b}))
                        .collect::<Vec<_>>(),
                );
            } else {
                for (g, n, b) in rows {
                    benjamin::outln!("{:>8}  {n:>4} files  {:>8} KB", g.name(), b / 1024);
                }
            }
        }
        Command::Actors(c) => c.run(&progress, cli.json)?,
        Command::Faces(c) => c.run(&progress, cli.json)?,
        Command::Models(c) => c.run(&progress)?,
        Command::Cut { edl, out, preset } => {
            cut::check_output(&out, [edl.as_path()])?;
            let list = EditList::load(&edl)?;
            let opts = CutOptions {
                preset,
                ..Default::default()
            };
            let result = cut::cut(&list, &out, &opts, &progress)?;
            if cli.json {
                print_json(&result);
            } else if !cli.quiet {
                benjamin::errln!(
                    "wrote {} ({:.1} s, {} frames, {:.1} LUFS) with {} and {}",
                    result.film.display(),
                    result.seconds,
                    result.frames,
                    result.mix.loudness_lufs,
                    result.subtitles.display(),
                    result.timeline.display()
                );
            }
        }
    }
    Ok(())
}

fn print_json(value: &impl serde::Serialize) {
    benjamin::outln!(
        "{}",
        serde_json::to_string_pretty(value).expect("summary is serialisable")
    );
}
