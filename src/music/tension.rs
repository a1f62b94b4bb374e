//! How tense a scene is, from its text: action verbs, how much is said and how loudly, the
//! time of day, and where it falls in the story. The score follows it (tempo, density,
//! loudness, register).

use serde::{Deserialize, Serialize};

use crate::screenplay::fountain::{Element, Scene};

/// What the composer knows about a scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneBrief {
    pub number: usize,
    /// Story time of the scene's first frame, seconds.
    pub start: f64,
    pub duration: f64,
    /// 0 (calm) to 1 (tense).
    pub tension: f64,
}

/// Verbs (as stems) that make a scene tense.
const ACTION_STEMS: [&str; 40] = [
    "run", "ran", "shoot", "shot", "fire", "fight", "grab", "slam", "chase", "fall", "fell",
    "scream", "crash", "explod", "hit", "kick", "break", "broke", "smash", "attack", "struggl",
    "shout", "storm", "flee", "fled", "race", "jump", "burst", "punch", "stab", "bleed", "blood",
    "gun", "knife", "dead", "die", "kill", "alarm", "siren", "rush",
];

/// Words that calm it.
const CALM_STEMS: [&str; 12] = [
    "smile", "laugh", "kiss", "sleep", "quiet", "soft", "gentl", "sit", "sat", "rest", "warm",
    "slow",
];

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
}

fn count_stems(text: &str, stems: &[&str]) -> usize {
    words(text)
        .filter(|w| stems.iter().any(|s| w.starts_with(s)))
        .count()
}

/// Tension of a scene (0 to 1). `position` is where it falls in the film (0 first, 1 last):
/// stories tighten towards the last act and ease in the final scene.
pub fn scene_tension(scene: &Scene, duration: f64, position: f64) -> f64 {
    let mut action_words = 0usize;
    let mut action_hits = 0usize;
    let mut calm_hits = 0usize;
    let mut lines = 0usize;
    let mut loud = 0usize;
    for e in &scene.elements {
        match e {
            Element::Action { text } => {
                action_words += words(text).count();
                action_hits += count_stems(text, &ACTION_STEMS);
                calm_hits += count_stems(text, &CALM_STEMS);
            }
            Element::Dialogue(d) => {
                lines += 1;
                action_hits += count_stems(&d.text, &ACTION_STEMS) / 2;
                let shouted = d.text.contains('!')
                    || d.parenthetical.as_deref().is_some_and(|p| {
                        let p = p.to_lowercase();
                        ["shout", "angr", "scream", "yell", "furious"]
                            .iter()
                            .any(|w| p.contains(w))
                    });
                loud += usize::from(shouted);
            }
            _ => {}
        }
    }
    // Action verbs per 20 words of action, saturating.
    let action = (action_hits as f64 * 20.0 / action_words.max(20) as f64).min(1.0);
    let calm = (calm_hits as f64 * 20.0 / action_words.max(20) as f64).min(1.0);
    // Lines a minute: a rapid exchange (12+) is tense.
    let density = (lines as f64 * 60.0 / duration.max(1.0) / 12.0).min(1.0);
    let shouting = loud as f64 / lines.max(1) as f64;
    let night = match scene.heading.time.to_uppercase().as_str() {
        t if t.contains("NIGHT") => 0.12,
        t if t.contains("DUSK") || t.contains("EVENING") => 0.06,
        t if t.contains("DAY") || t.contains("MORNING") => -0.05,
        _ => 0.0,
    };
    // The arc: rises to its top at three quarters of the film, settles at the end.
    let arc = if position < 0.75 {
        0.15 * position / 0.75
    } else {
        0.15 - 0.4 * (position - 0.75)
    };
    (0.2 + 0.35 * action + 0.15 * density + 0.15 * shouting + night + arc - 0.15 * calm)
        .clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screenplay::fountain::parse;

    #[test]
    fn a_chase_at_night_is_tenser_than_breakfast() {
        let script = parse(
            "EXT. DOCKS - NIGHT\n\nShe runs. Gunshots. He chases her, grabs the gun and fires. A siren.\n\nMAX\nStop!\n\nINT. KITCHEN - DAY\n\nThey sit and smile over warm coffee, slow and quiet.\n\nANA\nMore toast?\n",
        );
        let chase = scene_tension(&script.scenes[0], 20.0, 0.5);
        let breakfast = scene_tension(&script.scenes[1], 20.0, 0.5);
        assert!(chase > breakfast + 0.3, "{chase} vs {breakfast}");
        assert!((0.0..=1.0).contains(&chase) && (0.0..=1.0).contains(&breakfast));
    }
}
