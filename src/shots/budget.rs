//! What time buys the shots stage: more selections searched for the one that fits the film
//! best ([`super::select::search`]).

use super::select::Pacing;
use crate::archive::Archive;
use crate::film::Film;
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

/// Scene-window scores one selection of this film will take, before the scenes are known:
/// the story's pieces (the length asked for) times the archive's windows.
fn work_guess(film: &Film) -> f64 {
    let pacing = Pacing::default();
    let pieces = (film.settings.story_seconds_guess() / pacing.max_piece).ceil();
    let windows: f64 = Archive::open_existing(&film.settings.archive_dir())
        .and_then(|a| a.sources())
        .map(|sources| {
            let shots = sources.iter().flat_map(|s| &s.shots);
            shots
                .map(|shot| ((shot.end - shot.start) / pacing.max_piece).ceil().max(1.0))
                .sum()
        })
        .unwrap_or(0.0);
    pieces.max(1.0) * windows
}

fn selection_s(film: &Film, speeds: &Speeds) -> f64 {
    speeds.seconds(WORK, work_guess(film), FALLBACK_RATE)
}

pub fn estimate(film: &Film, speeds: &Speeds) -> Estimate {
    Estimate {
        least_s: LEAST_S,
        better_from_s: 0.0,
        better_upto_s: ((MOST_CANDIDATES - 1) as f64 * selection_s(film, speeds)).min(UPTO_S),
        weight: 0.02,
        steps_s: Vec::new(),
    }
}

pub fn intent(film: &Film, speeds: &Speeds, seconds: f64) -> Intent {
    let n = candidates(speeds, seconds, work_guess(film));
    Intent::plain(if n > 1 {
        format!("match scenes to footage, then keep the best of ~{n} orders of filling them")
    } else {
        "match scenes to footage, filling them in the story's order".to_string()
    })
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
