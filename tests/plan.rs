//! The budget planner with stand-in stages whose work is given in seconds: the plan's
//! arithmetic, the replanning after a stage runs over (on a fake clock: the seconds spent
//! are given, not timed), and the refusal of a budget too small, before anything runs.

use std::path::Path;

use anyhow::Result;
use benjamin::film::{Film, FilmSettings, Genre};
use benjamin::manifest::StageInputs;
use benjamin::pipeline::{Pipeline, Speeds, Stage, StageContext, StageId, StageOutcome};
use benjamin::plan;
use benjamin::progress::Progress;
use benjamin::stage::{Estimate, Intent};

/// A stage whose least work is `least` seconds of `unit` (one unit a second unless the
/// speeds say otherwise), that can use `upto` seconds more.
struct Worker {
    id: StageId,
    least: f64,
    upto: f64,
    weight: f64,
}

impl Stage for Worker {
    fn id(&self) -> StageId {
        self.id
    }
    fn inputs(&self, _film: &Film) -> Result<StageInputs> {
        Ok(StageInputs::default())
    }
    fn run(&self, ctx: &StageContext) -> Result<StageOutcome> {
        anyhow::ensure!(
            !ctx.film.dir.join(format!("fail-{}", self.id)).exists(),
            "told to fail"
        );
        let out = ctx.dir.join("planned.txt");
        std::fs::write(&out, format!("{}", ctx.planned_s))?;
        Ok(StageOutcome {
            outputs: vec![out],
            notes: serde_json::Value::Null,
        })
    }
    fn estimate(&self, _film: &Film, speeds: &Speeds) -> Result<Estimate> {
        let rate = speeds.rate(&format!("{}.units", self.id), 1.0);
        Ok(Estimate {
            least_s: self.least / rate,
            better_from_s: 0.0,
            better_upto_s: self.upto,
            weight: self.weight,
            steps_s: Vec::new(),
        })
    }
    fn intent(&self, _film: &Film, _speeds: &Speeds, seconds: f64) -> Result<Intent> {
        Ok(Intent::plain(format!("works {seconds:.0} s")))
    }
}

fn workers(id: StageId) -> Option<Box<dyn Stage>> {
    let (least, upto, weight) = match id {
        StageId::Screenplay => (60.0, f64::INFINITY, 0.3),
        StageId::Voice => (10.0, 0.0, 0.0),
        StageId::Cut => (50.0, 40.0, 0.1),
        _ => return None,
    };
    Some(Box::new(Worker {
        id,
        least,
        upto,
        weight,
    }))
}

fn stages() -> Vec<Box<dyn Stage>> {
    [StageId::Screenplay, StageId::Voice, StageId::Cut]
        .into_iter()
        .filter_map(workers)
        .collect()
}

fn film(dir: &Path, hours: f64) -> Film {
    Film::save(
        dir,
        &FilmSettings::new("Plan".into(), Genre::Noir, 7, hours),
    )
    .unwrap()
}

fn refs(s: &[Box<dyn Stage>]) -> Vec<&dyn Stage> {
    s.iter().map(|s| s.as_ref()).collect()
}

#[test]
fn the_plan_fills_the_budget_and_a_stage_that_runs_over_takes_from_the_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let film = film(dir.path(), 0.1);
    let all = stages();
    let speeds = Speeds::default();
    let first = plan::plan(&film, &refs(&all), &speeds, 360.0, 0.0).unwrap();
    let planned: f64 = first.stages.iter().map(|s| s.planned_s).sum();
    // Everything but the reserve is planned: 360 - (2 + 3.6).
    assert!(
        (planned - (360.0 - plan::reserve_s(360.0))).abs() < 1e-6,
        "{first:?}"
    );
    assert_eq!(first.short_s, 0.0);
    let cut = first.planned(StageId::Cut).unwrap().planned_s;
    assert!(cut > 50.0 && cut <= 90.0, "{cut}");

    // The screenplay ran 20 s over its plan (the clock says so): the voice keeps its
    // 10 s, the cut gets what is left, and the plan still ends inside the budget.
    let spent = first.stages[0].planned_s + 20.0;
    let later = plan::plan(&film, &refs(&all[1..]), &speeds, 360.0, spent).unwrap();
    assert_eq!(later.planned(StageId::Voice).unwrap().planned_s, 10.0);
    let cut_now = later.planned(StageId::Cut).unwrap().planned_s;
    assert!(cut_now < cut, "{cut_now} !< {cut}");
    let end = spent + later.reserve_s + later.stages.iter().map(|s| s.planned_s).sum::<f64>();
    assert!(end <= 360.0 + 1e-6, "{end}");

    // Run over by more than the cut can give: it keeps its least and the plan says short.
    let later = plan::plan(&film, &refs(&all[1..]), &speeds, 360.0, 340.0).unwrap();
    assert_eq!(later.planned(StageId::Cut).unwrap().planned_s, 50.0);
    assert!(later.short_s > 0.0);
}

#[test]
fn a_slower_machine_plans_the_same_work_longer() {
    let dir = tempfile::tempdir().unwrap();
    let film = film(dir.path(), 1.0);
    let all = stages();
    let mut slow = Speeds::default();
    slow.set("voice.units", 0.5);
    let p = plan::plan(&film, &refs(&all), &slow, 3600.0, 0.0).unwrap();
    assert_eq!(p.planned(StageId::Voice).unwrap().estimate.least_s, 20.0);
    // The cut can use 40 s more and gets them; all the rest goes to the screenplay.
    assert!((p.planned(StageId::Cut).unwrap().planned_s - 90.0).abs() < 1e-6);
    assert_eq!(p.unspent_s, 0.0);
}

#[test]
fn a_budget_too_small_is_refused_before_anything_runs_with_the_budget_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    // 0.01 h is 36 s; the stages need 120 s and the reserve.
    let film = film(dir.path(), 0.01);
    let err = Pipeline::with_stages(workers)
        .make(&film, &Progress::hidden())
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("needs at least 122 s") && msg.contains("--hours 0.04"),
        "{msg}"
    );
    for id in StageId::ALL {
        assert!(!film.stage_dir(id.name()).exists(), "{id} ran");
    }
}

#[test]
fn each_run_records_its_plan_and_status_shows_planned_against_used() {
    let dir = tempfile::tempdir().unwrap();
    let film = film(dir.path(), 0.1);
    let mut fast = Speeds::default();
    fast.set("cut.units", 2.0);
    let pipeline = Pipeline::with_stages(workers).with_speeds(fast);
    pipeline.make(&film, &Progress::hidden()).unwrap();
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(film.dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["stages"].as_array().unwrap().len(), 3, "{plan}");
    // The cut's least work is 25 s at twice the speed.
    assert_eq!(plan["stages"][2]["estimate"]["least_s"], 25.0, "{plan}");
    let status = pipeline.status(&film).unwrap();
    let cut = status.iter().find(|s| s.stage == StageId::Cut).unwrap();
    let planned = cut.last_planned.as_ref().unwrap();
    let given: f64 = std::fs::read_to_string(film.stage_dir("cut").join("planned.txt"))
        .unwrap()
        .parse()
        .unwrap();
    assert!((planned.planned_s - given).abs() < 1e-9);
    assert!(planned.intent.summary.starts_with("works"), "{planned:?}");
    assert!(cut.last_duration_s.unwrap() < planned.planned_s);
}

/// A make that failed (or was killed) leaves its time in spent.json; the next make of the
/// same budget plans only what is left, does not redo the stages that finished, and clears
/// the account when it finishes.
#[test]
fn a_make_after_an_interrupted_one_plans_what_is_left_of_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let film = film(dir.path(), 0.1);
    let pipeline = Pipeline::with_stages(workers);
    let fail = film.dir.join("fail-voice");
    std::fs::write(&fail, "").unwrap();
    pipeline.make(&film, &Progress::hidden()).unwrap_err();
    let ledger = film.dir.join(plan::ledger::LEDGER_FILE);
    assert!(ledger.is_file(), "the failed make kept no account");
    let screenplay_ran = std::fs::metadata(film.stage_dir("screenplay").join("planned.txt"))
        .unwrap()
        .modified()
        .unwrap();

    // As if the failed make had run for 200 s (the clock is faked through the account).
    let mut account: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ledger).unwrap()).unwrap();
    account["spent_s"] = serde_json::json!(200.0);
    std::fs::write(&ledger, account.to_string()).unwrap();
    std::fs::remove_file(&fail).unwrap();
    let reports = pipeline.make(&film, &Progress::hidden()).unwrap();
    assert_eq!(
        reports[0].action, "fresh",
        "the finished stage is not redone"
    );
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(film.dir.join("plan.json")).unwrap()).unwrap();
    assert!(plan["elapsed_s"].as_f64().unwrap() >= 200.0, "{plan}");
    let planned: f64 = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["planned_s"].as_f64().unwrap())
        .sum();
    assert!(
        planned <= 360.0 - 200.0 - plan::reserve_s(360.0) + 1e-6,
        "{plan}"
    );
    assert!(!ledger.exists(), "a finished make clears its account");
    assert_eq!(
        std::fs::metadata(film.stage_dir("screenplay").join("planned.txt"))
            .unwrap()
            .modified()
            .unwrap(),
        screenplay_ran
    );
}
