//! The arithmetic of a plan: how some seconds are split among stages of given estimates.

use crate::stage::Estimate;

/// The split of some seconds among stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Allotment {
    pub seconds: Vec<f64>,
    pub unspent_s: f64,
    pub short_s: f64,
}

/// Splits `available` seconds among stages of these estimates (see the plan module's comment).
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
    let mut split = Split {
        estimates,
        seconds,
        room,
    };
    let spare = split.water_fill(spare);
    // A share that falls between two of a stage's steps buys nothing there: such remainders
    // buy whole steps instead, then what is left is shared again (a stage whose work comes in
    // under its estimate may still buy a step with it, or hand it on to the stages after it).
    let spare = spare + split.snap_to_steps();
    let spare = split.buy_steps(spare);
    let spare = split.water_fill(spare);
    Allotment {
        seconds: split.seconds,
        unspent_s: spare.max(0.0),
        short_s: 0.0,
    }
}

/// The seconds given so far, and the room each stage has left to grow (`None` while its
/// all-or-nothing improvement is not bought).
struct Split<'a> {
    estimates: &'a [Estimate],
    seconds: Vec<f64>,
    room: Vec<Option<f64>>,
}

impl Split<'_> {
    /// Shares `spare` by weight among the stages with room left, a stage that reaches its room
    /// dropping out and its share going round again; returns what none could take.
    fn water_fill(&mut self, mut spare: f64) -> f64 {
        loop {
            let open: Vec<usize> = (0..self.estimates.len())
                .filter(|&i| {
                    self.estimates[i].weight > 0.0 && self.room[i].is_some_and(|r| r > 1e-9)
                })
                .collect();
            if open.is_empty() || spare <= 1e-9 {
                return spare;
            }
            let weights: f64 = open.iter().map(|&i| self.estimates[i].weight).sum();
            let mut given = 0.0;
            for &i in &open {
                let share =
                    (spare * self.estimates[i].weight / weights).min(self.room[i].unwrap_or(0.0));
                self.seconds[i] += share;
                self.room[i] = self.room[i].map(|r| r - share);
                given += share;
            }
            spare -= given;
            if given <= 1e-9 {
                return spare;
            }
        }
    }

    /// Takes back from every stepped stage what lies past its last whole step (below its last
    /// one: past that, any extra helps); returns the seconds taken.
    fn snap_to_steps(&mut self) -> f64 {
        let mut freed = 0.0;
        for (i, e) in self.estimates.iter().enumerate() {
            let Some(at) = step_at(e, self.seconds[i]).filter(|at| at.next.is_some()) else {
                continue;
            };
            if self.room[i].is_none() {
                continue;
            }
            let back = (at.extra - at.paid).max(0.0);
            self.seconds[i] -= back;
            self.room[i] = self.room[i].map(|r| r + back);
            freed += back;
        }
        freed
    }

    /// Buys whole steps with `spare`, one at a time, each time the next step of the stage with
    /// the most weight (the cheaper on a tie) that fits; returns what is left.
    fn buy_steps(&mut self, mut spare: f64) -> f64 {
        loop {
            let next = |i: usize| {
                self.room[i]?;
                let at = step_at(&self.estimates[i], self.seconds[i])?;
                let cost = at.next? - at.extra;
                (self.estimates[i].weight > 0.0 && cost <= spare + 1e-9).then_some((i, cost))
            };
            let Some((i, cost)) = (0..self.estimates.len()).filter_map(next).max_by(|a, b| {
                let (wa, wb) = (self.estimates[a.0].weight, self.estimates[b.0].weight);
                wa.total_cmp(&wb).then(b.1.total_cmp(&a.1))
            }) else {
                return spare;
            };
            self.seconds[i] += cost;
            self.room[i] = self.room[i].map(|r| r - cost);
            spare -= cost;
        }
    }
}

/// Where a stage that buys in steps stands with `seconds`: the extra past its least, the
/// extra its last whole step paid for, and the extra its next step needs (`None` past the
/// last, where any extra helps). `None` for a stage without steps.
#[derive(Debug, Clone, Copy)]
pub(super) struct StepAt {
    pub extra: f64,
    pub paid: f64,
    pub next: Option<f64>,
}

pub(super) fn step_at(e: &Estimate, seconds: f64) -> Option<StepAt> {
    let extra = seconds - e.least_s;
    let next = e.steps_s.iter().copied().find(|&s| s > extra + 1e-9);
    let paid = e.steps_s.iter().copied().filter(|&s| s <= extra + 1e-9);
    (!e.steps_s.is_empty()).then(|| StepAt {
        extra,
        paid: paid.fold(e.better_from_s, f64::max),
        next,
    })
}
