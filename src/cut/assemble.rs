//! The film's edit list, joined from the fragments the upstream stages wrote
//! (`<stage>/edl.json`).

use std::path::PathBuf;

use anyhow::Result;

use crate::edl::{Credits, EditList, EdlFragment};
use crate::film::Film;
use crate::stage::{Blocked, StageId};

/// The folders of the upstream stages that have written a fragment, in data-flow order.
pub(super) fn fragment_dirs(film: &Film) -> Vec<PathBuf> {
    StageId::Cut
        .upstream()
        .iter()
        .map(|s| film.stage_dir(s.name()))
        .filter(|d| EdlFragment::path(d).is_file())
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
    for dir in fragment_dirs(film) {
        let frag = EdlFragment::load(&dir)?;
        if !frag.shots.is_empty() {
            edl.shots = frag.shots;
        }
        edl.audio.extend(frag.audio);
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
