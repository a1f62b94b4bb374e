//! The budget planner: from this machine's speeds ([`calibration`]), the film's size and the
//! time left, what each stage does and for how long. The pipeline plans before a `make` (and
//! `make --plan` prints that plan), then again before every stage from what is left, so a
//! stage that ran over takes its overrun from the stages after it.
//!
//! The split ([`allot`]) is plain arithmetic over each stage's [`Estimate`]: every stage gets
//! the least it needs; an all-or-nothing improvement (a face swap good enough to show) is
//! bought next if it fits; what is left is shared by weight among the stages that can still
//! use it, up to what each can use. Where a stage buys in whole steps (drafts, presets), what
//! falls between its steps buys whole steps first. Time nothing can use is reported, not
//! hidden, and so is the cushion that buys no further step.

mod allot;
pub mod calibration;
pub mod ledger;

use allot::step_at;
pub use allot::{allot, Allotment};

use anyhow::Result;
use serde::Serialize;

use crate::film::Film;
use crate::stage::{Estimate, Intent, Speeds, Stage, StageId};

/// Seconds kept aside for what no stage accounts for (starting, checking inputs, writing
/// manifests): two seconds and 1% of the budget.
pub fn reserve_s(budget_s: f64) -> f64 {
    2.0 + 0.01 * budget_s
}

/// One stage's part of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct StagePlan {
    pub stage: StageId,
    pub planned_s: f64,
    pub estimate: Estimate,
    pub intent: Intent,
}

/// What each stage does with the time left.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub budget_s: f64,
    /// Spent before this plan was made (calibration, the stages already run).
    pub elapsed_s: f64,
    pub reserve_s: f64,
    pub stages: Vec<StagePlan>,
    /// Seconds no stage can use to make the film better.
    pub unspent_s: f64,
    /// Seconds given to stages that buy in steps beyond their last whole step: too few for
    /// the next one, they are a cushion for overruns, and go on to later stages when an
    /// earlier one is done early.
    pub cushion_s: f64,
    /// How many more seconds the least work needs than there are (0 when it fits).
    pub short_s: f64,
}

impl Plan {
    /// The seconds the planned work needs at least, with the reserve and what was spent.
    pub fn least_total_s(&self) -> f64 {
        self.elapsed_s
            + self.reserve_s
            + self.stages.iter().map(|s| s.estimate.least_s).sum::<f64>()
    }

    pub fn planned(&self, id: StageId) -> Option<&StagePlan> {
        self.stages.iter().find(|s| s.stage == id)
    }

    /// Where the unspent time goes, in words.
    pub fn unspent_note(&self) -> Option<String> {
        (self.unspent_s >= 1.0).then(|| {
            format!(
                "{:.0} s left unspent: no stage of this film can use more time to make it better (the film ends early)",
                self.unspent_s
            )
        })
    }

    /// Where the seconds that buy no further step go, in words.
    pub fn cushion_note(&self) -> Option<String> {
        let next: Vec<String> = self
            .stages
            .iter()
            .filter_map(|s| {
                let at = step_at(&s.estimate, s.planned_s)?;
                let more = at.next? - at.extra;
                Some(format!(
                    "the {}'s next step needs {more:.0} s more",
                    s.stage
                ))
            })
            .collect();
        (self.cushion_s >= 1.0).then(|| {
            format!(
                "{:.0} s buy no further step ({}): a cushion for a stage that runs over, handed on to the stages after one that finishes early",
                self.cushion_s,
                next.join(", ")
            )
        })
    }

    /// The plan as a table, for `make --plan` and the start of a make.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "plan: {:.0} s budget, {:.0} s spent, {:.0} s kept for start-up and checks",
            self.budget_s, self.elapsed_s, self.reserve_s
        )];
        for s in &self.stages {
            lines.push(format!(
                "{:>10}: {:>6.0} s  {}",
                s.stage.name(),
                s.planned_s,
                s.intent.summary
            ));
        }
        lines.extend(self.cushion_note());
        lines.extend(self.unspent_note());
        lines
    }
}

/// Plans `stages` (in the order they run) for the `budget_s - elapsed_s` seconds left.
pub fn plan(
    film: &Film,
    stages: &[&dyn Stage],
    speeds: &Speeds,
    budget_s: f64,
    elapsed_s: f64,
) -> Result<Plan> {
    let estimates = stages
        .iter()
        .map(|s| s.estimate(film, speeds))
        .collect::<Result<Vec<_>>>()?;
    let reserve = reserve_s(budget_s);
    let allotment = allot(budget_s - elapsed_s - reserve, &estimates);
    let stages = stages
        .iter()
        .zip(estimates)
        .zip(&allotment.seconds)
        .map(|((stage, estimate), &planned_s)| {
            Ok(StagePlan {
                stage: stage.id(),
                planned_s,
                estimate,
                intent: stage.intent(film, speeds, planned_s)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let cushion_s = cushion_of(&stages);
    Ok(Plan {
        budget_s,
        elapsed_s,
        reserve_s: reserve,
        stages,
        unspent_s: allotment.unspent_s,
        cushion_s,
        short_s: allotment.short_s,
    })
}

/// The seconds stages are given past their last whole step, short of the next.
fn cushion_of(stages: &[StagePlan]) -> f64 {
    stages
        .iter()
        .filter_map(|s| step_at(&s.estimate, s.planned_s))
        .filter(|at| at.next.is_some())
        .map(|at| (at.extra - at.paid).max(0.0))
        .sum()
}

/// The refusal of a budget too small for the least work, naming the budget it needs.
pub fn too_small(film: &Film, plan: &Plan) -> String {
    let needed = plan.least_total_s();
    let hours = (needed / 3600.0 * 100.0).ceil() / 100.0;
    format!(
        "a {}-minute film needs at least {needed:.0} s on this machine, and --hours {} gives {:.0} s: give it --hours {hours:.2} or more, or ask for fewer --minutes",
        film.settings.minutes, film.settings.hours, plan.budget_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(least_s: f64, upto: f64, weight: f64) -> Estimate {
        Estimate {
            least_s,
            better_upto_s: upto,
            weight,
            ..Default::default()
        }
    }

    #[test]
    fn every_stage_gets_its_least_and_the_rest_goes_by_weight_up_to_what_each_can_use() {
        let a = allot(
            100.0,
            &[
                open(10.0, f64::INFINITY, 3.0),
                Estimate::fixed(5.0),
                open(20.0, 5.0, 1.0),
            ],
        );
        // 65 spare: 3/4 and 1/4, the last capped at 5; its rest goes to the first.
        assert_eq!(a.seconds[1], 5.0);
        assert!((a.seconds[2] - 25.0).abs() < 1e-9, "{a:?}");
        assert!((a.seconds[0] - 70.0).abs() < 1e-9, "{a:?}");
        assert_eq!(a.unspent_s, 0.0);
        assert_eq!(a.short_s, 0.0);
        assert!((a.seconds.iter().sum::<f64>() - 100.0).abs() < 1e-9);
    }

    #[test]
    fn time_nothing_can_use_is_reported_unspent() {
        let a = allot(100.0, &[open(10.0, 20.0, 1.0), Estimate::fixed(5.0)]);
        assert_eq!(a.seconds, vec![30.0, 5.0]);
        assert!((a.unspent_s - 65.0).abs() < 1e-9);
    }

    #[test]
    fn an_all_or_nothing_step_is_bought_only_when_it_fits() {
        let swap = Estimate {
            least_s: 1.0,
            better_from_s: 50.0,
            better_upto_s: f64::INFINITY,
            weight: 2.0,
            ..Default::default()
        };
        let small = allot(40.0, &[open(10.0, f64::INFINITY, 1.0), swap.clone()]);
        assert_eq!(small.seconds[1], 1.0, "{small:?}");
        assert!((small.seconds[0] - 39.0).abs() < 1e-9);
        let big = allot(160.0, &[open(10.0, f64::INFINITY, 1.0), swap]);
        // 149 spare: 50 buy the swap, 99 are shared 1:2.
        assert!(
            (big.seconds[1] - (1.0 + 50.0 + 66.0)).abs() < 1e-9,
            "{big:?}"
        );
        assert!((big.seconds[0] - 43.0).abs() < 1e-9, "{big:?}");
    }

    #[test]
    fn remainders_between_steps_buy_whole_steps_first() {
        // Drafts of 37 s (weight 0.3) and presets 117, 213 and 442 s slower (weight 0.1).
        let drafts = Estimate {
            steps_s: vec![37.0, 74.0, 111.0],
            ..open(40.0, 111.0, 0.3)
        };
        let cut = Estimate {
            steps_s: vec![117.0, 213.0, 442.0],
            ..open(55.0, 442.0, 0.1)
        };
        let both = [drafts.clone(), cut.clone()];
        // 75 spare: by weight alone 56 and 19, which buy one draft and no preset; the
        // remainders (19 and 19) buy a second draft.
        let a = allot(170.0, &both);
        assert!(a.seconds[0] >= 40.0 + 74.0, "{a:?}");
        assert!(a.seconds[1] < 55.0 + 117.0, "{a:?}");
        assert!((a.seconds.iter().sum::<f64>() - 170.0).abs() < 1e-9);
        // With every draft bought, the rest buys the next preset once it fits.
        let a = allot(40.0 + 111.0 + 55.0 + 117.0, &both);
        assert!((a.seconds[0] - 151.0).abs() < 1e-9, "{a:?}");
        assert!((a.seconds[1] - 172.0).abs() < 1e-9, "{a:?}");
        // What buys no further step is said, with what the next one needs.
        let plan = Plan {
            budget_s: 170.0,
            elapsed_s: 0.0,
            reserve_s: 0.0,
            stages: [drafts, cut]
                .into_iter()
                .zip(&a.seconds)
                .zip([StageId::Screenplay, StageId::Cut])
                .map(|((estimate, &planned_s), stage)| StagePlan {
                    stage,
                    planned_s: planned_s - 20.0,
                    estimate,
                    intent: Intent::plain("works"),
                })
                .collect(),
            unspent_s: 0.0,
            cushion_s: 0.0,
            short_s: 0.0,
        };
        let cushion = cushion_of(&plan.stages);
        assert!((cushion - (17.0 + 97.0)).abs() < 1e-9, "{cushion}");
        let note = Plan {
            cushion_s: cushion,
            ..plan
        }
        .cushion_note()
        .unwrap();
        assert!(
            note.contains("the cut's next step needs 20 s more"),
            "{note}"
        );
        // Past a stage's last step, any extra helps and nothing is taken back.
        let tuned = Estimate {
            steps_s: vec![37.0],
            ..open(40.0, f64::INFINITY, 0.3)
        };
        let a = allot(200.0, &[tuned]);
        assert!((a.seconds[0] - 200.0).abs() < 1e-9, "{a:?}");
    }

    #[test]
    fn too_little_time_gives_every_stage_its_least_and_says_how_short_it_is() {
        let a = allot(12.0, &[open(10.0, 5.0, 1.0), Estimate::fixed(5.0)]);
        assert_eq!(a.seconds, vec![10.0, 5.0]);
        assert!((a.short_s - 3.0).abs() < 1e-9);
        assert_eq!(allot(-4.0, &[Estimate::fixed(1.0)]).short_s, 1.0);
    }
}
