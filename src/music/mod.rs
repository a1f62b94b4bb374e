//! The score: a cue per scene, composed from the genre's harmony and a melody model trained
//! with candle, written as a standard MIDI file and played through a General MIDI SoundFont.
//!
//! Entry points: [`compose_score`] (no film folder needed), [`render::render_cue`] and
//! [`midi::write_midi`] to hear and hand it on, [`MusicStage`] in the pipeline.

pub mod arrange;
pub mod cli;
pub mod corpus;
pub mod genre;
pub mod melody;
pub mod midi;
pub mod model;
pub mod render;
pub mod score;
pub mod stage;
pub mod tension;
pub mod theory;
pub mod train;

use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::film::Genre;
use crate::progress::Progress;
use crate::screenplay::fountain::Screenplay;
use crate::voice::DialogueTimings;
pub use model::MelodyModel;
pub use score::{CueScore, Score};
pub use stage::MusicStage;
pub use tension::SceneBrief;

/// A scene shorter than this gets no cue.
pub const MIN_CUE_SECONDS: f64 = 0.05;

/// The random stream of a scene's cue: the film's seed and the scene's number.
pub fn cue_rng(seed: u64, scene: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (scene as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// What the composer knows of each scene: the voice stage's timings (which the cues follow)
/// and the screenplay's text (which sets each scene's tension).
pub fn scene_briefs(screenplay: &Screenplay, timings: &DialogueTimings) -> Vec<SceneBrief> {
    let n = timings.scenes.len();
    timings
        .scenes
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let position = if n > 1 {
                i as f64 / (n - 1) as f64
            } else {
                0.5
            };
            let tension = screenplay
                .scenes
                .iter()
                .find(|s| s.number == t.number)
                .map(|s| tension::scene_tension(s, t.duration, position))
                .unwrap_or(0.3);
            SceneBrief {
                number: t.number,
                start: t.start,
                duration: t.duration,
                tension,
            }
        })
        .collect()
}

/// Composes the score of a film: one cue per scene of positive length, deterministic for a
/// genre, seed, scene list and model.
pub fn compose_score(
    genre: Genre,
    seed: u64,
    scenes: &[SceneBrief],
    model: &MelodyModel,
    progress: &Progress,
) -> Result<Score> {
    // The film's key and band come from the seed alone, so every cue belongs to one score.
    let mut film_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x006d_7573_6963);
    let home_key = genre::home_key(genre, &mut film_rng);
    let band = genre::band(genre, &mut film_rng);
    let playable: Vec<&SceneBrief> = scenes
        .iter()
        .filter(|s| s.duration.is_finite() && s.duration >= MIN_CUE_SECONDS)
        .collect();
    let bar = progress.bar(playable.len() as u64, "composing", "cues");
    let mut cues = Vec::with_capacity(playable.len());
    for scene in playable {
        crate::progress::check_interrupted()?;
        let mut rng = cue_rng(seed, scene.number);
        let plan = genre::plan_cue(genre, home_key, scene.tension, &mut rng);
        cues.push(arrange::arrange_cue(scene, plan, &band, model, &mut rng)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Score {
        genre,
        seed,
        home_key,
        band,
        cues,
    })
}
