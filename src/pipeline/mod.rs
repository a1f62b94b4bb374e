//! The pipeline: the registry of stages, their freshness, and `make`, `run` and `status`.
//! It knows stages only through the contract in [`crate::stage`].

use std::time::Instant;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::film::Film;
use crate::fsutil;
use crate::manifest::{Freshness, Planned, StageInputs, StageManifest};
use crate::plan::calibration::Calibration;
use crate::plan::ledger;
use crate::plan::Plan;
use crate::progress::Progress;
pub use crate::stage::{
    hash_inputs, Blocked, Speeds, Stage, StageContext, StageId, StageOutcome, RATES_NOTE,
};

/// The built-in stages (every stage is built; [`Pipeline::with_stages`] may leave some out,
/// and the pipeline reports those as "not built yet").
pub fn stage_impl(id: StageId) -> Option<Box<dyn Stage>> {
    match id {
        StageId::Screenplay => Some(Box::new(crate::screenplay::stage::ScreenplayStage)),
        StageId::Voice => Some(Box::new(crate::voice::stage::VoiceStage)),
        StageId::Shots => Some(Box::new(crate::shots::stage::ShotsStage)),
        StageId::Faces => Some(Box::<crate::faces::stage::FacesStage>::default()),
        StageId::Music => Some(Box::new(crate::music::stage::MusicStage)),
        StageId::Cut => Some(Box::new(crate::cut::stage::CutStage)),
    }
}

pub mod cli;
mod run;

use run::{run_stage, StageRun};

/// Names an enum's variants as the reports print them; a value also compares equal to its
/// name (`state == "fresh"`), which keeps scripts and tests plain.
macro_rules! named {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.name() == *other
            }
        }
    };
}

named! {
    /// Where a stage stands, as `status` shows it.
    State {
        Fresh => "fresh",
        /// Its inputs changed since it ran (the reason says which).
        Stale => "stale",
        /// An editable output was edited by hand; the next make takes the edit.
        Edited => "edited",
        NeverRun => "never run",
        /// Something it needs is missing (the reason says what).
        Blocked => "blocked",
        NotBuilt => "not built yet",
    }
}

named! {
    /// What `make` or `run` did with a stage.
    Action {
        Ran => "ran",
        /// Up to date: nothing to do.
        Fresh => "fresh",
        Blocked => "blocked",
        NotBuilt => "not built yet",
    }
}

/// Where a stage stands, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    pub stage: StageId,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_duration_s: Option<f64>,
    /// What the plan gave that run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_planned: Option<Planned>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_finished: Option<String>,
}

/// What `make` or `run` did with a stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub stage: StageId,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
}

enum Evaluation {
    NotBuilt,
    Blocked(String),
    Ready {
        stage: Box<dyn Stage>,
        inputs: Box<StageInputs>,
        had_run: bool,
        freshness: Freshness,
    },
}

/// The pipeline over a set of stage implementations (the built-in ones by default).
#[derive(Clone)]
pub struct Pipeline {
    stages: fn(StageId) -> Option<Box<dyn Stage>>,
    /// Speeds to plan with instead of this machine's measured ones (stand-in stages have
    /// none to measure, and must not overwrite the machine's record).
    speeds: Option<Speeds>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            stages: stage_impl,
            speeds: None,
        }
    }
}

impl Pipeline {
    /// A pipeline over other implementations (tests use stand-in stages), planned with the
    /// stages' fallback speeds.
    pub fn with_stages(stages: fn(StageId) -> Option<Box<dyn Stage>>) -> Self {
        Pipeline {
            stages,
            speeds: Some(Speeds::default()),
        }
    }

    /// The same pipeline, planned with these speeds.
    pub fn with_speeds(mut self, speeds: Speeds) -> Self {
        self.speeds = Some(speeds);
        self
    }

    fn evaluate(&self, film: &Film, id: StageId) -> Result<Evaluation> {
        let Some(stage) = (self.stages)(id) else {
            return Ok(Evaluation::NotBuilt);
        };
        let mut inputs = match stage.inputs(film) {
            Ok(i) => i,
            Err(e) => match e.downcast::<Blocked>() {
                Ok(b) => return Ok(Evaluation::Blocked(b.0)),
                Err(e) => return Err(e.context(format!("{id}: cannot gather its inputs"))),
            },
        };
        inputs.benjamin = env!("CARGO_PKG_VERSION").to_string();
        inputs.seed = film.settings.seed;
        for up in id.upstream() {
            let run = StageManifest::load(&film.stage_dir(up.name()))?
                .map(|m| m.run_id)
                .unwrap_or_else(|| "absent".into());
            inputs.upstream.insert(up.name().to_string(), run);
        }
        let dir = film.stage_dir(id.name());
        let manifest = StageManifest::load(&dir)?;
        let damaged = manifest.is_none() && StageManifest::path(&dir).exists();
        let freshness = if damaged {
            Freshness::Stale("its manifest.json is damaged, so it runs again".into())
        } else {
            StageManifest::freshness(manifest.as_ref(), &inputs, &film.dir, stage.editable())
        };
        Ok(Evaluation::Ready {
            stage,
            inputs: Box::new(inputs),
            had_run: manifest.is_some() || damaged,
            freshness,
        })
    }

    /// Each stage's state, for `benjamin status`.
    pub fn status(&self, film: &Film) -> Result<Vec<StageStatus>> {
        StageId::ALL
            .iter()
            .map(|&id| {
                let manifest = StageManifest::load(&film.stage_dir(id.name()))?;
                let (state, reason) = match self.evaluate(film, id)? {
                    Evaluation::NotBuilt => (State::NotBuilt, None),
                    Evaluation::Blocked(why) => (State::Blocked, Some(why)),
                    Evaluation::Ready {
                        freshness: Freshness::Fresh,
                        ..
                    } => (State::Fresh, None),
                    Evaluation::Ready {
                        freshness: Freshness::NeverRun,
                        ..
                    } => (State::NeverRun, None),
                    Evaluation::Ready {
                        freshness: Freshness::Stale(why),
                        ..
                    } => (State::Stale, Some(why)),
                    Evaluation::Ready {
                        freshness: Freshness::Edited(paths),
                        ..
                    } => (
                        State::Edited,
                        Some(format!(
                            "{} edited by hand; the next make takes the edit",
                            paths.join(", ")
                        )),
                    ),
                };
                Ok(StageStatus {
                    stage: id,
                    state,
                    reason,
                    last_duration_s: manifest.as_ref().map(|m| m.duration_s),
                    last_planned: manifest.as_ref().and_then(|m| m.planned.clone()),
                    last_finished: manifest.map(|m| m.finished),
                })
            })
            .collect()
    }

    /// The built stages that a make would run: those not fresh, and those downstream of one
    /// that runs (its new run makes them stale).
    fn stages_to_run(&self, film: &Film) -> Result<Vec<Box<dyn Stage>>> {
        let mut runs: Vec<Box<dyn Stage>> = Vec::new();
        for id in StageId::ALL {
            let upstream_runs = id
                .upstream()
                .iter()
                .any(|u| runs.iter().any(|s| s.id() == *u));
            let fresh = matches!(
                self.evaluate(film, id)?,
                Evaluation::Ready {
                    freshness: Freshness::Fresh,
                    ..
                }
            );
            if let Some(stage) = (self.stages)(id).filter(|_| upstream_runs || !fresh) {
                runs.push(stage);
            }
        }
        Ok(runs)
    }

    /// The plan a make of `film` would follow now, with this machine's speeds (measured
    /// first if need be), for `make --plan`.
    pub fn plan(&self, film: &Film, progress: &Progress) -> Result<(Plan, Calibration)> {
        let calibration = self.calibration(film, progress)?;
        let runs = self.stages_to_run(film)?;
        let plan = crate::plan::plan(film, &refs(&runs), &calibration.speeds, budget_s(film), 0.0)?;
        Ok((plan, calibration))
    }

    fn calibration(&self, film: &Film, progress: &Progress) -> Result<Calibration> {
        if let Some(speeds) = &self.speeds {
            return Ok(Calibration::fixed(speeds.clone()));
        }
        let all: Vec<Box<dyn Stage>> = StageId::ALL
            .iter()
            .filter_map(|&id| (self.stages)(id))
            .collect();
        Calibration::current(film, &refs(&all), progress)
    }

    /// Keeps what a run saw in this machine's record (not for fixed speeds). A record that
    /// cannot be written costs the next plan its accuracy, not this film: a warning.
    fn observe(&self, calibration: &mut Calibration, seen: &Speeds, progress: &Progress) {
        if self.speeds.is_some() {
            return;
        }
        if let Err(e) = calibration.keep(seen, &crate::plan::calibration::path()) {
            progress.info(format!("warning: {e:#}"));
        }
    }

    /// Runs every stale stage in order, within the film's time budget: planned first (a
    /// budget too small for the least work is refused before anything runs), then planned
    /// again before each stage from the time left. Stages not built yet or blocked are
    /// reported and skipped; the first failing stage stops the run.
    pub fn make(&self, film: &Film, progress: &Progress) -> Result<Vec<StageReport>> {
        let started = Instant::now();
        // An interrupted make of this budget spent some of it already.
        let carried_s = ledger::carried_s(&film.dir, film.settings.hours);
        if carried_s > 0.0 {
            progress.info(format!(
                "an unfinished make spent {carried_s:.0} s of this budget: planning the rest"
            ));
        }
        let mut calibration = self.calibration(film, progress)?;
        let runs = self.stages_to_run(film)?;
        let first = crate::plan::plan(
            film,
            &refs(&runs),
            &calibration.speeds,
            budget_s(film),
            carried_s + started.elapsed().as_secs_f64(),
        )?;
        if first.short_s > 0.0 && !runs.is_empty() {
            bail!("{}", crate::plan::too_small(film, &first));
        }
        if !runs.is_empty() {
            for line in first.lines() {
                progress.info(line);
            }
            fsutil::write_atomic(
                &film.dir.join(PLAN_FILE),
                &serde_json::to_vec_pretty(&first)?,
            )?;
        }
        let account = ledger::Running::start(&film.dir, film.settings.hours, started, carried_s);
        let mut reports = Vec::new();
        for id in StageId::ALL {
            let report = match self.evaluate(film, id)? {
                Evaluation::NotBuilt => skipped(id, Action::NotBuilt, None),
                Evaluation::Blocked(why) => skipped(id, Action::Blocked, Some(why)),
                Evaluation::Ready {
                    freshness: Freshness::Fresh,
                    ..
                } => skipped(id, Action::Fresh, None),
                Evaluation::Ready {
                    stage,
                    inputs,
                    had_run,
                    freshness,
                } => {
                    let (why, adopt) = match freshness {
                        Freshness::Stale(why) => (why, false),
                        Freshness::Edited(paths) => (
                            format!("{} edited by hand: taking the edit", paths.join(", ")),
                            true,
                        ),
                        _ => ("never run".to_string(), false),
                    };
                    if had_run {
                        progress.info(format!("{id}: stale: {why}"));
                    }
                    // The stages from this one on share what is left.
                    let rest: Vec<&dyn Stage> = std::iter::once(stage.as_ref())
                        .chain(runs.iter().filter(|s| s.id() > id).map(|s| s.as_ref()))
                        .collect();
                    let replan = crate::plan::plan(
                        film,
                        &rest,
                        &calibration.speeds,
                        budget_s(film),
                        account.spent_s(),
                    )?;
                    let planned = replan.planned(id).expect("the stage is in its plan");
                    let run = StageRun {
                        why,
                        adopt_edits: adopt,
                        planned: Planned {
                            planned_s: planned.planned_s,
                            intent: planned.intent.clone(),
                        },
                    };
                    let (report, seen) = run_stage(
                        film,
                        stage.as_ref(),
                        *inputs,
                        run,
                        &calibration.speeds,
                        progress,
                    )?;
                    self.observe(&mut calibration, &seen, progress);
                    report
                }
            };
            progress.info(describe(&report));
            reports.push(report);
        }
        account.finish()?;
        Ok(reports)
    }

    /// Reruns one stage even when it is fresh, with the share a whole make would plan for it;
    /// the stages downstream of it become stale.
    pub fn run_one(&self, film: &Film, id: StageId, progress: &Progress) -> Result<StageReport> {
        let (stage, inputs) = match self.evaluate(film, id)? {
            Evaluation::NotBuilt => {
                bail!("the {id} stage is not built yet in this version of benjamin")
            }
            Evaluation::Blocked(why) => bail!("{id} cannot run yet: {why}"),
            Evaluation::Ready { stage, inputs, .. } => (stage, inputs),
        };
        let mut calibration = self.calibration(film, progress)?;
        let all: Vec<Box<dyn Stage>> = StageId::ALL
            .iter()
            .filter_map(|&s| (self.stages)(s))
            .collect();
        let plan = crate::plan::plan(film, &refs(&all), &calibration.speeds, budget_s(film), 0.0)?;
        let planned = plan.planned(id).expect("every built stage is planned");
        let run = StageRun {
            why: "rerun asked for".into(),
            adopt_edits: false,
            planned: Planned {
                planned_s: planned.planned_s,
                intent: planned.intent.clone(),
            },
        };
        let (report, seen) = run_stage(
            film,
            stage.as_ref(),
            *inputs,
            run,
            &calibration.speeds,
            progress,
        )?;
        self.observe(&mut calibration, &seen, progress);
        progress.info(describe(&report));
        Ok(report)
    }
}

/// The plan a make starts from, beside film.toml.
pub const PLAN_FILE: &str = "plan.json";

fn budget_s(film: &Film) -> f64 {
    film.settings.hours * 3600.0
}

fn refs(stages: &[Box<dyn Stage>]) -> Vec<&dyn Stage> {
    stages.iter().map(|s| s.as_ref()).collect()
}

fn skipped(stage: StageId, action: Action, reason: Option<String>) -> StageReport {
    StageReport {
        stage,
        action,
        reason,
        duration_s: None,
        outputs: Vec::new(),
    }
}

/// One line for a report: "cut: ran in 12.3 s -> film.mp4".
pub fn describe(r: &StageReport) -> String {
    let mut line = format!("{:>10}: {}", r.stage.name(), r.action);
    if let Some(d) = r.duration_s {
        line += &format!(" in {d:.1} s");
    }
    if !r.outputs.is_empty() {
        line += &format!(" -> {}", crate::progress::name_a_few(&r.outputs));
    } else if let Some(why) = &r.reason {
        line += &format!(" ({why})");
    }
    line
}

/// Makes a film and succeeds only when its film.mp4 is cut; otherwise the error names the
/// first stage that could not run and why (a batch records it as the entry's failure).
pub fn make_film(film: &Film, progress: &Progress) -> Result<()> {
    let reports = Pipeline::default().make(film, progress)?;
    let cut = reports.iter().find(|r| r.stage == StageId::Cut);
    if cut.is_some_and(|r| r.action == Action::Ran || r.action == Action::Fresh) {
        return Ok(());
    }
    let stuck = reports
        .iter()
        .find(|r| r.action == Action::Blocked || r.action == Action::NotBuilt);
    match stuck {
        Some(r) => bail!(
            "no film: the {} stage is {}{}",
            r.stage,
            r.action,
            r.reason
                .as_deref()
                .map(|w| format!(": {w}"))
                .unwrap_or_default()
        ),
        None => bail!("no film: the pipeline has no cut"),
    }
}
