//! The pipeline's freshness logic, with two small stand-in stages (a "screenplay" that writes
//! its seed, a "voice" that reads it) so that reruns and staleness can be watched end to end.

use std::path::Path;

use anyhow::{bail, Result};
use benjamin::film::{Film, FilmSettings, Genre};
use benjamin::manifest::{StageInputs, StageManifest};
use benjamin::pipeline::{
    hash_inputs, Blocked, Pipeline, Stage, StageContext, StageId, StageOutcome,
};
use benjamin::progress::Progress;

struct Writer;
struct Reader;

impl Stage for Writer {
    fn id(&self) -> StageId {
        StageId::Screenplay
    }
    fn inputs(&self, film: &Film) -> Result<StageInputs> {
        Ok(StageInputs {
            params: serde_json::json!({"title": film.settings.title}),
            ..Default::default()
        })
    }
    fn run(&self, ctx: &StageContext) -> Result<StageOutcome> {
        if ctx.film.settings.title == "fail" {
            bail!("asked to fail");
        }
        let out = ctx.dir.join("script.txt");
        std::fs::write(&out, format!("seed {}", ctx.film.settings.seed))?;
        Ok(StageOutcome {
            outputs: vec![out],
            notes: serde_json::Value::Null,
        })
    }
}

impl Stage for Reader {
    fn id(&self) -> StageId {
        StageId::Voice
    }
    fn inputs(&self, film: &Film) -> Result<StageInputs> {
        let script = film.stage_dir("screenplay").join("script.txt");
        if !script.exists() {
            return Err(Blocked("needs a screenplay".into()).into());
        }
        Ok(StageInputs {
            files: hash_inputs(film, &[script])?,
            ..Default::default()
        })
    }
    fn run(&self, ctx: &StageContext) -> Result<StageOutcome> {
        let text = std::fs::read_to_string(ctx.film.stage_dir("screenplay").join("script.txt"))?;
        let out = ctx.dir.join("lines.txt");
        std::fs::write(&out, text.to_uppercase())?;
        Ok(StageOutcome {
            outputs: vec![out],
            notes: serde_json::Value::Null,
        })
    }
}

fn stand_ins(id: StageId) -> Option<Box<dyn Stage>> {
    match id {
        StageId::Screenplay => Some(Box::new(Writer)),
        StageId::Voice => Some(Box::new(Reader)),
        _ => None,
    }
}

fn film(dir: &Path, title: &str) -> Film {
    Film::save(dir, &FilmSettings::new(title.into(), Genre::Noir, 42, 0.01)).unwrap()
}

fn actions(film: &Film) -> Vec<(StageId, &'static str)> {
    let reports = Pipeline::with_stages(stand_ins)
        .make(film, &Progress::hidden())
        .unwrap();
    reports
        .into_iter()
        .map(|r| (r.stage, r.action.name()))
        .collect()
}

fn state(film: &Film, id: StageId) -> (String, Option<String>) {
    let all = Pipeline::with_stages(stand_ins).status(film).unwrap();
    let s = all.into_iter().find(|s| s.stage == id).unwrap();
    (s.state.to_string(), s.reason)
}

#[test]
fn make_runs_what_is_stale_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let film = film(dir.path(), "Rain");
    assert_eq!(state(&film, StageId::Screenplay).0, "never run");
    assert_eq!(state(&film, StageId::Voice).0, "blocked");
    let first = actions(&film);
    assert_eq!(first[0], (StageId::Screenplay, "ran"));
    assert_eq!(first[1], (StageId::Voice, "ran"));
    assert!(
        first[2..].iter().all(|(_, a)| *a == "not built yet"),
        "{first:?}"
    );
    let second = actions(&film);
    assert_eq!(
        &second[..2],
        &[(StageId::Screenplay, "fresh"), (StageId::Voice, "fresh")]
    );
    let manifest = StageManifest::load(&film.stage_dir("voice"))
        .unwrap()
        .unwrap();
    assert_eq!(manifest.outputs[0].path, "voice/lines.txt");
    assert_eq!(manifest.inputs.seed, 42);
    assert!(manifest.inputs.upstream.contains_key("screenplay"));
}

#[test]
fn rerunning_a_stage_makes_only_its_downstream_stale() {
    let dir = tempfile::tempdir().unwrap();
    let film = film(dir.path(), "Rain");
    actions(&film);
    Pipeline::with_stages(stand_ins)
        .run_one(&film, StageId::Screenplay, &Progress::hidden())
        .unwrap();
    assert_eq!(state(&film, StageId::Screenplay).0, "fresh");
    let (voice, why) = state(&film, StageId::Voice);
    assert_eq!(voice, "stale");
    assert!(why.unwrap().contains("upstream stage rerun: screenplay"));
    let next = actions(&film);
    assert_eq!(
        &next[..2],
        &[(StageId::Screenplay, "fresh"), (StageId::Voice, "ran")]
    );
}

#[test]
fn a_hand_edited_artifact_is_caught_and_its_stage_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let film = film(dir.path(), "Rain");
    actions(&film);
    std::fs::write(film.stage_dir("voice").join("lines.txt"), "EDITED").unwrap();
    let (voice, why) = state(&film, StageId::Voice);
    assert_eq!(voice, "stale");
    assert!(why.unwrap().contains("voice/lines.txt was changed"));
    assert_eq!(
        &actions(&film)[..2],
        &[(StageId::Screenplay, "fresh"), (StageId::Voice, "ran")]
    );
    assert_eq!(
        std::fs::read_to_string(film.stage_dir("voice").join("lines.txt")).unwrap(),
        "SEED 42"
    );
}

#[test]
fn a_changed_setting_reruns_the_stage_that_reads_it_and_what_follows() {
    let dir = tempfile::tempdir().unwrap();
    let mut film = film(dir.path(), "Rain");
    actions(&film);
    film.settings.seed = 7;
    let film = Film::save(&film.dir, &film.settings).unwrap();
    let (s, why) = state(&film, StageId::Screenplay);
    assert_eq!(s, "stale");
    assert!(why.unwrap().contains("seed changed (42 -> 7)"));
    assert_eq!(
        &actions(&film)[..2],
        &[(StageId::Screenplay, "ran"), (StageId::Voice, "ran")]
    );
}

#[test]
fn a_failed_stage_leaves_no_fresh_manifest_and_stops_make() {
    let dir = tempfile::tempdir().unwrap();
    let mut film = film(dir.path(), "Rain");
    actions(&film);
    film.settings.title = "fail".into();
    let film = Film::save(&film.dir, &film.settings).unwrap();
    let err = Pipeline::with_stages(stand_ins)
        .make(&film, &Progress::hidden())
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("screenplay stage failed"),
        "{err:#}"
    );
    assert!(StageManifest::load(&film.stage_dir("screenplay"))
        .unwrap()
        .is_none());
    assert_eq!(state(&film, StageId::Screenplay).0, "never run");
}

#[test]
fn stages_not_built_are_refused_by_run() {
    let dir = tempfile::tempdir().unwrap();
    let film = film(dir.path(), "Rain");
    let err = Pipeline::with_stages(stand_ins)
        .run_one(&film, StageId::Faces, &Progress::hidden())
        .unwrap_err();
    assert!(err.to_string().contains("not built yet"), "{err}");
}
