//! The music stage: reads the screenplay and the voice timings, composes a cue per scene and
//! writes `music/score.mid`, `music/cues/scene-NNN.wav`, `music/cues.json` and its part of
//! the edit list (`music/edl.json`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::render::{self, LoadedFont, DEFAULT_SOUNDFONT, FADE_IN, FADE_OUT, SAMPLE_RATE};
use super::score::Score;
use super::{compose_score, midi, scene_briefs, MelodyModel};
use crate::edl::{AudioRole, AudioTrack, Credits, EdlFragment};
use crate::film::Film;
use crate::fsutil;
use crate::items::{key_of, Items};
use crate::manifest::StageInputs;
use crate::progress::Progress;
use crate::stage::{hash_inputs, Blocked, Stage, StageContext, StageId, StageOutcome};

pub const MIDI_FILE: &str = "score.mid";
pub const CUES_FILE: &str = "cues.json";
pub const CUES_DIR: &str = "cues";
/// Level of the score in the mix, before the cut ducks it under dialogue.
pub const MUSIC_GAIN_DB: f64 = -3.0;

/// One cue in cues.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CueEntry {
    pub scene: usize,
    /// WAV file, relative to the music folder.
    pub file: String,
    pub start: f64,
    pub duration: f64,
    pub key: String,
    pub tempo: f64,
    pub meter: String,
    pub tension: f64,
    /// Chord names with their start in seconds from the cue's start.
    pub chords: Vec<(f64, String)>,
    pub melody_notes: usize,
    pub passing_tones: usize,
}

/// cues.json: the cues and what they were made with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CueSheet {
    pub genre: String,
    pub seed: u64,
    pub home_key: String,
    pub sample_rate: u32,
    pub soundfont: PathBuf,
    /// Instruments: name, GM program (0-based), channel (0-based).
    pub band: Vec<(String, u8, u8)>,
    pub cues: Vec<CueEntry>,
    /// Share of melody notes that fit their chord or are marked passing tones.
    pub melody_fit: f64,
}

pub fn cue_file(scene: usize) -> String {
    format!("{CUES_DIR}/{}", cue_name(scene))
}

fn cue_name(scene: usize) -> String {
    format!("scene-{scene:03}.wav")
}

/// The cue sheet of a score.
pub fn cue_sheet(score: &Score, soundfont: &Path) -> CueSheet {
    let (fit, total) = super::melody::score_harmony_fit(score);
    CueSheet {
        genre: score.genre.to_string(),
        seed: score.seed,
        home_key: score.home_key.name(),
        sample_rate: SAMPLE_RATE,
        soundfont: soundfont.to_path_buf(),
        band: score
            .band
            .iter()
            .map(|i| (i.name.clone(), i.program, i.channel))
            .collect(),
        cues: score
            .cues
            .iter()
            .map(|c| {
                let melody = c.melody().map(|m| m.notes.as_slice()).unwrap_or(&[]);
                CueEntry {
                    scene: c.scene,
                    file: cue_file(c.scene),
                    start: c.start,
                    duration: c.duration,
                    key: c.plan.key.name(),
                    tempo: c.plan.tempo,
                    meter: format!("{}/4", c.plan.beats),
                    tension: (c.tension * 1000.0).round() / 1000.0,
                    chords: c
                        .chords
                        .iter()
                        .map(|s| {
                            let at = s.start as f64 * c.seconds_per_tick();
                            ((at * 1000.0).round() / 1000.0, s.chord.name())
                        })
                        .collect(),
                    melody_notes: melody.len(),
                    passing_tones: melody.iter().filter(|n| n.passing).count(),
                }
            })
            .collect(),
        melody_fit: fit as f64 / total.max(1) as f64,
    }
}

/// The part of the edit list the score contributes: its cues and the credits.
pub fn edl_fragment(sheet: &CueSheet, font: &LoadedFont) -> EdlFragment {
    EdlFragment {
        audio: sheet
            .cues
            .iter()
            .map(|c| AudioTrack {
                file: PathBuf::from(&c.file),
                start: c.start,
                gain_db: MUSIC_GAIN_DB,
                role: AudioRole::Music,
            })
            .collect(),
        credits: Credits {
            music: vec![
                "Score composed by benjamin (its own melody model, trained on public-domain tunes)"
                    .to_string(),
                font.credit(),
            ],
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Renders every cue of `score` into `dir` (cues/scene-NNN.wav) and writes score.mid and
/// cues.json there. A cue rendered before from the same notes and SoundFont is kept (see
/// [`Items`]). Returns the files written.
pub fn write_score(
    score: &Score,
    font: &LoadedFont,
    dir: &Path,
    progress: &Progress,
) -> Result<(CueSheet, Vec<PathBuf>)> {
    let mut outputs = Vec::new();
    let bar = progress.bar(score.cues.len() as u64, "rendering", "cues");
    let mut rendered: Items<()> = Items::open(&dir.join(CUES_DIR));
    let font_id = fsutil::fingerprint_file(&font.path).unwrap_or_default();
    for cue in &score.cues {
        crate::progress::check_interrupted()?;
        let name = cue_name(cue.scene);
        let key = key_of(&(cue, &font_id, SAMPLE_RATE, env!("CARGO_PKG_VERSION")));
        if rendered.get(&name, &key).is_none() {
            let audio = render::render_cue(cue, font, SAMPLE_RATE)
                .with_context(|| format!("cannot render the cue of scene {}", cue.scene))?;
            render::write_wav(&rendered.dir().join(&name), &audio, SAMPLE_RATE)?;
            rendered.put(&name, key, ())?;
        }
        outputs.push(rendered.dir().join(&name));
        bar.inc(1);
    }
    bar.finish_and_clear();
    rendered.prune()?;
    let midi_path = dir.join(MIDI_FILE);
    fsutil::write_atomic(&midi_path, &midi::write_midi(score))?;
    let sheet = cue_sheet(score, &font.path);
    let sheet_path = dir.join(CUES_FILE);
    fsutil::write_atomic(&sheet_path, &serde_json::to_vec_pretty(&sheet)?)?;
    outputs.push(midi_path);
    outputs.push(sheet_path);
    Ok((sheet, outputs))
}

/// The SoundFont a film's score is played on.
pub fn soundfont_path(film: &Film) -> PathBuf {
    film.settings
        .soundfont
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOUNDFONT))
}

pub struct MusicStage;

impl Stage for MusicStage {
    fn id(&self) -> StageId {
        StageId::Music
    }

    fn inputs(&self, film: &Film) -> Result<StageInputs> {
        let script = crate::screenplay::stage::require_json(film)?;
        let timings = crate::voice::timings_path(film);
        if !timings.is_file() {
            return Err(Blocked(
                "it needs the scene timings (voice/dialogue.json) from the voice stage".into(),
            )
            .into());
        }
        let font = soundfont_path(film);
        let mut files = hash_inputs(film, &[script, timings])?;
        files.insert(
            font.display().to_string(),
            fsutil::fingerprint_file(&font).unwrap_or_else(|_| "missing".into()),
        );
        let mut models = std::collections::BTreeMap::new();
        models.insert(
            "melody".to_string(),
            fsutil::hash_bytes(super::model::builtin::WEIGHTS),
        );
        Ok(StageInputs {
            params: serde_json::json!({
                "genre": film.settings.genre, "soundfont": font, "sample_rate": SAMPLE_RATE,
                "fade_in": FADE_IN, "fade_out": FADE_OUT, "gain_db": MUSIC_GAIN_DB,
            }),
            files,
            models,
            ..Default::default()
        })
    }

    /// Its work takes what it takes (a minute of score renders in about half a second on the reference machine).
    fn estimate(
        &self,
        film: &Film,
        _speeds: &crate::stage::Speeds,
    ) -> Result<crate::stage::Estimate> {
        Ok(crate::stage::Estimate::fixed(
            1.0 + 0.6 * film.settings.minutes,
        ))
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutcome> {
        let film = ctx.film;
        // The SoundFont first: a missing one should fail before any work.
        let font = render::load_soundfont(&soundfont_path(film))?;
        let screenplay = crate::screenplay::stage::load(film)?;
        let timings = crate::voice::load_timings(film)?.ok_or_else(|| {
            Blocked("it needs the scene timings (voice/dialogue.json) from the voice stage".into())
        })?;
        let (model, _) = MelodyModel::load(None)?;
        let briefs = scene_briefs(&screenplay, &timings);
        let started = std::time::Instant::now();
        let score = compose_score(
            film.settings.genre,
            film.settings.seed,
            &briefs,
            &model,
            ctx.progress,
        )?;
        let compose_s = started.elapsed().as_secs_f64();
        let (sheet, mut outputs) = write_score(&score, &font, &ctx.dir, ctx.progress)?;
        let fragment_path = edl_fragment(&sheet, &font).write(&ctx.dir)?;
        outputs.push(fragment_path);
        let seconds: f64 = sheet.cues.iter().map(|c| c.duration).sum();
        Ok(StageOutcome {
            outputs,
            notes: serde_json::json!({
                "cues": sheet.cues.len(), "seconds": seconds, "home_key": sheet.home_key,
                "melody_fit": sheet.melody_fit, "compose_s": compose_s,
                "soundfont": font.credit(),
            }),
        })
    }
}
