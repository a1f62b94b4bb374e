//! The archive: the footage a user feeds benjamin, cut into shots and indexed.
//!
//! It is a folder of plain files, no server: `archive.json` (which embedding model indexed
//! it), `sources/<id>.json` (one record per source: its shots, their measurements, text and
//! embeddings) and `thumbs/` (a keyframe per shot). Sources stay where they are.
//!
//! Entry points: [`Archive::open`], then [`Archive::add`] (ingest), [`Archive::sources`],
//! [`Archive::search`], [`Archive::remove`]; the `shots` stage reads it through [`Index`].

pub mod animate;
pub mod chunks;
pub mod cli;
pub mod detect;
pub mod embed;
mod ingest;
mod measure;
pub mod scan;
pub mod sidecar;
mod sparse;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::fsutil;
pub use detect::{DetectorConfig, Method, ShotDetector, ShotSpan, Transition};
pub use embed::{EmbedderId, SentenceEmbedder};
pub use ingest::{AddOptions, AddReport};

/// Layout version of the archive folder.
pub const ARCHIVE_FORMAT: u32 = 1;

/// archive.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveInfo {
    pub format: u32,
    /// The model that made the shots' embeddings; None when they were matched by keywords.
    #[serde(default)]
    pub embedder: Option<EmbedderId>,
}

/// One ingested source: a video or a still.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The first 16 hex digits of the content hash.
    pub id: String,
    pub path: PathBuf,
    /// BLAKE3 of the file.
    pub hash: String,
    /// Size and modification time of the file and its sidecars when ingested.
    pub fingerprint: String,
    pub width: u32,
    pub height: u32,
    pub frame_rate: f64,
    /// Seconds (0 for a still).
    pub duration: f64,
    pub still: bool,
    pub frames: usize,
    pub licence: Option<String>,
    pub attribution: Option<String>,
    #[serde(default)]
    pub sidecar: sidecar::Sidecar,
    pub detector: DetectorConfig,
    pub shots: Vec<ShotRecord>,
}

/// A shot and what it looks like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShotRecord {
    pub index: usize,
    /// Seconds into the source (a still: 0 and 0, held as long as needed).
    pub start: f64,
    pub end: f64,
    pub start_frame: usize,
    pub end_frame: usize,
    pub transition: Transition,
    /// Mean luma, 0 (black) to 1 (white).
    pub luma: f32,
    /// Standard deviation of luma, 0 to 1.
    pub contrast: f32,
    /// Mean saturation, 0 to 1.
    pub saturation: f32,
    /// False for black-and-white footage.
    pub colour: bool,
    /// Mean frame-to-frame luma change, 0 to 1.
    pub motion: f32,
    /// The hue that dominates the coloured pixels (red, orange, ..., or "none").
    pub hue: String,
    /// Keyframe thumbnail, relative to the archive folder.
    pub thumbnail: String,
    /// Sidecar text that goes with the shot (description, tags, subtitles in its span).
    pub text: String,
    /// Faces MTCNN finds in the shot's middle frame (absent in records made before it could).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faces: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
}

impl ShotRecord {
    pub fn seconds(&self) -> f64 {
        self.end - self.start
    }
}

/// An opened archive folder.
pub struct Archive {
    pub dir: PathBuf,
    pub info: ArchiveInfo,
}

/// A search result.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub source: String,
    pub path: PathBuf,
    pub shot: usize,
    pub start: f64,
    pub end: f64,
    pub score: f32,
    pub text: String,
}

impl Archive {
    /// Opens the archive in `dir`, creating an empty one when the folder has none.
    pub fn open(dir: &Path) -> Result<Archive> {
        let info_path = dir.join("archive.json");
        let info = if info_path.is_file() {
            let text = std::fs::read_to_string(&info_path)
                .with_context(|| format!("cannot read {}", info_path.display()))?;
            let info: ArchiveInfo = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not an archive description; was it edited?",
                    info_path.display()
                )
            })?;
            if info.format > ARCHIVE_FORMAT {
                bail!(
                    "{} was made by a newer benjamin (format {}); update benjamin",
                    dir.display(),
                    info.format
                );
            }
            info
        } else {
            ArchiveInfo {
                format: ARCHIVE_FORMAT,
                embedder: None,
            }
        };
        Ok(Archive {
            dir: dir.to_path_buf(),
            info,
        })
    }

    /// Opens an archive that must already hold footage (the shots stage's view).
    pub fn open_existing(dir: &Path) -> Result<Archive> {
        if !dir.join("archive.json").is_file() {
            bail!(
                "{} is not an archive yet; build one with `benjamin archive add VIDEOS --archive {}` (scripts/setup.sh builds a starter archive)",
                dir.display(),
                dir.display()
            );
        }
        Self::open(dir)
    }

    fn save_info(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.info)?;
        fsutil::write_atomic(&self.dir.join("archive.json"), text.as_bytes())
    }

    fn sources_dir(&self) -> PathBuf {
        self.dir.join("sources")
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.sources_dir().join(format!("{id}.json"))
    }

    /// Every source, in order of id. A damaged record is reported and left out.
    pub fn sources(&self) -> Result<Vec<SourceRecord>> {
        let dir = self.sources_dir();
        let mut out = Vec::new();
        if !dir.is_dir() {
            return Ok(out);
        }
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let record = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))
                .and_then(|t| {
                    serde_json::from_str::<SourceRecord>(&t).with_context(|| {
                        format!(
                            "{} is damaged; remove it and add its source again",
                            path.display()
                        )
                    })
                });
            match record {
                Ok(r) => out.push(r),
                Err(e) => crate::errln!("warning: {e:#}"),
            }
        }
        Ok(out)
    }

    fn write_record(&self, record: &SourceRecord) -> Result<()> {
        let text = serde_json::to_string(record)?;
        fsutil::write_atomic(&self.record_path(&record.id), text.as_bytes())
    }

    /// Removes sources named by id (or a prefix of it) or by path; returns what went.
    pub fn remove(&self, which: &[String]) -> Result<Vec<SourceRecord>> {
        let sources = self.sources()?;
        let mut removed = Vec::new();
        for w in which {
            let as_path = std::fs::canonicalize(w).ok();
            let matches: Vec<&SourceRecord> = sources
                .iter()
                .filter(|s| s.id.starts_with(w.as_str()) || Some(&s.path) == as_path.as_ref())
                .collect();
            match matches.as_slice() {
                [] => bail!(
                    "no source in {} matches {w}; see `benjamin archive list`",
                    self.dir.display()
                ),
                [one] => {
                    for shot in &one.shots {
                        let _ = std::fs::remove_file(self.dir.join(&shot.thumbnail));
                    }
                    std::fs::remove_file(self.record_path(&one.id)).with_context(|| {
                        format!("cannot remove {}", self.record_path(&one.id).display())
                    })?;
                    removed.push((*one).clone());
                }
                many => bail!("{w} matches {} sources; give more of the id", many.len()),
            }
        }
        Ok(removed)
    }

    /// The shots that best match `query`, best first.
    pub fn search(&self, query: &str, limit: usize) -> Result<(Vec<Hit>, Matching)> {
        let sources = self.sources()?;
        let index = Index::new(self, &sources)?;
        let (scores, matching) = index.similarity(query)?;
        let mut hits: Vec<Hit> = index
            .shots
            .iter()
            .zip(scores)
            .map(|((s, k), score)| {
                let shot = &sources[*s].shots[*k];
                Hit {
                    source: sources[*s].id.clone(),
                    path: sources[*s].path.clone(),
                    shot: shot.index,
                    start: shot.start,
                    end: shot.end,
                    score,
                    text: shot.text.chars().take(120).collect(),
                }
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(limit);
        Ok((hits, matching))
    }
}

/// How text was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Matching {
    Embeddings,
    Keywords,
}

/// Text similarity over every shot of an archive.
pub struct Index<'a> {
    /// (source, shot) pairs, in archive order.
    pub shots: Vec<(usize, usize)>,
    sources: &'a [SourceRecord],
    embedder: Option<SentenceEmbedder>,
}

impl<'a> Index<'a> {
    /// Loads the embedding model when the archive was indexed with it and it is still on
    /// disk; otherwise matching falls back to keywords.
    pub fn new(archive: &Archive, sources: &'a [SourceRecord]) -> Result<Index<'a>> {
        let embedder = match &archive.info.embedder {
            Some(id) => match SentenceEmbedder::locate()? {
                Some(e) if &e.id == id => Some(e),
                _ => None,
            },
            None => None,
        };
        let shots = sources
            .iter()
            .enumerate()
            .flat_map(|(s, src)| (0..src.shots.len()).map(move |k| (s, k)))
            .collect();
        Ok(Index {
            shots,
            sources,
            embedder,
        })
    }

    /// Similarity of `query` to every shot (in [`Index::shots`] order), and how it was measured.
    pub fn similarity(&self, query: &str) -> Result<(Vec<f32>, Matching)> {
        if let Some(e) = &self.embedder {
            let q = e.embed(&[query.to_string()])?.remove(0);
            let scores = self
                .shots
                .iter()
                .map(|&(s, k)| {
                    self.sources[s].shots[k]
                        .embedding
                        .as_deref()
                        .map(|v| embed::cosine(&q, v))
                        .unwrap_or(0.0)
                })
                .collect();
            return Ok((scores, Matching::Embeddings));
        }
        let q = embed::keywords(query);
        let scores = self
            .shots
            .iter()
            .map(|&(s, k)| {
                embed::keyword_similarity(&q, &embed::keywords(&self.sources[s].shots[k].text))
            })
            .collect();
        Ok((scores, Matching::Keywords))
    }
}
