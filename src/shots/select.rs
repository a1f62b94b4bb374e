//! Choosing footage for scenes: every scene filled to its length, shots that fit its light and
//! its words, no footage used twice in a film, the same choice for the same seed.

use anyhow::{bail, Result};
use rand::Rng;
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
use serde::{Deserialize, Serialize};

/// What a scene asks of the footage.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneNeed {
    pub number: usize,
    /// Frames of film to fill.
    pub frames: usize,
    /// Wanted light: Some(true) for night (dark shots), Some(false) for day, None otherwise.
    pub night: Option<bool>,
    /// Characters who speak in the scene.
    pub speakers: usize,
}

/// A shot of the archive, as the selector sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Footage {
    /// Index of the source (for the caller) and of the shot in it.
    pub source: usize,
    pub shot: usize,
    /// Seconds of the source; a still has none and is held as long as asked (up to a cap).
    pub start: f64,
    pub end: f64,
    pub still: bool,
    /// Mean luma, 0-1.
    pub luma: f32,
    /// Faces counted in the shot, when the archive counted them.
    pub faces: Option<usize>,
}

/// One piece of footage placed in a scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pick {
    pub scene: usize,
    pub source: usize,
    pub shot: usize,
    /// Seconds of the source (a still: 0 to its hold).
    pub start: f64,
    pub end: f64,
    /// Frames of film it fills.
    pub frames: usize,
    /// The score that chose it: text similarity, light fit, and a little chance.
    pub similarity: f32,
    pub light: f32,
    pub score: f32,
    /// How well it fits its scene: the score without the chance.
    pub fit: f32,
}

/// Pacing of the selection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pacing {
    /// Longest piece of one shot, seconds.
    pub max_piece: f64,
    /// Shortest piece, seconds (only the last piece of a scene may be shorter when nothing else fits).
    pub min_piece: f64,
    /// Longest hold of a still, seconds.
    pub max_still: f64,
    /// Frames skipped at each end of a shot, away from the detector's boundary.
    pub margin_frames: usize,
    /// Weight of the random part of the score (variety between seeds).
    pub chance: f32,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            max_piece: 6.0,
            min_piece: 1.5,
            max_still: 5.0,
            margin_frames: 2,
            chance: 0.15,
        }
    }
}

/// A window of a shot that has not been used yet.
#[derive(Debug, Clone)]
struct Window {
    footage: usize,
    start: f64,
    end: f64,
}

/// Splits every shot into windows of at most `max_piece` seconds: a long take serves several
/// scenes, but no frame of it is shown twice.
fn windows(footage: &[Footage], pacing: &Pacing, fps: f64) -> Vec<Window> {
    let mut out = Vec::new();
    for (i, f) in footage.iter().enumerate() {
        if f.still {
            out.push(Window {
                footage: i,
                start: 0.0,
                end: pacing.max_still,
            });
            continue;
        }
        let margin = pacing.margin_frames as f64 / fps;
        let (a, b) = (f.start + margin, f.end - margin);
        if b - a < 1.0 / fps {
            continue;
        }
        let pieces = ((b - a) / pacing.max_piece).ceil().max(1.0) as usize;
        let len = (b - a) / pieces as f64;
        for k in 0..pieces {
            out.push(Window {
                footage: i,
                start: a + k as f64 * len,
                end: a + (k + 1) as f64 * len,
            });
        }
    }
    out
}

/// How well a shot's light fits the scene, -1 to 1.
fn light_fit(night: Option<bool>, luma: f32) -> f32 {
    match night {
        Some(true) => ((0.45 - luma) / 0.3).clamp(-1.0, 1.0),
        Some(false) => ((luma - 0.3) / 0.3).clamp(-1.0, 1.0),
        None => 0.0,
    }
}

/// How well the faces on screen fit who is in the scene: people for dialogue, empty places
/// for scenes without a word.
fn face_fit(speakers: usize, faces: Option<usize>) -> f32 {
    match (speakers, faces) {
        (_, None) => 0.0,
        (0, Some(0)) => 0.1,
        (0, Some(_)) => 0.0,
        (_, Some(0)) => 0.0,
        (k, Some(n)) if n <= k => 0.2,
        (_, Some(_)) => 0.1,
    }
}

/// Picks footage for every scene. `similarity[s][f]` is how well footage `f`'s text matches
/// scene `s` (0 to 1). Fails, saying how much is missing, when the archive runs out.
pub fn select(
    scenes: &[SceneNeed],
    footage: &[Footage],
    similarity: &[Vec<f32>],
    fps: f64,
    seed: u64,
    pacing: &Pacing,
) -> Result<Vec<Pick>> {
    let order: Vec<usize> = (0..scenes.len()).collect();
    let input = Selection {
        scenes,
        footage,
        similarity,
        fps,
        pacing,
    };
    select_in_order(&input, &order, seed)
}

/// What a selection chooses from.
struct Selection<'a> {
    scenes: &'a [SceneNeed],
    footage: &'a [Footage],
    similarity: &'a [Vec<f32>],
    fps: f64,
    pacing: &'a Pacing,
}

/// Fills the scenes greedily in `order` (indices into `scenes`); the picks come back in
/// story order.
fn select_in_order(input: &Selection, order: &[usize], seed: u64) -> Result<Vec<Pick>> {
    let Selection {
        scenes,
        footage,
        similarity,
        fps,
        pacing,
    } = *input;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5407_5e1e_c7ed);
    let mut free = windows(footage, pacing, fps);
    let frames_of = |seconds: f64| (seconds * fps).round() as usize;
    let min_frames = frames_of(pacing.min_piece).max(1);
    let mut picks = Vec::new();
    for (done, &s) in order.iter().enumerate() {
        let need = &scenes[s];
        let mut left = need.frames;
        while left > 0 {
            // Score every free window; the last piece of a scene prefers windows long enough
            // to finish it.
            let best = free
                .iter()
                .enumerate()
                .map(|(w, win)| {
                    let f = &footage[win.footage];
                    let sim = similarity[s][win.footage];
                    let light = light_fit(need.night, f.luma);
                    let available = frames_of(win.end - win.start);
                    let short = if available < left.min(min_frames) {
                        -0.5
                    } else {
                        0.0
                    };
                    let fit = sim + 0.3 * light + face_fit(need.speakers, f.faces);
                    let score = fit + short + pacing.chance * rng.random::<f32>();
                    (w, sim, light, score, fit)
                })
                .max_by(|a, b| a.3.total_cmp(&b.3));
            let Some((w, sim, light, score, fit)) = best else {
                let missing: usize = left
                    + order[done + 1..]
                        .iter()
                        .map(|&n| scenes[n].frames)
                        .sum::<usize>();
                bail!(
                    "the archive ran out of unused footage: {:.0} s more are needed (scene {} on); add footage with `benjamin archive add`, or make a shorter film (--minutes)",
                    missing as f64 / fps,
                    need.number
                );
            };
            let win = free.remove(w);
            let available = frames_of(win.end - win.start).max(1);
            let mut take = available.min(left);
            // Never leave a sliver to finish the scene with.
            if left > take && left - take < min_frames && take > 2 * min_frames {
                take -= min_frames - (left - take);
            }
            let f = &footage[win.footage];
            let seconds = take as f64 / fps;
            let (start, end) = if f.still {
                (0.0, seconds)
            } else {
                // What the scene does not need stays free for later scenes.
                let rest = win.end - (win.start + seconds);
                if frames_of(rest) >= min_frames {
                    free.push(Window {
                        footage: win.footage,
                        start: win.start + seconds,
                        end: win.end,
                    });
                }
                (win.start, win.start + seconds)
            };
            picks.push(Pick {
                scene: need.number,
                source: f.source,
                shot: f.shot,
                start,
                end,
                frames: take,
                similarity: sim,
                light,
                score,
                fit,
            });
            left -= take;
        }
    }
    // Stable: a scene's pieces keep their order.
    picks.sort_by_key(|p| scenes.iter().position(|n| n.number == p.scene));
    Ok(picks)
}

/// How well a selection fits its scenes: the mean fit of its picks, weighed by frames.
pub fn fit(picks: &[Pick]) -> f64 {
    let frames: usize = picks.iter().map(|p| p.frames).sum();
    let total: f64 = picks.iter().map(|p| p.fit as f64 * p.frames as f64).sum();
    total / frames.max(1) as f64
}

/// The best of several selections and the fit of each.
#[derive(Debug, Clone)]
pub struct Search {
    pub picks: Vec<Pick>,
    pub fits: Vec<f64>,
    pub chosen: usize,
}

/// `candidates` selections, each filling the scenes in another order (the story's first,
/// then seeded shuffles), and the one that fits the film best. Filling is greedy, so the
/// scene that comes first takes the best footage; another order can give it to the scene it
/// fits better. The same seed and count give the same choice.
pub fn search(
    scenes: &[SceneNeed],
    footage: &[Footage],
    similarity: &[Vec<f32>],
    fps: f64,
    seed: u64,
    pacing: &Pacing,
    candidates: usize,
) -> Result<Search> {
    use rand::seq::SliceRandom;
    let input = Selection {
        scenes,
        footage,
        similarity,
        fps,
        pacing,
    };
    let mut order: Vec<usize> = (0..scenes.len()).collect();
    // The story's order fails only when the archive runs out, and then every order does.
    let mut best = select_in_order(&input, &order, seed)?;
    let mut search = Search {
        fits: vec![fit(&best)],
        picks: Vec::new(),
        chosen: 0,
    };
    let mut shuffle = ChaCha8Rng::seed_from_u64(seed ^ 0x0bde_45ea_5c4e);
    for k in 1..candidates.max(1) {
        crate::progress::check_interrupted()?;
        order.shuffle(&mut shuffle);
        let Ok(picks) = select_in_order(&input, &order, seed.wrapping_add(k as u64)) else {
            search.fits.push(f64::NAN);
            continue;
        };
        let f = fit(&picks);
        if f > search.fits[search.chosen] {
            search.chosen = k;
            best = picks;
        }
        search.fits.push(f);
    }
    search.picks = best;
    Ok(search)
}

/// Scene-window scores one selection computes (each piece scores every free window): the
/// unit of the search's cost.
pub fn work(scenes: &[SceneNeed], footage: &[Footage], fps: f64, pacing: &Pacing) -> f64 {
    let pieces: f64 = scenes
        .iter()
        .map(|n| (n.frames as f64 / (pacing.max_piece * fps)).ceil().max(1.0))
        .sum();
    pieces * windows(footage, pacing, fps).len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn footage() -> Vec<Footage> {
        (0..8)
            .map(|i| Footage {
                source: i / 2,
                shot: i % 2,
                start: i as f64 * 10.0,
                end: i as f64 * 10.0 + 4.0 + i as f64,
                still: false,
                luma: i as f32 / 8.0,
                faces: None,
            })
            .collect()
    }

    fn needs() -> Vec<SceneNeed> {
        vec![
            SceneNeed {
                number: 1,
                frames: 24 * 9 + 5,
                night: Some(true),
                speakers: 0,
            },
            SceneNeed {
                number: 2,
                frames: 24 * 13,
                night: Some(false),
                speakers: 0,
            },
            SceneNeed {
                number: 3,
                frames: 7,
                night: None,
                speakers: 0,
            },
        ]
    }

    #[test]
    fn scenes_are_filled_exactly_without_reusing_footage_and_deterministically() {
        let f = footage();
        let sim = vec![vec![0.0; f.len()]; 3];
        let picks = select(&needs(), &f, &sim, 24.0, 7, &Pacing::default()).unwrap();
        for need in needs() {
            let total: usize = picks
                .iter()
                .filter(|p| p.scene == need.number)
                .map(|p| p.frames)
                .sum();
            assert_eq!(total, need.frames, "scene {}", need.number);
        }
        // No two picks overlap in the same source.
        for (i, a) in picks.iter().enumerate() {
            for b in &picks[i + 1..] {
                if a.source == b.source {
                    assert!(
                        a.end <= b.start + 1e-9 || b.end <= a.start + 1e-9,
                        "{a:?} {b:?}"
                    );
                }
            }
            assert!((a.end - a.start - a.frames as f64 / 24.0).abs() < 1e-9);
        }
        assert_eq!(
            picks,
            select(&needs(), &f, &sim, 24.0, 7, &Pacing::default()).unwrap()
        );
        assert_ne!(
            picks,
            select(&needs(), &f, &sim, 24.0, 8, &Pacing::default()).unwrap()
        );
    }

    #[test]
    fn night_prefers_dark_and_text_wins_over_light() {
        let f = footage();
        let pacing = Pacing {
            chance: 0.0,
            ..Default::default()
        };
        let night = [SceneNeed {
            number: 1,
            frames: 24,
            night: Some(true),
            speakers: 0,
        }];
        let picks = select(&night, &f, &[vec![0.0; 8]], 24.0, 1, &pacing).unwrap();
        // The two darkest shots (luma 0 and 0.125) fit a night scene fully.
        assert_eq!(picks[0].source, 0);
        assert_eq!(picks[0].light, 1.0);
        let mut sim = vec![0.0; 8];
        sim[7] = 0.9;
        let picks = select(&night, &f, &[sim], 24.0, 1, &pacing).unwrap();
        assert_eq!((picks[0].source, picks[0].shot), (3, 1));
    }

    #[test]
    fn dialogue_scenes_prefer_shots_with_faces() {
        let mut f = footage();
        for (i, x) in f.iter_mut().enumerate() {
            x.luma = 0.5;
            x.faces = Some(usize::from(i == 5));
        }
        let pacing = Pacing {
            chance: 0.0,
            ..Default::default()
        };
        let talk = [SceneNeed {
            number: 1,
            frames: 24,
            night: None,
            speakers: 2,
        }];
        let picks = select(&talk, &f, &[vec![0.0; 8]], 24.0, 1, &pacing).unwrap();
        assert_eq!((picks[0].source, picks[0].shot), (2, 1));
    }

    #[test]
    fn searching_more_orders_gives_the_footage_to_the_scene_it_fits_best() {
        let one_second = |source| Footage {
            source,
            shot: 0,
            start: 0.0,
            end: 1.0,
            still: false,
            luma: 0.5,
            faces: None,
        };
        let f = [one_second(0), one_second(1)];
        let scene = |number| SceneNeed {
            number,
            frames: 24,
            night: None,
            speakers: 0,
        };
        let pacing = Pacing {
            chance: 0.0,
            margin_frames: 0,
            ..Default::default()
        };
        // Both scenes like the first shot best; only the second has no other.
        let sim = [vec![0.5, 0.45], vec![0.9, 0.0]];
        let scenes = [scene(1), scene(2)];
        let one = search(&scenes, &f, &sim, 24.0, 3, &pacing, 1).unwrap();
        assert_eq!(one.fits.len(), 1);
        assert_eq!(
            one.picks,
            select(&scenes, &f, &sim, 24.0, 3, &pacing).unwrap()
        );
        assert_eq!(one.picks[1].source, 1, "greedy: the first scene took it");
        let many = search(&scenes, &f, &sim, 24.0, 3, &pacing, 8).unwrap();
        assert_eq!(many.fits.len(), 8);
        assert!(many.fits[many.chosen] > one.fits[0] + 0.3, "{many:?}");
        assert_eq!((many.picks[0].scene, many.picks[0].source), (1, 1));
        assert_eq!((many.picks[1].scene, many.picks[1].source), (2, 0));
    }

    #[test]
    fn running_out_of_footage_says_how_much_is_missing() {
        let f = footage();
        let long = [SceneNeed {
            number: 1,
            frames: 24 * 500,
            night: None,
            speakers: 0,
        }];
        let err = select(&long, &f, &[vec![0.0; 8]], 24.0, 1, &Pacing::default()).unwrap_err();
        assert!(err.to_string().contains("archive add"), "{err}");
    }
}
