//! The budget planner: from this machine's speeds ([`calibration`]), the film's size and the
//! time left, what each stage does and for how long. The pipeline plans before a `make` (and
//! `make --plan` prints that plan), then again before every stage from what is left, so a
//! stage that ran over takes its overrun from the stages after it.
//!
//! The split ([`allot`]) is plain arithmetic over each stage's [`Estimate`]: every stage gets
//! the least it needs; an all-or-nothing improvement (a face swap good enough to show) is
//! bought next if it fits; what is left is shared by weight among the stages that can still
//! use it, up to what each can use. Time nothing can use is reported, not hidden.

pub mod calibration;
pub mod ledger;

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
    Ok(Plan {
        budget_s,
        elapsed_s,
        reserve_s: reserve,
        stages,
        unspent_s: allotment.unspent_s,
        short_s: allotment.short_s,
    })
}

/// The split of some seconds among stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Allotment {
    pub seconds: Vec<f64>,
    pub unspent_s: f64,
    pub short_s: f64,
}

/// Splits `available` seconds among stages of these estimates (see the module's comment).
/// When the least work does not fit, every stage still gets its least and `short_s` says by
/// how much the time is short.
pub fn allot(available: f64, estimates: &[Estimate]) -> Allotment {
    let available = available.max(0.0);
    let least: f64 = estimates.iter().map(|e| e.least_s).sum();
    let mut seconds: Vec<f64> = estimates.iter().map(|e| e.least_s).collect();
    if least > available {
        return Allotment {
            seconds,
            unspent_s: 0.0,
            short_s: least - available,
        };
    }
    let mut spare = available - least;
    // Room each stage has left to grow; `None` while an all-or-nothing step is not bought.
    let mut room: Vec<Option<f64>> = estimates
        .iter()
        .map(|e| (e.better_from_s <= 0.0).then_some(e.better_upto_s.max(0.0)))
        .collect();
    let mut steps: Vec<usize> = (0..estimates.len())
        .filter(|&i| estimates[i].better_from_s > 0.0)
        .collect();
    steps.sort_by(|&a, &b| estimates[b].weight.total_cmp(&estimates[a].weight));
    for i in steps {
        let e = &estimates[i];
        if e.better_from_s <= spare {
            seconds[i] += e.better_from_s;
            spare -= e.better_from_s;
            room[i] = Some((e.better_upto_s - e.better_from_s).max(0.0));
        }
    }
    // Water-filling by weight: a stage that reaches its room drops out and its share goes
    // round again.
    loop {
        let open: Vec<usize> = (0..estimates.len())
            .filter(|&i| estimates[i].weight > 0.0 && room[i].is_some_and(|r| r > 1e-9))
            .collect();
        if open.is_empty() || spare <= 1e-9 {
            break;
        }
        let weights: f64 = open.iter().map(|&i| estimates[i].weight).sum();
        let mut given = 0.0;
        for &i in &open {
            let share = (spare * estimates[i].weight / weights).min(room[i].unwrap_or(0.0));
            seconds[i] += share;
            room[i] = room[i].map(|r| r - share);
            given += share;
        }
        spare -= given;
        if given <= 1e-9 {
            break;
        }
    }
    Allotment {
        seconds,
        unspent_s: spare.max(0.0),
        short_s: 0.0,
    }
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
            better_from_s: 0.0,
            better_upto_s: upto,
            weight,
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
        };
        let small = allot(40.0, &[open(10.0, f64::INFINITY, 1.0), swap]);
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
    fn too_little_time_gives_every_stage_its_least_and_says_how_short_it_is() {
        let a = allot(12.0, &[open(10.0, 5.0, 1.0), Estimate::fixed(5.0)]);
        assert_eq!(a.seconds, vec![10.0, 5.0]);
        assert!((a.short_s - 3.0).abs() < 1e-9);
        assert_eq!(allot(-4.0, &[Estimate::fixed(1.0)]).short_s, 1.0);
    }
}
