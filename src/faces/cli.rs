//! The command-line parts of the faces: `actors`, `faces` and `models`.

use std::path::PathBuf;

use anyhow::Result;

use super::actors;
use crate::progress::Progress;

/// Default actors folder (relative to where benjamin runs).
pub const DEFAULT_ACTORS: &str = "actors";

#[derive(clap::Subcommand)]
pub enum ActorsCommand {
    /// Register an actor: their face photos (a folder of .png/.jpg, or a video) and their consent record.
    Add {
        /// The actor's name, as in the consent record.
        name: String,
        /// A folder of photos of the actor's face, or a video of it (a frame every 0.5 s is kept).
        #[arg(long)]
        photos: PathBuf,
        /// The consent record (TOML; see the README): nothing is added without a valid one.
        #[arg(long)]
        consent: PathBuf,
        #[arg(long, default_value = DEFAULT_ACTORS)]
        actors: PathBuf,
    },
    /// List the actors, their photos and whether their consent is valid today.
    List {
        #[arg(long, default_value = DEFAULT_ACTORS)]
        actors: PathBuf,
    },
    /// Remove an actor with their photos and consent record.
    Remove {
        name: String,
        #[arg(long, default_value = DEFAULT_ACTORS)]
        actors: PathBuf,
    },
}

impl ActorsCommand {
    pub fn run(self, progress: &Progress, json: bool) -> Result<()> {
        match self {
            ActorsCommand::Add {
                name,
                photos,
                consent,
                actors: dir,
            } => {
                let actor = actors::add(&dir, &name, &photos, &consent, progress)?;
                let n = actor.photos()?.len();
                if json {
                    print_json(&serde_json::json!({"actor": actor.info.name, "id": actor.id, "dir": actor.dir, "photos": n}));
                } else {
                    progress.info(format!(
                        "added {} with {n} photo(s) in {}",
                        actor.info.name,
                        actor.dir.display()
                    ));
                }
            }
            ActorsCommand::List { actors: dir } => {
                let rows = actors::list(&dir)?;
                let mut out = Vec::new();
                for a in &rows {
                    let photos = a.photos().map(|p| p.len()).unwrap_or(0);
                    let consent = match a.consent() {
                        Ok(c) => format!("consent valid (signed by {} on {})", c.signed_by, c.date),
                        Err(e) => format!("NO VALID CONSENT: {e:#}"),
                    };
                    out.push(serde_json::json!({"id": a.id, "name": a.info.name, "photos": photos, "consent": consent}));
                    if !json {
                        println!("{:<20} {:>4} photos  {consent}", a.info.name, photos);
                    }
                }
                if json {
                    print_json(&out);
                } else if rows.is_empty() {
                    progress.info(format!("no actors in {}", dir.display()));
                }
            }
            ActorsCommand::Remove { name, actors: dir } => {
                let actor = actors::remove(&dir, &name)?;
                progress.info(format!(
                    "removed {} ({})",
                    actor.info.name,
                    actor.dir.display()
                ));
            }
        }
        Ok(())
    }
}

fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("summary is serialisable")
    );
}
