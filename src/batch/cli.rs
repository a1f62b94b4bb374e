//! `benjamin batch FESTIVAL.toml`: make every entry, then write the report.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::{report, run, Batch, MakeFilm, RunOptions, State};
use crate::fsutil::FolderLock;
use crate::progress::{print_json, Progress};

#[derive(Args)]
pub struct BatchArgs {
    /// The festival file: [defaults] and [[entry]] tables (see examples/festival.toml).
    pub file: PathBuf,
    /// The whole batch's budget in hours, shared among the entries still to make (default:
    /// each entry's own hours).
    #[arg(long, value_parser = crate::film::parse_hours)]
    pub hours: Option<f64>,
    /// Make failed entries again (by default a rerun skips them, and done ones).
    #[arg(long)]
    pub retry_failed: bool,
    /// Entries made side by side, sharing the cores (why 2: README, Festival batches).
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Make only this entry (1-based), as a Slurm array task does.
    #[arg(long)]
    pub entry: Option<usize>,
    /// Only write the report of where the entries stand; make nothing.
    #[arg(long)]
    pub status: bool,
    /// Submit the batch to Slurm as a job array (one task an entry, on this shared folder)
    /// instead of making it here; `--status` reads the states back.
    #[arg(long)]
    pub slurm: bool,
}

/// Runs the batch; `make` makes one film (the pipeline's `make_film`).
pub fn batch(args: BatchArgs, json: bool, make: MakeFilm, progress: &Progress) -> Result<()> {
    let batch = Batch::open(&args.file)?;
    std::fs::create_dir_all(&batch.dir)?;
    if args.slurm {
        let id = super::slurm::submit(&batch, args.hours, args.retry_failed)?;
        progress.info(format!(
            "batch: submitted Slurm job {id} ({} array tasks); `benjamin batch {} --status` shows where they stand",
            batch.entries.len(),
            args.file.display()
        ));
        if json {
            print_json(&serde_json::json!({"slurm_job": id, "entries": batch.entries.len()}));
        }
        return Ok(());
    }
    if !args.status {
        // One batch run at a time over a batch folder (single-entry runs lock only their film).
        let _lock = match args.entry {
            None => Some(FolderLock::acquire(&batch.dir, "this batch")?),
            Some(_) => None,
        };
        let opts = RunOptions {
            hours: args.hours,
            retry_failed: args.retry_failed,
            only: args.entry,
            jobs: args.jobs,
        };
        run(&batch, &opts, make, progress)?;
    }
    let (json_path, html) = report::write(&batch)?;
    let states: Vec<State> = batch
        .entries
        .iter()
        .map(|e| batch.state(e).map(|s| s.state).unwrap_or(State::Pending))
        .collect();
    let done = states.iter().filter(|s| **s == State::Done).count();
    let failed = states.iter().filter(|s| **s == State::Failed).count();
    if json {
        print_json(
            &serde_json::json!({"report": json_path, "html": html, "done": done, "failed": failed, "entries": states.len()}),
        );
    } else {
        progress.info(format!(
            "batch: {done} of {} done, {failed} failed; report: {}",
            states.len(),
            html.display()
        ));
    }
    // A Slurm task answers for its own entry only.
    let failed = match args.entry {
        Some(n) => {
            usize::from(n.checked_sub(1).and_then(|i| states.get(i)) == Some(&State::Failed))
        }
        None => failed,
    };
    if failed > 0 && !args.status {
        bail!(
            "{failed} entries failed (see {}); rerun with --retry-failed to try them again",
            html.display()
        );
    }
    Ok(())
}
