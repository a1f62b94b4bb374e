//! `benjamin make`, `run` and `status`: the commands over a whole film.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use super::{Action, Pipeline, StageId};
use crate::film::request::FilmArgs;
use crate::film::Film;
use crate::progress::{print_json, Progress};

#[derive(Args)]
pub struct MakeArgs {
    #[command(flatten)]
    pub film: FilmArgs,
    /// Print the plan (what each stage would do with its share of --hours on this machine)
    /// and run nothing.
    #[arg(long)]
    pub plan: bool,
}

#[derive(Args)]
pub struct RunArgs {
    /// The stage to rerun.
    pub stage: StageId,
    /// The film folder.
    #[arg(long)]
    pub film: PathBuf,
    /// Use a new seed for this and later runs (e.g. a new screenplay).
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(Args)]
pub struct StatusArgs {
    /// The film folder.
    #[arg(long)]
    pub film: PathBuf,
}

/// Makes a film in `films/` (or the folder the arguments name).
pub fn make(args: MakeArgs, json: bool, progress: &Progress) -> Result<()> {
    if args.plan {
        return plan(args.film, json, progress);
    }
    let (film, _lock) = crate::film::request::prepare(args.film, Path::new("films"), progress)?;
    let reports = Pipeline::default().make(&film, progress)?;
    let mp4 = film.dir.join("film.mp4");
    let cut = reports
        .iter()
        .any(|r| r.stage == StageId::Cut && r.action != Action::Blocked);
    if json {
        print_json(
            &serde_json::json!({"film": film.dir, "stages": reports, "film_mp4": mp4.is_file().then_some(&mp4)}),
        );
    } else if !progress.is_quiet() {
        if mp4.is_file() && cut {
            crate::errln!("film: {}", mp4.display());
        } else {
            crate::errln!("no film yet: some stages are not built or blocked (see above); `benjamin status --film {}`", film.dir.display());
        }
    }
    Ok(())
}

/// `make --plan`: the plan for the film the arguments mean, made and printed without
/// touching the film.
fn plan(args: FilmArgs, json: bool, progress: &Progress) -> Result<()> {
    let film = crate::film::request::resolve(args, Path::new("films"))?;
    let (plan, calibration) = Pipeline::default().plan(&film, progress)?;
    if json {
        print_json(
            &serde_json::json!({"film": film.dir, "plan": plan, "calibration": calibration}),
        );
        return Ok(());
    }
    let s = &film.settings;
    crate::outln!(
        "{} ({}, {} minutes, seed {}), {} h on {}:",
        s.title,
        s.genre,
        s.minutes,
        s.seed,
        s.hours,
        calibration.machine
    );
    for line in plan.lines() {
        crate::outln!("{line}");
    }
    if plan.short_s > 0.0 {
        crate::outln!("refused: {}", crate::plan::too_small(&film, &plan));
    }
    Ok(())
}

/// Reruns one stage of a film.
pub fn run(args: RunArgs, json: bool, progress: &Progress) -> Result<()> {
    let mut film = Film::open(&args.film)?;
    let _lock = Film::lock(&film.dir)?;
    if let Some(seed) = args.seed {
        film.settings.seed = seed;
        film = Film::save(&film.dir, &film.settings)?;
    }
    let report = Pipeline::default().run_one(&film, args.stage, progress)?;
    if json {
        print_json(&report);
    }
    Ok(())
}

/// Shows where each stage of a film stands.
pub fn status(args: StatusArgs, json: bool) -> Result<()> {
    let film = Film::open(&args.film)?;
    let stages = Pipeline::default().status(&film)?;
    let cast = crate::screenplay::stage::cast_of(&film);
    if json {
        print_json(
            &serde_json::json!({"film": film.dir, "settings": film.settings, "cast": cast, "stages": stages}),
        );
        return Ok(());
    }
    let s = &film.settings;
    crate::outln!(
        "{} ({}, seed {}, {} h budget) in {}",
        s.title,
        s.genre,
        s.seed,
        s.hours,
        film.dir.display()
    );
    if let Some(cast) = cast.filter(|c| !c.is_empty()) {
        crate::outln!("cast: {}", cast.join(", "));
    }
    for s in stages {
        let mut line = format!("{:>10}  {:<13}", s.stage.name(), s.state.name());
        if let Some(d) = s.last_duration_s {
            line += &format!(" last run {d:.1} s");
        }
        if let Some(p) = &s.last_planned {
            line += &format!(" of {:.0} s planned", p.planned_s);
        }
        if let Some(why) = s.reason {
            line += &format!("  ({why})");
        }
        crate::outln!("{}", line.trim_end());
    }
    Ok(())
}

/// `benjamin batch`: the batch (a floor below) makes each entry with [`super::make_film`].
pub fn batch(args: crate::batch::cli::BatchArgs, json: bool, progress: &Progress) -> Result<()> {
    crate::batch::cli::batch(args, json, &super::make_film, progress)
}
