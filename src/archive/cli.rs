//! `benjamin archive add | list | search | remove`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Subcommand;

use super::{AddOptions, Archive, DetectorConfig, Method, ShotDetector};
use crate::progress::Progress;

#[derive(Subcommand)]
pub enum ArchiveCommand {
    /// Ingest videos and stills (files or folders): detect shots, measure and index them.
    Add {
        /// Video files, images, or folders of them (searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        archive: ArchiveArg,
        #[command(flatten)]
        detector: DetectorArgs,
        /// Match text by keywords even if the sentence-embedding model is installed.
        #[arg(long)]
        keywords_only: bool,
    },
    /// List the sources and their shots (--json: every source with every shot).
    List {
        #[command(flatten)]
        archive: ArchiveArg,
    },
    /// Find the shots whose text best matches a description.
    Search {
        text: String,
        #[command(flatten)]
        archive: ArchiveArg,
        /// How many shots to show.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Detect the shots of one video without adding it (--json: cut frames and timing).
    Detect {
        video: PathBuf,
        #[command(flatten)]
        detector: DetectorArgs,
        /// With --json, add every frame's measurements (for tuning the detector).
        #[arg(long)]
        frame_stats: bool,
    },
    /// Turn stills into clips with slow zooms and pans (each credited like its still), to add.
    Animate {
        #[arg(required = true)]
        stills: Vec<PathBuf>,
        /// Folder for the clips (`<still>-<move>.mp4` and a JSON sidecar each).
        #[arg(long)]
        out: PathBuf,
        /// Length of each clip.
        #[arg(long, default_value_t = 8.0)]
        seconds: f64,
        #[arg(long, default_value_t = 960)]
        width: u32,
        #[arg(long, default_value_t = 540)]
        height: u32,
        #[arg(long, default_value_t = 24)]
        fps: u32,
    },
    /// Remove sources, by id (or its start) or by path. The files themselves are left alone.
    Remove {
        #[arg(required = true)]
        sources: Vec<String>,
        #[command(flatten)]
        archive: ArchiveArg,
    },
}

#[derive(clap::Args)]
pub struct DetectorArgs {
    /// Hard-cut detector: adaptive (camera motion does not cut) or content (fixed threshold).
    #[arg(long, value_enum, default_value_t = Method::Adaptive)]
    detector: Method,
    /// Content detector's threshold (0-255, HSV difference).
    #[arg(long, default_value_t = 27.0)]
    threshold: f32,
    /// Shortest shot, in frames.
    #[arg(long, default_value_t = 15)]
    min_shot: usize,
}

impl DetectorArgs {
    fn config(&self) -> DetectorConfig {
        DetectorConfig {
            method: self.detector,
            threshold: self.threshold,
            min_shot_frames: self.min_shot,
            ..Default::default()
        }
    }
}

#[derive(clap::Args)]
pub struct ArchiveArg {
    /// The archive folder (default: $BENJAMIN_ARCHIVE or ~/.local/share/benjamin/archive).
    #[arg(long)]
    archive: Option<PathBuf>,
}

impl ArchiveArg {
    fn dir(&self) -> PathBuf {
        self.archive
            .clone()
            .unwrap_or_else(crate::film::default_archive)
    }
}

/// Runs an archive command; `json` prints machine-readable output on stdout.
pub fn run(cmd: ArchiveCommand, json: bool, progress: &Progress) -> Result<()> {
    match cmd {
        ArchiveCommand::Add {
            paths,
            archive,
            detector,
            keywords_only,
        } => add(&paths, &archive, &detector, keywords_only, json, progress),
        ArchiveCommand::List { archive } => list(&archive, json),
        ArchiveCommand::Search {
            text,
            archive,
            limit,
        } => search(&text, &archive, limit, json, progress),
        ArchiveCommand::Detect {
            video,
            detector,
            frame_stats,
        } => detect(&video, &detector, frame_stats, json, progress),
        ArchiveCommand::Animate {
            stills,
            out,
            seconds,
            width,
            height,
            fps,
        } => {
            if width % 2 == 1 || height % 2 == 1 || fps == 0 || seconds <= 0.0 {
                bail!("--width and --height must be even, --fps and --seconds above 0");
            }
            let clips = super::animate::animate_stills(
                &stills,
                &out,
                seconds,
                (width, height, fps),
                progress,
            )?;
            progress.info(format!("{} clips in {}", clips.len(), out.display()));
            Ok(())
        }
        ArchiveCommand::Remove { sources, archive } => {
            let a = Archive::open_existing(&archive.dir())?;
            for r in a.remove(&sources)? {
                progress.info(format!("removed {} ({})", r.path.display(), &r.id[..12]));
            }
            Ok(())
        }
    }
}

fn add(
    paths: &[PathBuf],
    archive: &ArchiveArg,
    detector: &DetectorArgs,
    keywords_only: bool,
    json: bool,
    progress: &Progress,
) -> Result<()> {
    let mut a = Archive::open(&archive.dir())?;
    let opts = AddOptions {
        detector: detector.config(),
        keywords_only,
    };
    let report = a.add(paths, &opts, progress)?;
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        progress.info(format!(
            "{} added ({} shots), {} already in, {} skipped; text matched by {}; archive: {}",
            report.added.len(),
            report.shots,
            report.unchanged.len(),
            report.failed.len(),
            report.matching,
            a.dir.display()
        ));
    }
    if !report.failed.is_empty() && report.added.is_empty() && report.unchanged.is_empty() {
        bail!("nothing could be ingested");
    }
    Ok(())
}

fn list(archive: &ArchiveArg, json: bool) -> Result<()> {
    let a = Archive::open(&archive.dir())?;
    let sources = a.sources()?;
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&sources)?);
        return Ok(());
    }
    if sources.is_empty() {
        crate::outln!(
            "{} holds no footage; add some with `benjamin archive add`",
            a.dir.display()
        );
    }
    for s in &sources {
        let length = if s.still {
            "still".to_string()
        } else {
            format!("{:.1} s", s.duration)
        };
        crate::outln!(
            "{}  {}  {}x{} {}  {} shots  {}",
            &s.id[..12],
            s.path.display(),
            s.width,
            s.height,
            length,
            s.shots.len(),
            s.licence.as_deref().unwrap_or("licence unknown")
        );
    }
    Ok(())
}

fn search(
    text: &str,
    archive: &ArchiveArg,
    limit: usize,
    json: bool,
    progress: &Progress,
) -> Result<()> {
    let a = Archive::open_existing(&archive.dir())?;
    let (hits, matching) = a.search(text, limit)?;
    if json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "matching": matching, "hits": hits })
            )?
        );
        return Ok(());
    }
    if matching == super::Matching::Keywords {
        progress.info("matching by keywords (no sentence-embedding model for this archive)");
    }
    for h in hits {
        crate::outln!(
            "{:.3}  {} #{} {:.2}-{:.2} s  {}",
            h.score,
            h.path.display(),
            h.shot,
            h.start,
            h.end,
            h.text
        );
    }
    Ok(())
}

fn detect(
    video: &std::path::Path,
    detector: &DetectorArgs,
    frame_stats: bool,
    json: bool,
    progress: &Progress,
) -> Result<()> {
    let config = detector.config();
    let started = std::time::Instant::now();
    let bar = progress.spinner("scanning");
    let scan = super::chunks::scan(video, &config, |n| {
        if n % 256 == 0 {
            bar.set_message(format!("{n} frames"));
        }
        crate::progress::check_interrupted()
    })?;
    bar.finish_and_clear();
    let d = ShotDetector::new(config);
    let cuts = d.cut_frames(&scan.frames);
    let shots = d.shots(&scan.frames);
    let seconds = started.elapsed().as_secs_f64();
    let fps = scan.frames.len() as f64 / seconds.max(1e-9);
    if json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "frames": scan.frames.len(),
                "frame_rate": scan.frame_rate,
                "cuts": cuts,
                "shots": shots,
                "seconds": seconds,
                "frames_per_second": fps,
                "frame_stats": frame_stats.then(|| scan.frames.iter().map(|f| [f.content, f.lagged, f.luma, f.motion]).collect::<Vec<_>>()),
            }))?
        );
    } else {
        for s in &shots {
            let t = |f: usize| {
                scan.frames
                    .get(f)
                    .map(|x| x.time)
                    .unwrap_or(f as f64 / scan.frame_rate)
            };
            crate::outln!(
                "{:>6}-{:<6} {:>8.2}-{:<8.2} s  {:?}",
                s.start,
                s.end,
                t(s.start),
                t(s.end),
                s.transition
            );
        }
        progress.info(format!(
            "{} shots in {} frames ({:.0} frames/s)",
            shots.len(),
            scan.frames.len(),
            fps
        ));
    }
    Ok(())
}
