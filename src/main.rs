//! The `benjamin` command line: clap definitions and dispatch. Each command's handler lives
//! beside its module, in that module's `cli.rs`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use benjamin::pipeline::cli::{RunArgs, StatusArgs};
use benjamin::progress::{install_interrupt_handler, Progress};
use benjamin::{archive, batch, cut, faces, music, pipeline, provenance, screenplay, voice};

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
    /// Print machine-readable JSON on stdout (make, run, status, cut, verify, batch, corpus list, archive, faces detect).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a film: run every stage that is not up to date, in order, within the time budget.
    Make(pipeline::cli::MakeArgs),
    /// Rerun one stage even if it is up to date; the stages after it become stale.
    Run(RunArgs),
    /// Show each stage of a film: fresh, stale (and why), never run, or not built yet.
    Status(StatusArgs),
    /// Train a model (the screenplay language model, the melody model).
    #[command(subcommand)]
    Train(TrainCommand),
    /// Write a screenplay (Fountain, to stdout) without making a film.
    Write(screenplay::cli::WriteArgs),
    /// Voice a Fountain screenplay into a folder as the voice stage does (lines/, dialogue.json, voices.json, edl.json).
    Speak(voice::cli::SpeakArgs),
    /// Add to or list the genre corpora the screenplay model learns from.
    #[command(subcommand)]
    Corpus(screenplay::cli::CorpusCommand),
    /// The footage archive: add videos and stills, list, search, remove.
    #[command(subcommand)]
    Archive(archive::cli::ArchiveCommand),
    /// Register, list or remove the actors whose faces may be swapped in (consent required).
    #[command(subcommand)]
    Actors(faces::cli::ActorsCommand),
    /// Find faces and their landmarks in a picture or a video.
    #[command(subcommand)]
    Faces(faces::cli::FacesCommand),
    /// Convert third-party model weights (MTCNN from facenet-pytorch) for benjamin.
    #[command(subcommand)]
    Models(faces::cli::ModelsCommand),
    /// Cut a film from a hand-written edit list (JSON), without the other stages.
    Cut(cut::cli::CutArgs),
    /// Check a film's Content Credentials: who made it, with what, from which sources and
    /// consents; fails on a film altered after signing or without credentials.
    Verify(provenance::cli::VerifyArgs),
    /// Make a festival's worth of films from one file, resumable; writes report.html.
    Batch(batch::cli::BatchArgs),
}

#[derive(Subcommand)]
enum TrainCommand {
    /// Train the screenplay language model on genre corpora, within a time budget.
    Screenplay(screenplay::cli::TrainScreenplayArgs),
    /// Train the melody model of the score (models/music by default).
    Music(music::cli::TrainMusicArgs),
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
    let json = cli.json;
    match cli.command {
        Command::Make(args) => pipeline::cli::make(args, json, &progress),
        Command::Run(args) => pipeline::cli::run(args, json, &progress),
        Command::Status(args) => pipeline::cli::status(args, json),
        Command::Train(TrainCommand::Screenplay(args)) => {
            screenplay::cli::train(args, json, &progress)
        }
        Command::Train(TrainCommand::Music(args)) => music::cli::train_music(args, &progress, json),
        Command::Write(args) => screenplay::cli::write(args, json, &progress),
        Command::Speak(args) => voice::cli::speak(args, json, &progress),
        Command::Corpus(c) => c.run(json, &progress),
        Command::Archive(c) => archive::cli::run(c, json, &progress),
        Command::Actors(c) => c.run(&progress, json),
        Command::Faces(c) => c.run(&progress, json),
        Command::Models(c) => c.run(&progress),
        Command::Cut(args) => cut::cli::run(args, json, &progress),
        Command::Verify(args) => provenance::cli::run(args, json),
        Command::Batch(args) => pipeline::cli::batch(args, json, &progress),
    }
}
