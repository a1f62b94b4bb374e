//! The `shots` stage: footage from the archive for every scene of the screenplay, as long as
//! the scene plays (the voice timings when they exist, else the page-a-minute estimate).
//!
//! Entry point: [`ShotsStage`]; the choice itself is [`select::search`].

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::budget;
use super::select::{self, Footage, Pacing, Pick, SceneNeed};
use crate::archive::{Archive, Index, Matching, SourceRecord};
use crate::edl::{EdlFragment, Shot};
use crate::film::Film;
use crate::fsutil;
use crate::manifest::{Intent, StageInputs};
use crate::progress::Progress;
use crate::screenplay::fountain::{Element, Screenplay};
use crate::stage::{
    hash_inputs, Blocked, Estimate, Speeds, Stage, StageContext, StageId, StageOutcome, RATES_NOTE,
};
use crate::voice::DialogueTimings;

/// The stage's record of what it chose and why (the edit list has only what the cut needs).
pub const CHOICES_FILE: &str = "shots.json";

pub struct ShotsStage;

/// shots.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Choices {
    pub archive: PathBuf,
    pub matching: Matching,
    /// Where the scene lengths came from: "voice" or "estimate".
    pub timing: String,
    pub shots: Vec<ChosenShot>,
}

impl Choices {
    fn of(
        archive: &Archive,
        matching: Matching,
        timing: &str,
        picks: &[Pick],
        usable: &[SourceRecord],
    ) -> Choices {
        Choices {
            archive: archive.dir.clone(),
            matching,
            timing: timing.into(),
            shots: picks
                .iter()
                .map(|p| ChosenShot {
                    scene: p.scene,
                    source: usable[p.source].path.clone(),
                    source_id: usable[p.source].id.clone(),
                    shot: usable[p.source].shots[p.shot].index,
                    in_point: p.start,
                    out_point: p.end,
                    similarity: p.similarity,
                    light: p.light,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChosenShot {
    pub scene: usize,
    pub source: PathBuf,
    pub source_id: String,
    pub shot: usize,
    #[serde(rename = "in")]
    pub in_point: f64,
    #[serde(rename = "out")]
    pub out_point: f64,
    pub similarity: f32,
    pub light: f32,
}

/// A digest of every source record: adding or removing footage makes the stage stale.
fn archive_digest(archive: &Archive) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    for s in archive.sources()? {
        hasher.update(s.hash.as_bytes());
        hasher.update(s.fingerprint.as_bytes());
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// The scenes to fill, in frames of the film, from the voice timings when there are some.
fn scene_needs(
    screenplay: &Screenplay,
    timings: Option<&DialogueTimings>,
    fps: f64,
) -> Vec<SceneNeed> {
    // Bounds in story time, rounded to frames, so the shots add up to the voice track exactly.
    let bounds: Vec<(usize, f64, f64)> = match timings {
        Some(t) => t
            .scenes
            .iter()
            .map(|s| (s.number, s.start, s.start + s.duration))
            .collect(),
        None => {
            let mut at = 0.0;
            screenplay
                .scenes
                .iter()
                .map(|s| {
                    let b = (s.number, at, at + s.estimated_seconds);
                    at += s.estimated_seconds;
                    b
                })
                .collect()
        }
    };
    let frame = |t: f64| (t * fps).round() as usize;
    bounds
        .into_iter()
        .filter_map(|(number, a, b)| {
            let frames = frame(b).saturating_sub(frame(a));
            let scene = screenplay.scenes.iter().find(|s| s.number == number)?;
            let time = scene.heading.time.to_ascii_uppercase();
            let night = if time.contains("NIGHT") || time.contains("EVENING") {
                Some(true)
            } else if time.contains("DAY") || time.contains("MORNING") || time.contains("NOON") {
                Some(false)
            } else {
                None
            };
            (frames > 0).then_some(SceneNeed {
                number,
                frames,
                night,
                speakers: scene.speakers().len(),
            })
        })
        .collect()
}

/// What a scene is about, for text matching: its place and its action.
fn scene_text(screenplay: &Screenplay, number: usize) -> String {
    let Some(scene) = screenplay.scenes.iter().find(|s| s.number == number) else {
        return String::new();
    };
    let mut parts = vec![scene.heading.place.clone()];
    for e in &scene.elements {
        if let Element::Action { text } = e {
            parts.push(text.clone());
        }
    }
    parts.join(". ")
}

impl Stage for ShotsStage {
    fn id(&self) -> StageId {
        StageId::Shots
    }

    fn inputs(&self, film: &Film) -> Result<StageInputs> {
        let script = crate::screenplay::stage::require_json(film)?;
        let dir = film.settings.archive_dir();
        let archive = Archive::open_existing(&dir).map_err(|e| Blocked(format!("{e:#}")))?;
        let mut files = vec![script];
        let dialogue = crate::voice::timings_path(film);
        if dialogue.is_file() {
            files.push(dialogue);
        }
        Ok(StageInputs {
            params: serde_json::json!({
                "archive": dir,
                "archive_digest": archive_digest(&archive)?,
                "embedder": archive.info.embedder,
                "pacing": Pacing::default(),
                "fps": film.settings.frame.fps,
                // The budget decides how many selections are searched.
                "hours": film.settings.hours,
            }),
            files: hash_inputs(film, &files)?,
            ..Default::default()
        })
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutcome> {
        let film = ctx.film;
        let fps = film.settings.frame.fps as f64;
        let screenplay = crate::screenplay::stage::load(film)?;
        let timings = crate::voice::load_timings(film)?;
        let needs = scene_needs(&screenplay, timings.as_ref(), fps);

        let archive = Archive::open_existing(&film.settings.archive_dir())?;
        let usable = usable_sources(&archive, ctx.progress)?;
        let index = Index::new(&archive, &usable)?;
        let footage = footage_of(&index, &usable);
        let bar = ctx.progress.bar(needs.len() as u64, "matching", "scenes");
        let mut similarity = Vec::with_capacity(needs.len());
        let mut matching = Matching::Keywords;
        for need in &needs {
            crate::progress::check_interrupted()?;
            let (scores, m) = index.similarity(&scene_text(&screenplay, need.number))?;
            matching = m;
            similarity.push(scores);
            bar.inc(1);
        }
        bar.finish_and_clear();
        if matching == Matching::Keywords {
            ctx.progress
                .info("shots: matching scenes to footage by keywords (no sentence-embedding model for this archive)");
        }
        let pacing = Pacing::default();
        let work = select::work(&needs, &footage, fps, &pacing);
        let candidates = budget::candidates(ctx.speeds, ctx.planned_s, work);
        let started = Instant::now();
        let search = select::search(
            &needs,
            &footage,
            &similarity,
            fps,
            film.settings.seed,
            &pacing,
            candidates,
        )?;
        let search_s = started.elapsed().as_secs_f64();
        let picks = search.picks;

        let fragment = EdlFragment {
            shots: picks.iter().map(|p| edl_shot(p, &usable)).collect(),
            ..Default::default()
        };
        let timing = if timings.is_some() {
            "voice"
        } else {
            "estimate"
        };
        let choices = Choices::of(&archive, matching, timing, &picks, &usable);
        let fragment_path = fragment.write(&ctx.dir)?;
        let choices_path = ctx.dir.join(CHOICES_FILE);
        fsutil::write_atomic(&choices_path, &serde_json::to_vec_pretty(&choices)?)?;
        let seconds: f64 = picks.iter().map(|p| p.frames as f64 / fps).sum();
        ctx.progress.info(format!(
            "shots: {} shots for {} scenes, {:.1} s of footage",
            picks.len(),
            needs.len(),
            seconds
        ));
        Ok(StageOutcome {
            outputs: vec![fragment_path, choices_path],
            notes: serde_json::json!({
                "shots": picks.len(),
                "scenes": needs.len(),
                "seconds": seconds,
                "matching": matching,
                "selections": candidates,
                "fit_story_order": search.fits[0],
                "fit_chosen": search.fits[search.chosen],
                RATES_NOTE: rates_seen(work * candidates as f64, search_s),
            }),
        })
    }

    fn estimate(&self, film: &Film, speeds: &Speeds) -> Result<Estimate> {
        Ok(budget::estimate(film, speeds))
    }

    fn intent(&self, film: &Film, speeds: &Speeds, seconds: f64) -> Result<Intent> {
        Ok(budget::intent(film, speeds, seconds))
    }
}

/// The archive's sources that can be cut: those whose file went missing since they were
/// added are skipped, with how to remove them.
fn usable_sources(archive: &Archive, progress: &Progress) -> Result<Vec<SourceRecord>> {
    Ok(archive
        .sources()?
        .into_iter()
        .filter(|s| {
            let ok = s.path.is_file();
            if !ok {
                progress.info(format!(
                    "skipping {}: the file is gone (remove it with `benjamin archive remove {}`)",
                    s.path.display(),
                    &s.id[..12]
                ));
            }
            ok
        })
        .collect())
}

/// The index's shots as the selector sees them.
fn footage_of(index: &Index, usable: &[SourceRecord]) -> Vec<Footage> {
    index
        .shots
        .iter()
        .map(|&(s, k)| {
            let shot = &usable[s].shots[k];
            Footage {
                source: s,
                shot: k,
                start: shot.start,
                end: shot.end,
                still: usable[s].still,
                luma: shot.luma,
                faces: shot.faces,
            }
        })
        .collect()
}

/// The search's rate, when it ran long enough to time.
fn rates_seen(work: f64, seconds: f64) -> serde_json::Value {
    if seconds < 1.0 {
        return serde_json::json!({});
    }
    serde_json::json!({ budget::WORK: work / seconds })
}

/// The edit list's shot for a pick, with the source's licence and credit.
fn edl_shot(p: &Pick, sources: &[SourceRecord]) -> Shot {
    let src = &sources[p.source];
    Shot {
        source: src.path.clone(),
        in_point: p.start,
        out_point: p.end,
        scene: p.scene as u32,
        licence: src
            .licence
            .clone()
            .unwrap_or_else(|| "licence unknown".into()),
        attribution: src.attribution.clone().unwrap_or_else(|| {
            src.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
    }
}
