//! Which film folder a `make` means, and the settings it records there. The same command
//! run again resumes the same film: a film's recorded seed stands unless another is asked
//! for, and a new film never takes over a folder that holds another film (or anything else).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::{Film, FilmSettings, Frame, Genre, SamplingOptions};
use crate::fsutil::{slug, FolderLock, LOCK_FILE};
use crate::progress::Progress;

/// What `make` is asked for; every setting left out keeps the film's recorded one (or the
/// default, for a new film). A festival batch file's tables use the same keys.
#[derive(clap::Args, Debug, Default, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilmArgs {
    /// Genre of the film (required for a new film).
    #[arg(long, value_enum)]
    pub genre: Option<Genre>,
    /// Wall-clock budget for the whole run, in hours (0.1 is a quick demo). Default: 1 for a new film.
    #[arg(long, value_parser = crate::film::parse_hours)]
    pub hours: Option<f64>,
    /// The film's title (also names its folder under films/).
    #[arg(long)]
    pub title: Option<String>,
    /// A line of dialogue one character must say, word for word.
    #[arg(long)]
    pub line: Option<String>,
    /// A prop that must appear in the action.
    #[arg(long)]
    pub prop: Option<String>,
    /// Seed for every random choice; the same seed makes the same film. Default: picked and recorded.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The film folder. Default: films/<title>, else films/<genre> (films/<genre>-<seed> with
    /// --seed), so that the same command resumes the same film.
    #[arg(long)]
    pub film: Option<PathBuf>,
    /// Length of the film in minutes (about a page of screenplay a minute). Default: 4.
    #[arg(long, value_parser = crate::film::parse_minutes)]
    pub minutes: Option<f64>,
    /// The screenplay model: smollm2 (the built-in adapters on SmolLM2, default), gpt (the
    /// built-in small GPT: Sunspring's garble), or a folder made by `benjamin train screenplay`.
    #[arg(long)]
    pub screenplay_model: Option<PathBuf>,
    /// Archive of footage to pick shots from (default: $BENJAMIN_ARCHIVE or ~/.local/share/benjamin/archive).
    #[arg(long)]
    pub archive: Option<PathBuf>,
    /// The General MIDI SoundFont (.sf2) to play the score on (default: Debian's csound-soundfont).
    #[arg(long)]
    pub soundfont: Option<PathBuf>,
    /// Folder of actors (photos and consent records, see `benjamin actors add`) whose faces the faces stage swaps in.
    #[arg(long)]
    pub actors: Option<PathBuf>,
    /// Picture size and rate (`film.toml`'s `[frame]`; a batch file's `frame` key).
    #[arg(skip)]
    pub frame: Option<Frame>,
    /// The screenplay model's sampling (`film.toml`'s `[sampling]`; a batch file's `sampling`).
    #[arg(skip)]
    pub sampling: Option<SamplingOptions>,
}

/// How the folder was found, which says what the film in it must match.
enum Named {
    /// `--film`: the user chose the folder; what they ask for now updates its film.
    Explicitly,
    /// `films/<title>`: another title with the same folder name is another film.
    ByTitle(String),
    /// `films/<genre>[-<seed>]`.
    ByGenre(Genre, Option<u64>),
}

/// The folder `args` mean under `root` (`films/`), and how it was named.
fn folder(args: &FilmArgs, root: &Path) -> Result<(PathBuf, Named)> {
    if let Some(dir) = &args.film {
        return Ok((dir.clone(), Named::Explicitly));
    }
    if let Some(title) = &args.title {
        return Ok((root.join(slug(title)), Named::ByTitle(title.clone())));
    }
    let Some(genre) = args.genre else {
        bail!("a new film needs a genre: add --genre noir, --genre scifi or --genre romance (or name a film with --title or --film)");
    };
    let name = match args.seed {
        Some(seed) => format!("{genre}-{seed}"),
        None => genre.to_string(),
    };
    Ok((root.join(name), Named::ByGenre(genre, args.seed)))
}

/// Opens the film `args` mean (creating it for a new one), locks its folder for this run and
/// records the settings asked for.
pub fn prepare(args: FilmArgs, root: &Path, progress: &Progress) -> Result<(Film, FolderLock)> {
    let (dir, _) = folder(&args, root)?;
    if !Film::exists(&dir) {
        refuse_other_folder(&dir)?;
    }
    let lock = Film::lock(&dir)?;
    let asked = resolve(args, root)?;
    let film = Film::save(&asked.dir, &asked.settings)?;
    progress.info(format!(
        "film folder: {} (seed {})",
        film.dir.display(),
        film.settings.seed
    ));
    Ok((film, lock))
}

/// The film `args` mean, with the settings asked for, without touching the disk (what
/// `make --plan` plans).
pub fn resolve(args: FilmArgs, root: &Path) -> Result<Film> {
    let (dir, named) = folder(&args, root)?;
    let mut settings = if Film::exists(&dir) {
        let recorded = Film::open(&dir)?.settings;
        let other = match &named {
            Named::ByTitle(t) if *t != recorded.title => {
                Some(format!("the film \"{}\"", recorded.title))
            }
            Named::ByGenre(g, _) if *g != recorded.genre => {
                Some(format!("a {} film", recorded.genre))
            }
            Named::ByGenre(_, Some(s)) if *s != recorded.seed => {
                Some(format!("the film of seed {}", recorded.seed))
            }
            _ => None,
        };
        if let Some(other) = other {
            bail!(
                "{} already holds {other}; give this film another --title, or its own folder with --film DIR",
                dir.display()
            );
        }
        recorded
    } else {
        let Some(genre) = args.genre else {
            bail!("a new film needs a genre: add --genre noir, --genre scifi or --genre romance");
        };
        let title = args.title.clone().unwrap_or_else(|| "Untitled".to_string());
        let seed = args.seed.unwrap_or_else(fresh_seed);
        FilmSettings::new(title, genre, seed, 1.0)
    };
    settings.genre = args.genre.unwrap_or(settings.genre);
    settings.hours = args.hours.unwrap_or(settings.hours);
    settings.title = args.title.unwrap_or(settings.title);
    settings.seed = args.seed.unwrap_or(settings.seed);
    settings.minutes = args.minutes.unwrap_or(settings.minutes);
    settings.screenplay_model = args.screenplay_model.or(settings.screenplay_model);
    settings.line = args.line.or(settings.line);
    settings.prop = args.prop.or(settings.prop);
    settings.archive = args.archive.or(settings.archive);
    settings.actors = args.actors.or(settings.actors);
    settings.soundfont = args.soundfont.or(settings.soundfont);
    settings.frame = args.frame.unwrap_or(settings.frame);
    settings.sampling = args.sampling.unwrap_or(settings.sampling);
    settings.check()?;
    Ok(Film { dir, settings })
}

/// A new film goes into a new or empty folder, never one holding something else.
fn refuse_other_folder(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => bail!(
            "{} is not a folder benjamin can use for a film",
            dir.display()
        ),
    };
    // The lock file of an earlier try that stopped before writing film.toml does not count.
    if entries.flatten().any(|e| e.file_name() != LOCK_FILE) {
        bail!(
            "{} is not empty and holds no film (no film.toml); give --film a new or empty folder",
            dir.display()
        );
    }
    Ok(())
}

fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos as u64 ^ (std::process::id() as u64) << 32) % 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(title: Option<&str>, genre: Option<Genre>, seed: Option<u64>) -> FilmArgs {
        FilmArgs {
            title: title.map(String::from),
            genre,
            seed,
            ..Default::default()
        }
    }

    #[test]
    fn the_same_command_resumes_the_same_film_and_seed() {
        let root = tempfile::tempdir().unwrap();
        let p = Progress::hidden();
        let (first, lock) = prepare(ask(None, Some(Genre::Noir), None), root.path(), &p).unwrap();
        let err = prepare(ask(None, Some(Genre::Noir), None), root.path(), &p).unwrap_err();
        assert!(format!("{err:#}").contains("in use"), "{err:#}");
        drop(lock);
        let (again, _) = prepare(ask(None, Some(Genre::Noir), None), root.path(), &p).unwrap();
        assert_eq!(first.dir, again.dir);
        assert_eq!(first.settings.seed, again.settings.seed);
        let (titled, _) = prepare(
            ask(Some("Zone Out"), Some(Genre::Noir), None),
            root.path(),
            &p,
        )
        .unwrap();
        let (resumed, _) = prepare(ask(Some("Zone Out"), None, None), root.path(), &p).unwrap();
        assert_eq!(titled.dir, resumed.dir);
        assert_eq!(titled.settings.seed, resumed.settings.seed);
        let (reseeded, _) = prepare(ask(Some("Zone Out"), None, Some(7)), root.path(), &p).unwrap();
        assert_eq!(reseeded.settings.seed, 7);
    }

    #[test]
    fn another_film_never_takes_over_a_folder() {
        let root = tempfile::tempdir().unwrap();
        let p = Progress::hidden();
        prepare(ask(Some("/"), Some(Genre::Noir), None), root.path(), &p).unwrap();
        let err = prepare(ask(Some("!"), Some(Genre::Noir), None), root.path(), &p).unwrap_err();
        assert!(
            format!("{err:#}").contains("already holds the film \"/\""),
            "{err:#}"
        );
        let mut scifi = ask(Some("noir"), Some(Genre::Scifi), None);
        scifi.seed = Some(3);
        prepare(scifi, root.path(), &p).unwrap();
        let err = prepare(ask(None, Some(Genre::Noir), None), root.path(), &p).unwrap_err();
        assert!(format!("{err:#}").contains("scifi film"), "{err:#}");
        std::fs::create_dir_all(root.path().join("romance")).unwrap();
        std::fs::write(root.path().join("romance/notes.txt"), "mine").unwrap();
        let err = prepare(ask(None, Some(Genre::Romance), None), root.path(), &p).unwrap_err();
        assert!(format!("{err:#}").contains("not empty"), "{err:#}");
        assert_eq!(
            std::fs::read_to_string(root.path().join("romance/notes.txt")).unwrap(),
            "mine"
        );
    }
}
