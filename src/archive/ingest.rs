//! Adding footage: find the media in what the user named, skip what is already in, and for
//! each new source scan it, detect its shots, measure them, keep a thumbnail each, read the
//! sidecars and embed the text. One bad file is reported and skipped; each source's record
//! is written whole when it is done, so an interrupted ingest resumes where it stopped.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::detect::{DetectorConfig, ShotDetector, ShotSpan, Transition};
use super::embed::SentenceEmbedder;
use super::scan::{FrameStats, Scan};
use super::{sidecar, Archive, ShotRecord, SourceRecord};
use crate::fsutil;
use crate::progress::{check_interrupted, Progress};
use crate::vision::mtcnn::Mtcnn;

const VIDEO_EXTS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ogv", "ogg", "ts", "flv", "wmv",
    "3gp", "gif",
];
const IMAGE_EXTS: &[&str] = &["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"];

/// How to ingest.
#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    pub detector: DetectorConfig,
    /// Skip the sentence-embedding model even when it is installed.
    pub keywords_only: bool,
}

/// What an ingest did.
#[derive(Debug, Default, Serialize)]
pub struct AddReport {
    pub added: Vec<PathBuf>,
    pub unchanged: Vec<PathBuf>,
    /// Files that could not be ingested, with why.
    pub failed: Vec<(PathBuf, String)>,
    pub shots: usize,
    /// "embeddings" or "keywords".
    pub matching: String,
}

fn is_media(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .is_some_and(|e| VIDEO_EXTS.contains(&e.as_str()) || IMAGE_EXTS.contains(&e.as_str()))
}

/// The media files in `inputs` (files as given, folders searched recursively; sidecars and
/// other files in folders are left alone), and the paths that could not be read with why:
/// a symlink loop or an unreadable folder is skipped, never the end of the whole add.
fn collect(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut walk = Walk::default();
    for input in inputs {
        if input.is_dir() {
            walk.folder(input);
        } else if input.symlink_metadata().is_ok() {
            walk.found.push(input.clone());
        } else {
            walk.skip(input, "it does not exist".into());
        }
    }
    let mut files = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in std::mem::take(&mut walk.found) {
        match std::fs::canonicalize(&p) {
            Ok(c) if seen.insert(c.clone()) => files.push(c),
            Ok(_) => {}
            Err(e) => walk.skip(&p, format!("cannot resolve it: {e}")),
        }
    }
    (files, walk.skipped)
}

#[derive(Default)]
struct Walk {
    found: Vec<PathBuf>,
    skipped: Vec<(PathBuf, String)>,
    /// Folders searched, by their real path: a folder reached twice (a symlink loop) is
    /// searched once.
    searched: std::collections::HashSet<PathBuf>,
}

impl Walk {
    fn skip(&mut self, path: &Path, why: String) {
        self.skipped.push((path.to_path_buf(), why));
    }

    fn folder(&mut self, dir: &Path) {
        let real = match std::fs::canonicalize(dir) {
            Ok(r) => r,
            Err(e) => return self.skip(dir, format!("cannot resolve it: {e}")),
        };
        if !self.searched.insert(real) {
            return self.skip(dir, "a folder already searched (a symlink loop)".into());
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => return self.skip(dir, format!("cannot list it: {e}")),
        };
        let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                self.folder(&p);
            } else if is_media(&p) {
                self.found.push(p);
            }
        }
    }
}

/// Size and mtime of the source and of every sidecar it has now.
fn fingerprint(path: &Path) -> Result<String> {
    let mut parts = vec![fsutil::fingerprint_file(path)?];
    for side in sidecar::existing(path) {
        let name = side.file_name().unwrap_or_default().to_string_lossy();
        parts.push(format!("{name}={}", fsutil::fingerprint_file(&side)?));
    }
    Ok(parts.join(";"))
}

impl Archive {
    /// Ingests the media in `inputs` (files or folders).
    pub fn add(
        &mut self,
        inputs: &[PathBuf],
        opts: &AddOptions,
        progress: &Progress,
    ) -> Result<AddReport> {
        let _lock = fsutil::FolderLock::acquire(&self.dir, "the archive")?;
        let (files, unreadable) = collect(inputs);
        std::fs::create_dir_all(self.dir.join("sources"))
            .with_context(|| format!("cannot create the archive in {}", self.dir.display()))?;
        std::fs::create_dir_all(self.dir.join("thumbs"))
            .with_context(|| format!("cannot create {}", self.dir.join("thumbs").display()))?;
        fsutil::remove_partials(&self.dir.join("sources"));
        fsutil::remove_partials(&self.dir.join("thumbs"));

        // Keep one way of matching across the whole archive: embeddings only if every
        // source already has them (or the archive is new).
        let embedder = if opts.keywords_only {
            None
        } else {
            SentenceEmbedder::locate()?
        };
        let existing = self.sources()?;
        let embedder = match (embedder, &self.info.embedder) {
            (Some(e), Some(id)) if &e.id == id => Some(e),
            (Some(e), None) if existing.is_empty() => Some(e),
            _ => None,
        };
        if embedder.is_none() && !existing.is_empty() && self.info.embedder.is_some() {
            progress.info("the embedding model that indexed this archive is not installed: new footage is matched by keywords only");
        }
        let mut report = AddReport {
            matching: if embedder.is_some() {
                "embeddings"
            } else {
                "keywords"
            }
            .into(),
            ..Default::default()
        };
        for (path, why) in unreadable {
            progress.info(format!("skipped {}: {why}", path.display()));
            report.failed.push((path, why));
        }
        if embedder.is_none() && self.info.embedder.is_none() {
            progress.info("no sentence-embedding model installed (scripts/setup.sh fetches all-MiniLM-L6-v2): text is matched by keywords");
        }
        // In a mixed archive the record of the model stays; new shots carry no embedding.
        if let Some(e) = &embedder {
            self.info.embedder = Some(e.id.clone());
        }
        self.save_info()?;

        let detector = Mtcnn::embedded(&crate::nn::device())?;
        let files_bar = progress.bar(files.len() as u64, "files", "files");
        let mut existing = existing;
        for (n, path) in files.iter().enumerate() {
            check_interrupted()?;
            files_bar.set_position(n as u64);
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let outcome = self.add_one(
                path,
                &existing,
                opts,
                embedder.as_ref(),
                Some(&detector),
                progress,
            );
            match outcome {
                Ok(Some(record)) => {
                    progress.info(format!("added {name}: {} shots", record.shots.len()));
                    report.shots += record.shots.len();
                    report.added.push(path.clone());
                    existing.retain(|r| r.id != record.id && r.path != record.path);
                    existing.push(record);
                }
                Ok(None) => report.unchanged.push(path.clone()),
                Err(e) => {
                    if check_interrupted().is_err() {
                        files_bar.abandon();
                        return Err(e);
                    }
                    let why = format!("{e:#}");
                    progress.info(format!("skipped {}: {why}", path.display()));
                    report.failed.push((path.clone(), why));
                }
            }
        }
        files_bar.finish_and_clear();
        Ok(report)
    }

    /// Ingests one file; None when it is already in, unchanged.
    fn add_one(
        &self,
        path: &Path,
        existing: &[SourceRecord],
        opts: &AddOptions,
        embedder: Option<&SentenceEmbedder>,
        faces: Option<&Mtcnn>,
        progress: &Progress,
    ) -> Result<Option<SourceRecord>> {
        let print = fingerprint(path)?;
        if existing
            .iter()
            .any(|r| r.path == path && r.fingerprint == print && r.detector == opts.detector)
        {
            return Ok(None);
        }
        let hash = fsutil::hash_file(path)?;
        if let Some(same) = existing
            .iter()
            .find(|r| r.hash == hash && r.path != path && r.path.exists())
        {
            progress.info(format!(
                "{} is the same footage as {}; not added twice",
                path.display(),
                same.path.display()
            ));
            return Ok(None);
        }
        let id: String = hash.chars().take(16).collect();
        let side = sidecar::read(path)?;
        let info = crate::media::source::probe(path)?;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let expected = if info.still {
            1
        } else {
            (info.duration * info.frame_rate).ceil().max(1.0) as u64
        };
        let bar = progress.bar(expected, &short(&name), "frames");
        let scan = super::chunks::scan(path, &opts.detector, |done| {
            bar.set_position(done as u64);
            check_interrupted()
        });
        bar.finish_and_clear();
        let scan = scan?;
        let spans = if info.still {
            vec![ShotSpan {
                start: 0,
                end: 1,
                transition: Transition::Start,
            }]
        } else {
            ShotDetector::new(opts.detector).shots(&scan.frames)
        };
        if spans.is_empty() {
            anyhow::bail!("{} shows nothing but black", path.display());
        }
        let mut shots = Vec::with_capacity(spans.len());
        for (k, span) in spans.iter().enumerate() {
            let thumb = format!("thumbs/{id}-{k:04}.jpg");
            write_thumbnail(&scan, (span.start + span.end) / 2, &self.dir.join(&thumb))?;
            let (start, end) = if info.still {
                (0.0, 0.0)
            } else {
                (frame_time(&scan, span.start), frame_time(&scan, span.end))
            };
            let m = measure(&scan.frames[span.start..span.end]);
            shots.push(ShotRecord {
                index: k,
                start,
                end,
                start_frame: span.start,
                end_frame: span.end,
                transition: span.transition,
                luma: m.luma,
                contrast: m.contrast,
                saturation: m.saturation,
                colour: m.saturation > 0.08,
                motion: m.motion,
                hue: m.hue.into(),
                thumbnail: thumb,
                text: side.text_for(start, if info.still { f64::MAX } else { end }),
                faces: None,
                embedding: None,
            });
        }
        if let Some(det) = faces {
            for shot in &mut shots {
                check_interrupted()?;
                let middle = (shot.start + shot.end) / 2.0;
                shot.faces = Some(count_faces(det, path, info.still, middle, scan.frame_rate)?);
            }
        }
        if let Some(e) = embedder {
            let texts: Vec<String> = shots.iter().map(|s| s.text.clone()).collect();
            let vectors = e
                .embed(&texts)
                .with_context(|| format!("cannot embed the text of {}", path.display()))?;
            for (shot, v) in shots.iter_mut().zip(vectors) {
                // A shot with no text gets no embedding: it must not look similar to everything.
                if !shot.text.trim().is_empty() {
                    shot.embedding = Some(v);
                }
            }
        }
        let record = SourceRecord {
            id,
            path: path.to_path_buf(),
            hash,
            fingerprint: print,
            width: info.width,
            height: info.height,
            frame_rate: if info.still { 0.0 } else { scan.frame_rate },
            duration: info.duration,
            still: info.still,
            frames: scan.frames.len(),
            licence: side.licence.clone(),
            attribution: side.attribution.clone(),
            sidecar: sidecar::Sidecar {
                subtitles: Vec::new(),
                ..side
            },
            detector: opts.detector,
            shots,
        };
        if record.licence.is_none() {
            progress.info(format!(
                "note: {} has no licence recorded; add {}.json with \"licence\" and \"attribution\" so the credits are right",
                path.display(),
                path.with_extension("").display()
            ));
        }
        // Another path with the same content was removed from disk: this record replaces it.
        for old in existing
            .iter()
            .filter(|r| r.path == path && r.id != record.id)
        {
            let _ = self.remove(std::slice::from_ref(&old.id));
        }
        self.write_record(&record)?;
        Ok(Some(record))
    }
}

fn short(name: &str) -> String {
    if name.chars().count() <= 12 {
        name.to_string()
    } else {
        name.chars().take(11).chain(std::iter::once('…')).collect()
    }
}

/// Source time of a frame index (the end of the source for one past the last frame).
fn frame_time(scan: &Scan, frame: usize) -> f64 {
    match scan.frames.get(frame) {
        Some(f) => f.time,
        None => {
            let last = scan.frames.last().map(|f| f.time).unwrap_or(0.0);
            last + 1.0 / scan.frame_rate.max(1.0)
        }
    }
}

struct Measures {
    luma: f32,
    contrast: f32,
    saturation: f32,
    motion: f32,
    hue: &'static str,
}

const HUES: [&str; 12] = [
    "red", "orange", "yellow", "lime", "green", "teal", "cyan", "azure", "blue", "violet",
    "magenta", "rose",
];

fn measure(frames: &[FrameStats]) -> Measures {
    let n = frames.len().max(1) as f32;
    let mean = |f: fn(&FrameStats) -> f32| frames.iter().map(f).sum::<f32>() / n;
    let mut hue = [0f32; 12];
    for f in frames {
        for (h, v) in hue.iter_mut().zip(f.hue) {
            *h += v * f.saturation;
        }
    }
    let saturation = mean(|f| f.saturation) / 255.0;
    let (best, _) = hue.iter().enumerate().fold(
        (0, 0f32),
        |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
    );
    Measures {
        luma: mean(|f| f.luma) / 255.0,
        contrast: mean(|f| f.contrast) / 255.0,
        saturation,
        // The first frame's difference is the cut into the shot, not motion within it.
        motion: frames.iter().skip(1).map(|f| f.motion).sum::<f32>()
            / (frames.len().saturating_sub(1).max(1) as f32)
            / 255.0,
        hue: if saturation > 0.08 {
            HUES[best]
        } else {
            "none"
        },
    }
}

/// Faces clear enough to count (MTCNN's score and at least 20 pixels tall at 640 wide).
fn count_faces(det: &Mtcnn, path: &Path, still: bool, at: f64, fps: f64) -> Result<usize> {
    let mut picture = None;
    if still {
        picture = Some(fsutil::read_rgb_image(path)?);
    } else {
        crate::vision::detect::for_each_frame(path, at, 1, fps.max(1.0), |_, img| {
            picture = Some(img.clone());
            Ok(())
        })?;
    }
    let Some(mut img) = picture else {
        return Ok(0);
    };
    if img.width() > 640 {
        let h = (img.height() as u64 * 640 / img.width() as u64).max(1) as u32;
        img = image::imageops::resize(&img, 640, h, image::imageops::FilterType::Triangle);
    }
    let found = det.detect_rgb(&img)?;
    Ok(found
        .iter()
        .filter(|d| d.score >= 0.95 && d.height() >= 20.0)
        .count())
}

fn write_thumbnail(scan: &Scan, frame: usize, path: &Path) -> Result<()> {
    let Some(p) = scan.picture_near(frame) else {
        return Ok(());
    };
    let img = image::RgbImage::from_raw(p.width, p.height, p.rgb.clone())
        .context("a thumbnail of the wrong size")?;
    let file = fsutil::AtomicFile::new(path)?;
    img.save_with_format(file.path(), image::ImageFormat::Jpeg)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.commit()
}
