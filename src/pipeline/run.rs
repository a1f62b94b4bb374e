//! Running one stage: its edits kept, its old manifest gone before it starts, its outputs
//! and manifest written when it succeeds, and its report.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};

use super::{Action, StageReport};
use crate::film::Film;
use crate::fsutil;
use crate::manifest::{Planned, StageInputs, StageManifest, MANIFEST_FORMAT};
use crate::progress::Progress;
use crate::stage::{Speeds, Stage, StageContext, RATES_NOTE};

/// Why a stage runs, and what the plan gives it.
pub(super) struct StageRun {
    pub why: String,
    pub adopt_edits: bool,
    pub planned: Planned,
}

/// Runs one stage and records its manifest; returns its report and the rates it saw.
pub(super) fn run_stage(
    film: &Film,
    stage: &dyn Stage,
    inputs: StageInputs,
    run: StageRun,
    speeds: &Speeds,
    progress: &Progress,
) -> Result<(StageReport, Speeds)> {
    let StageRun {
        why,
        adopt_edits,
        planned,
    } = run;
    let id = stage.id();
    let dir = film.stage_dir(id.name());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fsutil::remove_partials(&dir);
    fsutil::remove_partials(&film.dir);
    // Taking an edit keeps the manifest until it succeeds: a failed or killed try leaves
    // the stage "edited", and the next make tries the (fixed) edit again.
    if !adopt_edits {
        keep_edits(film, stage, progress)?;
        // The old manifest goes first: a run killed halfway must not look fresh.
        let manifest_path = StageManifest::path(&dir);
        if manifest_path.exists() {
            std::fs::remove_file(&manifest_path)
                .with_context(|| format!("cannot remove {}", manifest_path.display()))?;
        }
    }
    progress.info(format!(
        "{id}: running ({why}); planned {:.0} s: {}",
        planned.planned_s, planned.intent.summary
    ));
    let started_wall = SystemTime::now();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(planned.planned_s.max(0.0));
    let ctx = StageContext {
        film,
        dir: dir.clone(),
        deadline,
        planned_s: planned.planned_s,
        speeds,
        progress,
    };
    // Twice its share and five minutes more (a tiny budget still gets its film): past that
    // the stage stops with a clear error.
    let share = deadline.saturating_duration_since(started);
    let _overrun = crate::progress::OverrunGuard::new(
        deadline + share + Duration::from_secs(300),
        format!(
            "the {id} stage ran far past its share of the time budget ({:.0} s): give the film more --hours, or less to do (a shorter screenplay)",
            share.as_secs_f64()
        ),
    );
    let outcome = if adopt_edits {
        stage.adopt_edits(&ctx)
    } else {
        stage.run(&ctx)
    };
    let mut outcome = outcome.with_context(|| format!("the {id} stage failed"))?;
    if adopt_edits {
        // Taken in, an edit's hash is the recorded one; this says it is still the user's.
        if !outcome.notes.is_object() {
            outcome.notes = serde_json::json!({});
        }
        outcome.notes[HAND_EDITED] = serde_json::json!(stage.editable());
    }
    let duration = started.elapsed().as_secs_f64();
    let outputs = StageManifest::record_outputs(&film.dir, &outcome.outputs)?;
    let finished = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let run_id = new_run_id(&outputs);
    let manifest = StageManifest {
        format: MANIFEST_FORMAT,
        stage: id.name().to_string(),
        run_id,
        inputs,
        outputs,
        started: humantime::format_rfc3339_seconds(started_wall).to_string(),
        finished,
        duration_s: duration,
        planned: Some(planned),
        notes: outcome.notes,
    };
    manifest.save(&dir)?;
    let seen: Speeds =
        serde_json::from_value(manifest.notes[RATES_NOTE].clone()).unwrap_or_default();
    let report = StageReport {
        stage: id,
        action: Action::Ran,
        reason: Some(why),
        duration_s: Some(duration),
        outputs: manifest.outputs.iter().map(|o| o.path.clone()).collect(),
    };
    Ok((report, seen))
}

/// The manifest note listing the editable outputs that hold a hand edit the stage took in.
const HAND_EDITED: &str = "hand_edited";

/// Before a stage regenerates its outputs, copies each hand-edited one (it differs from what
/// the last run wrote, or it is an edit the stage took in) to `<stage>/edits/`, so no edit
/// is lost.
fn keep_edits(film: &Film, stage: &dyn Stage, progress: &Progress) -> Result<()> {
    let dir = film.stage_dir(stage.id().name());
    let manifest = StageManifest::load(&dir).ok().flatten();
    for rel in stage.editable() {
        let path = film.dir.join(rel);
        let Ok(hash) = fsutil::hash_file(&path) else {
            continue;
        };
        let generated = manifest.as_ref().is_some_and(|m| {
            let taken_in = m.notes[HAND_EDITED]
                .as_array()
                .is_some_and(|a| a.iter().any(|p| p == rel));
            !taken_in && m.outputs.iter().any(|o| o.path == *rel && o.hash == hash)
        });
        if generated {
            continue;
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
            .to_string()
            .replace(':', "-");
        let kept = dir
            .join("edits")
            .join(format!("{stamp}-{}", name.unwrap_or_default()));
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        fsutil::write_atomic(&kept, &bytes)?;
        progress.info(format!(
            "{}: your edit of {rel} is kept as {} before the stage writes it again",
            stage.id(),
            kept.strip_prefix(&film.dir).unwrap_or(&kept).display()
        ));
    }
    Ok(())
}

/// An id unique to this run (time to the nanosecond, process, a counter, and what it wrote).
fn new_run_id(outputs: &[crate::manifest::OutputRecord]) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = format!("{nanos}:{}:{n}:{outputs:?}", std::process::id());
    fsutil::hash_bytes(seed.as_bytes())[..16].to_string()
}
