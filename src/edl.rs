//! The edit decision list the cut reads: shots, sound, subtitles, title and credits, and the
//! fragment of it each stage contributes (`<stage>/edl.json`).
//!
//! Times of sound and subtitles are story time: 0 is the first frame of the first shot. The
//! cut places the title card before it and shifts everything by its length.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::film::{Frame, Genre};
use crate::fsutil;
use crate::media::source::{self, VideoInfo};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditList {
    pub title: String,
    pub genre: Genre,
    /// Picture size and rate of the film; 1280x720 at 24 fps when absent.
    #[serde(default)]
    pub frame: Frame,
    pub shots: Vec<Shot>,
    #[serde(default)]
    pub audio: Vec<AudioTrack>,
    #[serde(default)]
    pub subtitles: Vec<Cue>,
    #[serde(default)]
    pub credits: Credits,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shot {
    /// A video or a still image; relative paths are relative to the edit list's folder.
    pub source: PathBuf,
    /// Seconds into the source (a still is held for `out - in`).
    #[serde(rename = "in")]
    pub in_point: f64,
    #[serde(rename = "out")]
    pub out_point: f64,
    #[serde(default)]
    pub scene: u32,
    pub licence: String,
    pub attribution: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioRole {
    Dialogue,
    Music,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioTrack {
    /// Any sound file FFmpeg reads (WAV from the voice and music stages).
    pub file: PathBuf,
    /// Story time at which it starts, in seconds.
    pub start: f64,
    #[serde(default)]
    pub gain_db: f64,
    pub role: AudioRole,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
}

/// Credits beyond the shots (which the cut lists from the shots themselves).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Credits {
    #[serde(default)]
    pub voices: Vec<String>,
    #[serde(default)]
    pub music: Vec<String>,
    #[serde(default)]
    pub extra: Vec<String>,
}

/// A shot checked against its source.
#[derive(Debug, Clone)]
pub struct CheckedShot {
    pub shot: Shot,
    pub info: VideoInfo,
}

impl EditList {
    /// Reads an edit list; relative paths inside it become relative to its folder.
    pub fn load(path: &Path) -> Result<EditList> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the edit list {}", path.display()))?;
        let mut edl: EditList = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid edit list (see examples/demo/edl.json for the format)",
                path.display()
            )
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        edl.resolve_paths(base);
        Ok(edl)
    }

    pub fn resolve_paths(&mut self, base: &Path) {
        resolve_paths(&mut self.shots, &mut self.audio, base);
    }

    /// Checks every entry before any output is written, naming the entry at fault.
    pub fn check(&self) -> Result<Vec<CheckedShot>> {
        if self.shots.is_empty() {
            bail!("the edit list has no shots; it needs at least one");
        }
        if self.frame.width < 16
            || self.frame.height < 16
            || self.frame.fps == 0
            || self.frame.width % 2 == 1
            || self.frame.height % 2 == 1
        {
            bail!("frame {}x{} at {} fps is not usable: width and height must be even and at least 16", self.frame.width, self.frame.height, self.frame.fps);
        }
        let frame_len = 1.0 / self.frame.fps as f64;
        let mut checked = Vec::with_capacity(self.shots.len());
        for (i, shot) in self.shots.iter().enumerate() {
            let name = format!("shot {} ({})", i + 1, shot.source.display());
            if !(shot.in_point >= 0.0 && shot.in_point.is_finite() && shot.out_point.is_finite()) {
                bail!(
                    "{name}: in ({}) must be a time of zero or more seconds",
                    shot.in_point
                );
            }
            if shot.out_point - shot.in_point < frame_len * 0.5 {
                bail!(
                    "{name}: in {:.3} s must come before out {:.3} s by at least one frame",
                    shot.in_point,
                    shot.out_point
                );
            }
            let info = source::probe(&shot.source).with_context(|| {
                format!("{name}: cannot use this source; fix the path or remove the shot")
            })?;
            if !info.still && info.duration > 0.0 && shot.out_point > info.duration + frame_len {
                bail!(
                    "{name}: out {:.3} s is past the end of the source ({:.3} s long)",
                    shot.out_point,
                    info.duration
                );
            }
            checked.push(CheckedShot {
                shot: shot.clone(),
                info,
            });
        }
        for (i, track) in self.audio.iter().enumerate() {
            if !track.file.is_file() {
                bail!(
                    "audio track {} ({}): file not found",
                    i + 1,
                    track.file.display()
                );
            }
            if !(track.start >= 0.0 && track.start.is_finite() && track.gain_db.is_finite()) {
                bail!(
                    "audio track {} ({}): start and gain must be numbers, start zero or more",
                    i + 1,
                    track.file.display()
                );
            }
        }
        for (i, cue) in self.subtitles.iter().enumerate() {
            if !(cue.start >= 0.0 && cue.end > cue.start) {
                bail!(
                    "subtitle {} ({:?}): start {} must be zero or more and before end {}",
                    i + 1,
                    cue.text,
                    cue.start,
                    cue.end
                );
            }
        }
        Ok(checked)
    }

    /// Story length in seconds: the shots end to end.
    pub fn story_seconds(&self) -> f64 {
        self.shots.iter().map(|s| s.out_point - s.in_point).sum()
    }
}

/// Relative sources become relative to `base` (the folder of the file that named them).
fn resolve_paths(shots: &mut [Shot], audio: &mut [AudioTrack], base: &Path) {
    let paths = shots
        .iter_mut()
        .map(|s| &mut s.source)
        .chain(audio.iter_mut().map(|a| &mut a.file));
    for path in paths.filter(|p| p.is_relative()) {
        *path = base.join(&*path);
    }
}

/// Name of the fragment each stage that contributes to the edit list writes into its folder.
pub const FRAGMENT: &str = "edl.json";

/// The part of an edit list one stage contributes. A later stage's shots replace an earlier
/// one's (faces swaps clips in place of the originals); sound, subtitles and credits add up.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdlFragment {
    #[serde(default)]
    pub shots: Vec<Shot>,
    #[serde(default)]
    pub audio: Vec<AudioTrack>,
    #[serde(default)]
    pub subtitles: Vec<Cue>,
    #[serde(default)]
    pub credits: Credits,
}

impl EdlFragment {
    /// The fragment's file in a stage's folder.
    pub fn path(stage_dir: &Path) -> PathBuf {
        stage_dir.join(FRAGMENT)
    }

    /// Reads the fragment in a stage's folder; its relative paths come back resolved against
    /// that folder.
    pub fn load(stage_dir: &Path) -> Result<EdlFragment> {
        let path = Self::path(stage_dir);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut frag: EdlFragment = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid edit-list fragment; rerun the stage that wrote it",
                path.display()
            )
        })?;
        resolve_paths(&mut frag.shots, &mut frag.audio, stage_dir);
        Ok(frag)
    }

    /// Writes the fragment into a stage's folder (atomically) and returns its path. Relative
    /// paths are relative to that folder.
    pub fn write(&self, stage_dir: &Path) -> Result<PathBuf> {
        let path = Self::path(stage_dir);
        fsutil::write_atomic(&path, &serde_json::to_vec_pretty(self)?)?;
        Ok(path)
    }
}
