//! The voices: every line of dialogue spoken by its character's voice, and the timings that
//! everything downstream keys on (dialogue.json, subtitle cues, the audio of the edit list).
//!
//! Entry points: [`voice_screenplay`] for a screenplay, [`stage::voice_folder`] for what the
//! stage writes, [`VoiceStage`] in the pipeline, [`cli`] for `benjamin speak`.

pub mod cast;
pub mod cli;
pub mod engine;
pub mod prosody;
pub mod stage;
pub mod text;

pub use stage::{VoiceStage, DIALOGUE_FILE, VOICES_FILE};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::edl::{AudioRole, AudioTrack, Credits, Cue, EdlFragment};
use crate::film::Film;
use crate::fsutil;
use crate::items::{self, Items};
use crate::progress::Progress;
use crate::screenplay::fountain::{Element, Screenplay};
use crate::stage::StageId;
use cast::Voice;
use engine::SpeechEngine;

/// Pause between two lines, after a scene change, and after the last line of a scene.
pub const LINE_GAP: f64 = 0.35;
pub const SCENE_LEAD: f64 = 0.8;
pub const SCENE_TAIL: f64 = 1.0;

/// One spoken line, placed in story time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpokenLine {
    pub scene: usize,
    pub character: String,
    /// As written in the screenplay.
    pub text: String,
    /// As said (normalised).
    pub spoken: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parenthetical: Option<String>,
    /// WAV file, relative to the voice folder.
    pub file: String,
    pub start: f64,
    pub end: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneTiming {
    pub number: usize,
    pub start: f64,
    pub duration: f64,
}

/// dialogue.json: the timings of every line and scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DialogueTimings {
    pub engine: String,
    pub sample_rate: u32,
    pub scenes: Vec<SceneTiming>,
    pub lines: Vec<SpokenLine>,
    pub total_seconds: f64,
}

/// Seconds the action between lines holds the screen: a few words a second, 1 to 8 s.
fn action_seconds(text: &str) -> f64 {
    (text.split_whitespace().count() as f64 / 5.0).clamp(1.0, 8.0)
}

/// Where a film's dialogue.json (the scene and line timings) is.
pub fn timings_path(film: &Film) -> PathBuf {
    film.stage_dir(StageId::Voice.name()).join(DIALOGUE_FILE)
}

/// The voice stage's timings of a film, or None before it has run.
pub fn load_timings(film: &Film) -> Result<Option<DialogueTimings>> {
    let path = timings_path(film);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).map(Some).with_context(|| {
        format!(
            "{} is damaged; `benjamin run voice --film {}` rewrites it",
            path.display(),
            film.dir.display()
        )
    })
}

/// Peak-normalises to -1 dBFS (never clipping) and writes a mono 16-bit WAV atomically.
pub fn write_wav(path: &Path, samples: &[i16], rate: u32) -> Result<()> {
    let peak = samples
        .iter()
        .map(|s| (*s as i32).unsigned_abs())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let gain = 0.891 * i16::MAX as f64 / peak;
    let scaled = samples.iter().map(|s| {
        (*s as f64 * gain)
            .round()
            .clamp(i16::MIN as f64, i16::MAX as f64) as i16
    });
    crate::media::audio::write_wav(path, 1, rate, scaled)
}

/// The folder of the voiced lines inside the stage's folder.
pub const LINES_DIR: &str = "lines";

fn file_name(index: usize, character: &str) -> String {
    let slug = fsutil::slug(character);
    format!("{:03}-{slug}.wav", index + 1)
}

/// Voices every line of `screenplay` into `dir` with `cast`, and times it. A line voiced
/// before from the same text, voice and delivery is kept (see [`Items`]).
pub fn voice_screenplay(
    screenplay: &Screenplay,
    cast: &BTreeMap<String, Voice>,
    engine: &mut dyn SpeechEngine,
    dir: &Path,
    progress: &Progress,
) -> Result<DialogueTimings> {
    let total_lines: usize = screenplay
        .scenes
        .iter()
        .map(|s| {
            s.elements
                .iter()
                .filter(|e| matches!(e, Element::Dialogue(_)))
                .count()
        })
        .sum();
    let bar = progress.bar(total_lines as u64, "voicing", "lines");
    let rate = engine.sample_rate();
    let mut voiced: Items<f64> = Items::open(&dir.join(LINES_DIR));
    let mut lines = Vec::new();
    let mut scenes = Vec::new();
    let mut clock = 0.0;
    for scene in &screenplay.scenes {
        let start = clock;
        let mut t = start + SCENE_LEAD;
        for e in &scene.elements {
            crate::progress::check_interrupted()?;
            match e {
                Element::Action { text } => t += action_seconds(text),
                Element::Dialogue(d) => {
                    bar.inc(1);
                    let Some(spoken) = text::normalise(&d.text) else {
                        progress.info(format!(
                            "warning: scene {}: {} has a line with nothing to say ({:?}); skipped",
                            scene.number, d.character, d.text
                        ));
                        continue;
                    };
                    let voice = cast
                        .get(&d.character)
                        .cloned()
                        .unwrap_or_else(|| cast::voice_for(&d.character, cast::VARIANTS[0]));
                    let delivery = prosody::delivery(d.parenthetical.as_deref(), &spoken);
                    let name = file_name(lines.len(), &d.character);
                    let key = items::key_of(&(
                        &spoken,
                        &voice,
                        &delivery,
                        engine.name(),
                        rate,
                        env!("CARGO_PKG_VERSION"),
                    ));
                    let length = match voiced.get(&name, &key) {
                        Some(length) => length,
                        None => {
                            let samples =
                                engine.speak(&spoken, &voice, &delivery).with_context(|| {
                                    format!(
                                        "scene {}: {}'s line {:?}",
                                        scene.number, d.character, d.text
                                    )
                                })?;
                            if samples.iter().all(|s| *s == 0) {
                                progress.info(format!(
                                    "warning: scene {}: the engine said nothing for {:?}; skipped",
                                    scene.number, d.text
                                ));
                                continue;
                            }
                            write_wav(&voiced.dir().join(&name), &samples, rate)?;
                            let length = samples.len() as f64 / rate as f64;
                            voiced.put(&name, key, length)?;
                            length
                        }
                    };
                    let file = format!("{LINES_DIR}/{name}");
                    t += delivery.pause_before;
                    lines.push(SpokenLine {
                        scene: scene.number,
                        character: d.character.clone(),
                        text: d.text.clone(),
                        spoken,
                        parenthetical: d.parenthetical.clone(),
                        file,
                        start: t,
                        end: t + length,
                    });
                    t += length + LINE_GAP;
                }
                Element::Transition { .. } | Element::Centered { .. } => {}
            }
        }
        // A scene lasts as long as its lines and action, and at least its page-a-minute estimate.
        let duration = (t - start + SCENE_TAIL - LINE_GAP)
            .max(scene.estimated_seconds.min(30.0))
            .max(2.0);
        scenes.push(SceneTiming {
            number: scene.number,
            start,
            duration,
        });
        clock = start + duration;
    }
    bar.finish_and_clear();
    voiced.prune()?;
    if voiced.reused() > 0 {
        progress.info(format!(
            "voice: {} of {} lines kept from the last run",
            voiced.reused(),
            lines.len()
        ));
    }
    Ok(DialogueTimings {
        engine: engine.name(),
        sample_rate: rate,
        scenes,
        lines,
        total_seconds: clock,
    })
}

/// The part of the edit list the voices contribute: each line's audio and its subtitle.
pub fn edl_fragment(timings: &DialogueTimings, cast: &BTreeMap<String, Voice>) -> EdlFragment {
    EdlFragment {
        shots: Vec::new(),
        audio: timings
            .lines
            .iter()
            .map(|l| AudioTrack {
                file: PathBuf::from(&l.file),
                start: l.start,
                gain_db: 0.0,
                role: AudioRole::Dialogue,
            })
            .collect(),
        subtitles: timings
            .lines
            .iter()
            .map(|l| Cue {
                start: l.start,
                end: l.end + 0.3,
                text: l.text.clone(),
                speaker: Some(l.character.clone()),
            })
            .collect(),
        credits: Credits {
            voices: cast
                .iter()
                .map(|(name, v)| {
                    format!(
                        "{name} - {} voice {}+{} (espeak-ng, GPL-3.0)",
                        timings.engine, v.language, v.variant
                    )
                })
                .collect(),
            ..Default::default()
        },
    }
}
