//! The voice stage: the screenplay's lines voiced into `voice/` (`lines/`, `voices.json`, the
//! editable cast of voices, `dialogue.json`, the timings, and the edit-list fragment).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::cast::{self, Voice};
use super::{
    edl_fragment, engine, voice_screenplay, DialogueTimings, LINE_GAP, SCENE_LEAD, SCENE_TAIL,
};
use crate::film::Film;
use crate::fsutil;
use crate::manifest::StageInputs;
use crate::progress::Progress;
use crate::screenplay::fountain::Screenplay;
use crate::stage::{hash_inputs, Stage, StageContext, StageId, StageOutcome};

pub const VOICES_FILE: &str = "voices.json";
pub const DIALOGUE_FILE: &str = "dialogue.json";
const EDITABLE: [&str; 1] = ["voice/voices.json"];

pub struct VoiceStage;

fn read_cast(path: &Path) -> Result<BTreeMap<String, Voice>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{} is not a valid cast: each character needs language, variant, pitch, range and rate", path.display())),
        Err(_) => Ok(BTreeMap::new()),
    }
}

/// Voices `screenplay` into `dir` as the stage does: each character cast a voice (a
/// voices.json already there is honoured), one WAV a line, dialogue.json and the edit-list
/// fragment. Returns the timings and the files written.
pub fn voice_folder(
    screenplay: &Screenplay,
    dir: &Path,
    progress: &Progress,
) -> Result<(DialogueTimings, Vec<PathBuf>)> {
    let voices_path = dir.join(VOICES_FILE);
    let cast = cast::cast(screenplay, &read_cast(&voices_path)?);
    let mut engine = engine::Espeak::new()?;
    let timings = voice_screenplay(screenplay, &cast, &mut engine, dir, progress)?;
    fsutil::write_atomic(&voices_path, &serde_json::to_vec_pretty(&cast)?)?;
    let dialogue_path = dir.join(DIALOGUE_FILE);
    fsutil::write_atomic(&dialogue_path, &serde_json::to_vec_pretty(&timings)?)?;
    let fragment_path = edl_fragment(&timings, &cast).write(dir)?;
    let mut outputs = vec![voices_path, dialogue_path, fragment_path];
    outputs.extend(timings.lines.iter().map(|l| dir.join(&l.file)));
    Ok((timings, outputs))
}

impl Stage for VoiceStage {
    fn id(&self) -> StageId {
        StageId::Voice
    }

    fn inputs(&self, film: &Film) -> Result<StageInputs> {
        let script = crate::screenplay::stage::require_json(film)?;
        Ok(StageInputs {
            params: serde_json::json!({"line_gap": LINE_GAP, "scene_lead": SCENE_LEAD, "scene_tail": SCENE_TAIL}),
            files: hash_inputs(film, &[script])?,
            ..Default::default()
        })
    }

    /// Its work takes what it takes (espeak-ng voices a minute of lines in about a tenth of a second; the rest is room).
    fn estimate(
        &self,
        film: &Film,
        _speeds: &crate::stage::Speeds,
    ) -> Result<crate::stage::Estimate> {
        Ok(crate::stage::Estimate::fixed(
            1.0 + 0.25 * film.settings.minutes,
        ))
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutcome> {
        let screenplay = crate::screenplay::stage::load(ctx.film)?;
        let (timings, outputs) = voice_folder(&screenplay, &ctx.dir, ctx.progress)?;
        Ok(StageOutcome {
            outputs,
            notes: serde_json::json!({"lines": timings.lines.len(), "seconds": timings.total_seconds, "engine": timings.engine}),
        })
    }

    fn editable(&self) -> &[&str] {
        &EDITABLE
    }
}
