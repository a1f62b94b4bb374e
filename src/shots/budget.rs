//! What time buys the shots stage: more selections searched for the one that fits the film
//! best ([`super::select::search`]).

use crate::manifest::Intent;
use crate::stage::{Estimate, Speeds};

/// The unit of the search's speed: scene-window scores ([`super::select::work`]).
pub const WORK: &str = "shots.window_scores";

/// Window scores per second on the 2-core reference machine until this one is measured.
const FALLBACK_RATE: f64 = 2e6;

/// Opening the archive's index and matching every scene's text to the footage.
const LEAST_S: f64 = 2.0;

/// Past a few dozen orders the best fit rarely moves.
const MOST_CANDIDATES: usize = 64;

/// What the search may take at most, whatever the archive's size.
const UPTO_S: f64 = 20.0;

pub fn estimate() -> Estimate {
    Estimate {
        least_s: LEAST_S,
        better_from_s: 0.0,
        better_upto_s: UPTO_S,
        weight: 0.02,
    }
}

pub fn intent(seconds: f64) -> Intent {
    Intent::plain(format!(
        "match scenes to footage, then search other orders of filling them for {:.0} s (up to {MOST_CANDIDATES} selections)",
        (seconds - LEAST_S).max(0.0)
    ))
}

/// Selections the search can afford in `seconds` when each costs `work` window scores
/// (the story's order is always tried).
pub fn candidates(speeds: &Speeds, seconds: f64, work: f64) -> usize {
    let each = speeds.seconds(WORK, work.max(1.0), FALLBACK_RATE);
    let more = ((seconds - LEAST_S).max(0.0) / each).floor() as usize;
    (1 + more).min(MOST_CANDIDATES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_buys_selections_up_to_a_cap() {
        let mut speeds = Speeds::default();
        speeds.set(WORK, 1000.0);
        assert_eq!(candidates(&speeds, 1.0, 500.0), 1);
        assert_eq!(candidates(&speeds, LEAST_S + 2.0, 500.0), 5);
        assert_eq!(candidates(&speeds, 1e6, 500.0), MOST_CANDIDATES);
    }
}
