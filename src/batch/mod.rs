//! A festival's worth of films from one file: `benjamin batch FESTIVAL.toml`.
//!
//! The file has a `[defaults]` table and `[[entry]]` tables, with the keys of `make` (genre,
//! hours, minutes, title, line, prop, seed, archive, actors, soundfont, screenplay_model) and
//! film.toml's `frame` and `sampling` tables; an
//! entry's keys override the defaults, and relative paths are relative to the file. Each entry
//! is a film folder under the batch folder (`FESTIVAL/` beside the file), named from its title
//! (made unique, never outside the batch folder whatever the title holds).
//!
//! Each entry's state (pending, running, done, failed and why) is kept in
//! `FESTIVAL/state/NNN.json`, written atomically, so a rerun skips what is done, resumes the
//! rest through the stages' own freshness, and retries failures only when asked. A film is done
//! only when its cut wrote film.mp4; a kill leaves it "running", which a rerun resumes.

pub mod cli;
pub mod report;
pub mod slurm;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::film::request::{prepare, FilmArgs};
use crate::film::Film;
use crate::fsutil::{self, slug};
use crate::progress::Progress;

/// The festival file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Festival {
    #[serde(default)]
    pub defaults: FilmArgs,
    #[serde(default, rename = "entry")]
    pub entries: Vec<FilmArgs>,
}

/// One entry of a batch, its settings merged and its folder named.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based, in the file's order.
    pub number: usize,
    pub args: FilmArgs,
    pub dir: PathBuf,
    /// The hash of the entry's settings as the file gives them: an edit makes it stale.
    pub key: String,
}

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Running,
    Done,
    Failed,
}

/// `state/NNN.json`: what happened to an entry last.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryState {
    pub number: usize,
    pub title: String,
    pub folder: String,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall-clock seconds of the last run.
    #[serde(default)]
    pub seconds: f64,
    /// The settings' key the state is about.
    pub key: String,
}

/// A batch: its file, its folder and its entries.
pub struct Batch {
    pub file: PathBuf,
    pub dir: PathBuf,
    pub entries: Vec<Entry>,
}

impl Batch {
    /// Reads a festival file; its batch folder is the file's name without `.toml`, beside it.
    pub fn open(file: &Path) -> Result<Batch> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the batch file {}", file.display()))?;
        let festival: Festival = toml::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid batch file: a [defaults] table and [[entry]] tables with make's keys (see examples/festival.toml)",
                file.display()
            )
        })?;
        if festival.entries.is_empty() {
            bail!(
                "{} has no [[entry]] tables: nothing to make",
                file.display()
            );
        }
        // Absolute, so that the paths recorded in each film.toml hold from any folder.
        let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
        let base = std::fs::canonicalize(parent.unwrap_or(Path::new(".")))
            .with_context(|| format!("cannot resolve the folder of {}", file.display()))?;
        let base = base.as_path();
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
        let dir = base.join(slug(&stem.unwrap_or_default()).replace('.', "-"));
        let mut used = Vec::new();
        let mut entries = Vec::new();
        for (i, own) in festival.entries.iter().enumerate() {
            let number = i + 1;
            if own.film.is_some() || festival.defaults.film.is_some() {
                bail!("{}: entry {number}: `film` is not a batch key; the batch names each entry's folder itself", file.display());
            }
            let args = merge(&festival.defaults, own, base);
            if args.genre.is_none() {
                bail!(
                    "{}: entry {number} has no genre (give it one, or a default)",
                    file.display()
                );
            }
            let name = folder_name(&args, number, &used);
            used.push(name.clone());
            let key = fsutil::hash_bytes(format!("{args:?}").as_bytes());
            entries.push(Entry {
                number,
                dir: dir.join(&name),
                args,
                key,
            });
        }
        Ok(Batch {
            file: file.to_path_buf(),
            dir,
            entries,
        })
    }

    fn state_path(&self, number: usize) -> PathBuf {
        self.dir.join("state").join(format!("{number:03}.json"))
    }

    /// An entry's recorded state, if it has one for its current settings.
    pub fn state(&self, entry: &Entry) -> Option<EntryState> {
        let bytes = std::fs::read(self.state_path(entry.number)).ok()?;
        let state: EntryState = serde_json::from_slice(&bytes).ok()?;
        (state.key == entry.key).then_some(state)
    }

    fn record(&self, entry: &Entry, state: State, error: Option<String>, secs: f64) -> Result<()> {
        let record = EntryState {
            number: entry.number,
            title: title_of(&entry.args, entry.number),
            folder: entry_folder(entry),
            state,
            error,
            seconds: secs,
            key: entry.key.clone(),
        };
        fsutil::write_atomic(
            &self.state_path(entry.number),
            &serde_json::to_vec_pretty(&record)?,
        )
    }
}

fn entry_folder(entry: &Entry) -> String {
    entry
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn title_of(args: &FilmArgs, number: usize) -> String {
    args.title
        .clone()
        .unwrap_or_else(|| format!("Entry {number}"))
}

/// The entry's keys over the defaults; relative paths made relative to the file's folder.
fn merge(defaults: &FilmArgs, own: &FilmArgs, base: &Path) -> FilmArgs {
    let path = |p: &Option<PathBuf>, d: &Option<PathBuf>| {
        p.clone()
            .or_else(|| d.clone())
            .map(|p| if p.is_relative() { base.join(p) } else { p })
    };
    FilmArgs {
        genre: own.genre.or(defaults.genre),
        hours: own.hours.or(defaults.hours),
        title: own.title.clone().or_else(|| defaults.title.clone()),
        line: own.line.clone().or_else(|| defaults.line.clone()),
        prop: own.prop.clone().or_else(|| defaults.prop.clone()),
        seed: own.seed.or(defaults.seed),
        film: None,
        minutes: own.minutes.or(defaults.minutes),
        screenplay_model: match (&own.screenplay_model, &defaults.screenplay_model) {
            // A built-in model's name is not a path.
            (Some(m), _) | (None, Some(m)) if matches!(m.to_str(), Some("smollm2" | "gpt")) => {
                Some(m.clone())
            }
            (m, d) => path(m, d),
        },
        archive: path(&own.archive, &defaults.archive),
        soundfont: path(&own.soundfont, &defaults.soundfont),
        actors: path(&own.actors, &defaults.actors),
        frame: own.frame.or(defaults.frame),
        sampling: own.sampling.clone().or_else(|| defaults.sampling.clone()),
    }
}

/// The entry's folder name: its title's slug (or genre and number), made unique in the batch.
/// A slug never holds a slash or a dot, so the folder stays inside the batch folder.
fn folder_name(args: &FilmArgs, number: usize, used: &[String]) -> String {
    let base = match args.title.as_deref().map(slug).filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => format!(
            "{}-{number}",
            args.genre.map(|g| g.name()).unwrap_or("entry")
        ),
    };
    let mut name = base.clone();
    let mut n = 2;
    while used.contains(&name) || name == "state" || name == "report" {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// Makes a film (every stage that is not fresh) and succeeds only when its film.mp4 is cut.
/// The pipeline, on the floor above, hands it in.
pub type MakeFilm<'a> = &'a (dyn Fn(&Film, &Progress) -> Result<()> + Sync);

/// How to run a batch.
pub struct RunOptions {
    /// The whole batch's budget, shared among the entries still to make; `None`: each entry's
    /// own `hours`.
    pub hours: Option<f64>,
    pub retry_failed: bool,
    /// Only this entry (1-based), as a Slurm array task runs it.
    pub only: Option<usize>,
    /// Entries made side by side (the cores shared among them).
    pub jobs: usize,
}

/// Makes every entry that is not done, `jobs` at a time. One failing entry never stops the
/// others; Ctrl-C stops the batch after marking the entries at hand pending again.
pub fn run(batch: &Batch, opts: &RunOptions, make: MakeFilm, progress: &Progress) -> Result<()> {
    let started = Instant::now();
    let todo: Vec<&Entry> = batch
        .entries
        .iter()
        .filter(|e| opts.only.is_none_or(|n| n == e.number))
        .filter(|e| match batch.state(e).map(|s| s.state) {
            Some(State::Done) => !e.dir.join("film.mp4").is_file(),
            Some(State::Failed) => opts.retry_failed,
            _ => true,
        })
        .collect();
    if let Some(n) = opts.only {
        if n == 0 || n > batch.entries.len() {
            bail!(
                "entry {n}: the batch has entries 1 to {}",
                batch.entries.len()
            );
        }
    }
    // Workers take the next entry in the file's order; each entry's share of the budget is
    // what is left over the rounds of `jobs` entries still to come.
    let jobs = opts.jobs.max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let work = || -> Result<()> {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let Some(entry) = todo.get(i) else {
                return Ok(());
            };
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(());
            }
            let hours = opts.hours.map(|total| {
                let left = (total - started.elapsed().as_secs_f64() / 3600.0).max(0.0);
                left / (todo.len() - i).div_ceil(jobs) as f64
            });
            if let Err(e) = make_recorded(batch, entry, hours, make, progress) {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                return Err(e);
            }
        }
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.min(todo.len()))
            .map(|_| scope.spawn(work))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a batch worker crashed")))
            })
            .collect::<Result<Vec<()>>>()
    })?;
    Ok(())
}

/// Makes one entry and records how it went. Fails only when the batch must stop (Ctrl-C, or
/// its state cannot be written); an entry's own failure is recorded and is not an error.
fn make_recorded(
    batch: &Batch,
    entry: &Entry,
    hours: Option<f64>,
    make: MakeFilm,
    progress: &Progress,
) -> Result<()> {
    let title = title_of(&entry.args, entry.number);
    progress.info(format!(
        "batch: entry {} of {}: {title:?} in {}",
        entry.number,
        batch.entries.len(),
        entry.dir.display()
    ));
    batch.record(entry, State::Running, None, 0.0)?;
    let t = Instant::now();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        make_entry(entry, hours, make, progress)
    }))
    .unwrap_or_else(|_| Err(anyhow::anyhow!("benjamin crashed making this entry")));
    let secs = t.elapsed().as_secs_f64();
    match outcome {
        Ok(()) => batch.record(entry, State::Done, None, secs),
        Err(e) if crate::progress::interrupted() => {
            batch.record(entry, State::Pending, None, secs)?;
            Err(e.context("the batch was interrupted; run it again to resume"))
        }
        Err(e) => {
            progress.info(format!("batch: entry {} failed: {e:#}", entry.number));
            batch.record(entry, State::Failed, Some(format!("{e:#}")), secs)
        }
    }
}

/// Makes one entry's film in its folder, its settings exactly those of the file.
fn make_entry(
    entry: &Entry,
    hours: Option<f64>,
    make: MakeFilm,
    progress: &Progress,
) -> Result<()> {
    let mut args = entry.args.clone();
    args.film = Some(entry.dir.clone());
    if let Some(h) = hours {
        args.hours = Some(h.max(0.001));
    }
    std::fs::create_dir_all(entry.dir.parent().unwrap_or(Path::new(".")))?;
    let (film, _lock) = prepare(args.clone(), Path::new("."), progress)?;
    // A key taken out of the file is taken out of the film too.
    let mut settings = film.settings.clone();
    settings.line = args.line;
    settings.prop = args.prop;
    settings.archive = args.archive;
    settings.actors = args.actors;
    settings.soundfont = args.soundfont;
    settings.screenplay_model = args.screenplay_model;
    let film = Film::save(&film.dir, &settings)?;
    make(&film, progress)
}
