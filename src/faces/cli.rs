//! The command-line parts of the faces: `actors`, `faces` and `models`.

use std::path::PathBuf;

use anyhow::Result;

use super::actors;
use crate::progress::{print_json, Progress};

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
        /// Replace the actor already in the folder this name gives (their photos and record).
        #[arg(long)]
        replace: bool,
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
                replace,
            } => {
                let actor = actors::add(&dir, &name, &photos, &consent, replace, progress)?;
                let n = actor.photos()?.len();
                if json {
                    print_json(
                        &serde_json::json!({"actor": actor.info.name, "id": actor.id, "dir": actor.dir, "photos": n}),
                    );
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
                        crate::outln!("{:<20} {:>4} photos  {consent}", a.info.name, photos);
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

#[derive(clap::Subcommand)]
pub enum FacesCommand {
    /// Find faces with MTCNN in a picture or a video: boxes, scores and five landmarks each.
    Detect {
        /// A picture (.png, .jpg) or a video.
        input: PathBuf,
        /// For a video: frames per second to look at (default: every frame).
        #[arg(long)]
        fps: Option<f64>,
        /// Smallest face to look for, in pixels.
        #[arg(long, default_value_t = 20.0)]
        min_size: f32,
    },
}

impl FacesCommand {
    pub fn run(self, progress: &Progress, json: bool) -> Result<()> {
        match self {
            FacesCommand::Detect {
                input,
                fps,
                min_size,
            } => {
                let mut det = crate::vision::mtcnn::Mtcnn::embedded(&crate::nn::device())?;
                det.min_size = min_size;
                let started = std::time::Instant::now();
                let frames = crate::vision::detect::detect_file(&det, &input, fps, progress)?;
                let seconds = started.elapsed().as_secs_f64();
                if json {
                    print_json(
                        &serde_json::json!({"input": input, "frames": frames, "seconds": seconds}),
                    );
                } else {
                    for f in &frames {
                        for d in &f.faces {
                            let marks: Vec<String> = d
                                .landmarks
                                .iter()
                                .map(|p| format!("({:.1},{:.1})", p[0], p[1]))
                                .collect();
                            crate::outln!(
                                "{:>8.3}s  box {:.1},{:.1} {:.1}x{:.1}  score {:.4}  landmarks {}",
                                f.time,
                                d.bbox[0],
                                d.bbox[1],
                                d.width(),
                                d.height(),
                                d.score,
                                marks.join(" ")
                            );
                        }
                    }
                    let n: usize = frames.iter().map(|f| f.faces.len()).sum();
                    progress.info(format!(
                        "{n} face(s) in {} frame(s), {:.1} frames/s",
                        frames.len(),
                        frames.len() as f64 / seconds.max(1e-9)
                    ));
                }
            }
        }
        Ok(())
    }
}

#[derive(clap::Subcommand)]
pub enum ModelsCommand {
    /// Convert the MTCNN weights of the facenet-pytorch 2.6.0 wheel (MIT) to safetensors.
    ImportMtcnn {
        /// The wheel (facenet_pytorch-2.6.0-py3-none-any.whl) or a folder with pnet.pt, rnet.pt and onet.pt.
        source: PathBuf,
        /// Where to write them (benjamin embeds models/mtcnn/mtcnn.safetensors when built).
        #[arg(long, default_value = "models/mtcnn/mtcnn.safetensors")]
        out: PathBuf,
    },
}

impl ModelsCommand {
    pub fn run(self, progress: &Progress) -> Result<()> {
        match self {
            ModelsCommand::ImportMtcnn { source, out } => {
                let n = super::weights::import_mtcnn(&source, &out)?;
                progress.info(format!("wrote {n} tensors to {}", out.display()));
            }
        }
        Ok(())
    }
}
