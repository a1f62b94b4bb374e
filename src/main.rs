//! The `benjamin` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};

use benjamin::cut::{self, CutOptions, EditList};
use benjamin::film::{Film, FilmSettings, Genre};
use benjamin::fsutil::slug;
use benjamin::pipeline::{Pipeline, StageId};
use benjamin::progress::{install_interrupt_handler, Progress};

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
    /// Print a machine-readable summary at the end (make, run, status, cut).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a film: run every stage that is not up to date, in order, within the time budget.
    Make(MakeArgs),
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

#[derive(Args)]
struct MakeArgs {
    /// Genre of the film (required for a new film).
    #[arg(long, value_enum)]
    genre: Option<Genre>,
    /// Wall-clock budget for the whole run, in hours (0.1 is a quick demo). Default: 1 for a new film.
    #[arg(long)]
    hours: Option<f64>,
    /// The film's title (also names its folder under films/).
    #[arg(long)]
    title: Option<String>,
    /// A line of dialogue one character must say, word for word.
    #[arg(long)]
    line: Option<String>,
    /// A prop that must appear in the action.
    #[arg(long)]
    prop: Option<String>,
    /// Seed for every random choice; the same seed makes the same film. Default: picked and recorded.
    #[arg(long)]
    seed: Option<u64>,
    /// The film folder. Default: films/<title> (or films/<genre>-<seed> without a title).
    #[arg(long)]
    film: Option<PathBuf>,
    /// Archive of footage to pick shots from.
    #[arg(long)]
    archive: Option<PathBuf>,
    /// Folder of actors (photos and consent records) for the face swap.
    #[arg(long)]
    actors: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    install_interrupt_handler();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let progress = Progress::new(cli.quiet);
    match cli.command {
        Command::Make(args) => {
            let film = prepare_film(args, &progress)?;
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
                    eprintln!("film: {}", mp4.display());
                } else {
                    eprintln!("no film yet: some stages are not built or blocked (see above); `benjamin status --film {}`", film.dir.display());
                }
            }
        }
        Command::Run { stage, film, seed } => {
            let mut film = Film::open(&film)?;
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
            if cli.json {
                print_json(
                    &serde_json::json!({"film": film.dir, "settings": film.settings, "stages": stages}),
                );
            } else {
                println!(
                    "{} ({}, seed {}, {} h budget) in {}",
                    film.settings.title,
                    film.settings.genre,
                    film.settings.seed,
                    film.settings.hours,
                    film.dir.display()
                );
                for s in stages {
                    let mut line = format!("{:>10}  {:<13}", s.stage.name(), s.state);
                    if let Some(d) = s.last_duration_s {
                        line += &format!(" last run {d:.1} s");
                    }
                    if let Some(why) = s.reason {
                        line += &format!("  ({why})");
                    }
                    println!("{}", line.trim_end());
                }
            }
        }
        Command::Cut { edl, out, preset } => {
            let list = EditList::load(&edl)?;
            let opts = CutOptions {
                preset,
                ..Default::default()
            };
            let result = cut::cut(&list, &out, &opts, &progress)?;
            if cli.json {
                print_json(&result);
            } else if !cli.quiet {
                eprintln!(
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
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("summary is serialisable")
    );
}

/// Opens the film folder (creating it for a new film) and records the settings given now.
fn prepare_film(args: MakeArgs, progress: &Progress) -> Result<Film> {
    let default_dir = |title: Option<&str>, genre: Genre, seed: u64| {
        Path::new("films").join(match title {
            Some(t) => slug(t),
            None => format!("{genre}-{seed}"),
        })
    };
    let existing = args
        .film
        .as_ref()
        .filter(|d| Film::exists(d))
        .cloned()
        .or_else(|| {
            let genre = args.genre?;
            let dir = default_dir(args.title.as_deref(), genre, args.seed?);
            Film::exists(&dir).then_some(dir)
        });
    let mut settings = match &existing {
        Some(dir) => Film::open(dir)?.settings,
        None => {
            let Some(genre) = args.genre else {
                bail!(
                    "a new film needs a genre: add --genre noir, --genre scifi or --genre romance"
                );
            };
            let seed = args.seed.unwrap_or_else(fresh_seed);
            let title = args.title.clone().unwrap_or_else(|| "Untitled".to_string());
            FilmSettings::new(title, genre, seed, args.hours.unwrap_or(1.0))
        }
    };
    if let Some(g) = args.genre {
        settings.genre = g;
    }
    if let Some(h) = args.hours {
        if !(h > 0.0 && h.is_finite()) {
            bail!("--hours must be a positive number of hours, e.g. 0.1 or 48");
        }
        settings.hours = h;
    }
    if let Some(t) = args.title.clone() {
        settings.title = t;
    }
    if let Some(s) = args.seed {
        settings.seed = s;
    }
    settings.line = args.line.or(settings.line);
    settings.prop = args.prop.or(settings.prop);
    settings.archive = args.archive.or(settings.archive);
    settings.actors = args.actors.or(settings.actors);
    let dir = existing
        .or(args.film)
        .unwrap_or_else(|| default_dir(args.title.as_deref(), settings.genre, settings.seed));
    let film = Film::save(&dir, &settings)?;
    progress.info(format!(
        "film folder: {} (seed {})",
        dir.display(),
        settings.seed
    ));
    Ok(film)
}

fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos as u64 ^ (std::process::id() as u64) << 32) % 1_000_000
}
