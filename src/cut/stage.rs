//! The cut as a pipeline stage: it gathers the edit-list fragments the upstream stages wrote
//! (`<stage>/edl.json`) into one edit list and cuts it into the film folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::edl::{AudioTrack, Credits, Cue, EditList, Shot};
use super::{cut, output_paths, CutOptions};
use crate::film::Film;
use crate::fsutil;
use crate::manifest::StageInputs;
use crate::stage::{hash_inputs, Blocked, Stage, StageContext, StageId, StageOutcome};

/// Name of the fragment each upstream stage may write into its folder.
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

pub struct CutStage;

fn fragment_paths(film: &Film) -> Vec<PathBuf> {
    StageId::Cut
        .upstream()
        .iter()
        .map(|s| film.stage_dir(s.name()).join(FRAGMENT))
        .filter(|p| p.is_file())
        .collect()
}

/// Joins the upstream fragments into the film's edit list.
pub fn assemble(film: &Film) -> Result<EditList> {
    let s = &film.settings;
    let mut edl = EditList {
        title: s.title.clone(),
        genre: s.genre,
        frame: s.frame,
        shots: Vec::new(),
        audio: Vec::new(),
        subtitles: Vec::new(),
        credits: Credits::default(),
    };
    for path in fragment_paths(film) {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let frag: EdlFragment = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid edit-list fragment", path.display()))?;
        let mut part = EditList {
            shots: frag.shots,
            audio: frag.audio,
            ..edl.clone()
        };
        part.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        if !part.shots.is_empty() {
            edl.shots = part.shots;
        }
        edl.audio.extend(part.audio);
        edl.subtitles.extend(frag.subtitles);
        edl.credits.voices.extend(frag.credits.voices);
        edl.credits.music.extend(frag.credits.music);
        edl.credits.extra.extend(frag.credits.extra);
    }
    if edl.shots.is_empty() {
        let why = "it needs shots from the shots stage, which has not run yet (`benjamin cut --edl FILE` cuts a hand-written edit list)";
        return Err(Blocked(why.to_string()).into());
    }
    Ok(edl)
}

impl Stage for CutStage {
    fn id(&self) -> StageId {
        StageId::Cut
    }

    fn inputs(&self, film: &Film) -> Result<StageInputs> {
        let edl = assemble(film)?;
        let mut files = hash_inputs(film, &fragment_paths(film))?;
        let media = edl
            .shots
            .iter()
            .map(|s| &s.source)
            .chain(edl.audio.iter().map(|a| &a.file));
        for path in media {
            let label = path
                .strip_prefix(&film.dir)
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned();
            // Artifacts inside the film are hashed; archive footage is large, so it is fingerprinted.
            let id = if path.starts_with(&film.dir) {
                fsutil::hash_file(path)
            } else {
                fsutil::fingerprint_file(path)
            };
            files.insert(label, id.unwrap_or_else(|_| "missing".into()));
        }
        let s = &film.settings;
        let opts = CutOptions::default();
        Ok(StageInputs {
            params: serde_json::json!({
                "title": s.title, "genre": s.genre, "frame": s.frame,
                "title_seconds": opts.title_seconds, "preset": opts.preset, "crf": opts.crf,
            }),
            files,
            ..Default::default()
        })
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutcome> {
        let edl = assemble(ctx.film)?;
        let edl_path = ctx.dir.join("edl.json");
        fsutil::write_atomic(&edl_path, serde_json::to_string_pretty(&edl)?.as_bytes())?;
        let film_path = ctx.film.dir.join("film.mp4");
        let result = cut(&edl, &film_path, &CutOptions::default(), ctx.progress)?;
        let (srt, otio) = output_paths(&film_path);
        Ok(StageOutcome {
            outputs: vec![film_path, srt, otio, edl_path],
            notes: serde_json::json!({"frames": result.frames, "seconds": result.seconds, "mix": result.mix}),
        })
    }
}
