//! What time buys the faces stage: a swap at all (detection, enough training for a face
//! good enough to show, conversion), then a longer-trained and larger model.
//!
//! A swap is all or nothing: a model trained too briefly paints noise where a face was, so
//! the planner buys it only when the time covers the steps a model needs to reach
//! [`GOOD_SSIM`] on held-out faces, and the stage checks that it did before pasting anything.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::casting::Casting;
use super::model::SwapModel;
use super::train::{self, FaceSet, TrainOptions, TrainReport, Trainer};
use crate::film::Film;
use crate::stage::{Estimate, Intent, Speeds};
use crate::vision::image::{ssim, Planar};

/// The structural similarity (on held-out faces) a model must reach before its faces go
/// into the film. `cargo run --release --example faces_quality` shows the held-out faces
/// rebuilt at each stage of training: at 0.57 (300 steps) they are coloured noise in the
/// shape of a face, at 0.73 (1000) a face under blotches, at 0.84 (3000) a clean, soft face.
pub const GOOD_SSIM: f32 = 0.75;

/// Training steps the small (32x32) model takes to reach [`GOOD_SSIM`] on the drawn faces
/// (between 1000 and 3000 in that example), with room.
const STEPS_TO_GOOD: f64 = 1500.0;

/// Frames per second the scan reads (it detects on every frame at 30 fps).
const SCAN_FPS: f64 = 30.0;

/// Share of the frames that show a face to swap, until the scans say.
const FACE_SHARE: f64 = 0.5;

/// The units of the stage's speeds (per second): frames scanned for faces, frames
/// converted, training steps of the model of one resolution.
pub const DETECT: &str = "faces.detect_frames";
pub const CONVERT: &str = "faces.convert_frames";
const TRAIN: &str = "faces.train_steps.32";

pub fn train_unit(resolution: usize) -> String {
    format!("faces.train_steps.{resolution}")
}

/// Rates on the 2-core reference machine until this one is measured.
const FALLBACK_DETECT: f64 = 20.0;
const FALLBACK_TRAIN: f64 = 4.0;
const FALLBACK_CONVERT: f64 = 10.0;

/// Writing the tracks, the casting and the edit list when nothing is swapped.
const LEAST_S: f64 = 1.0;

/// The faces stage's choice for its seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FacesPlan {
    /// Seconds of the work a swap needs before any training past the minimum.
    pub swap_s: f64,
    /// Why no face is swapped, when the time is too short for a good one.
    pub too_short: Option<String>,
}

/// Seconds for detection, training to [`GOOD_SSIM`] and conversion of this film.
fn swap_seconds(film: &Film, speeds: &Speeds) -> f64 {
    let story = match crate::edl::EdlFragment::load(&film.stage_dir("shots")) {
        Ok(f) if !f.shots.is_empty() => f.shots.iter().map(|s| s.out_point - s.in_point).sum(),
        _ => film.settings.story_seconds_guess(),
    };
    let frames = story * SCAN_FPS;
    speeds.seconds(DETECT, frames, FALLBACK_DETECT)
        + speeds.seconds(TRAIN, STEPS_TO_GOOD, FALLBACK_TRAIN)
        + speeds.seconds(CONVERT, frames * FACE_SHARE, FALLBACK_CONVERT)
}

fn has_actors(film: &Film) -> bool {
    super::actors::of_film(film).is_ok_and(|a| !a.is_empty())
}

pub fn estimate(film: &Film, speeds: &Speeds) -> Estimate {
    if !has_actors(film) {
        return Estimate::fixed(LEAST_S);
    }
    Estimate {
        least_s: LEAST_S,
        better_from_s: swap_seconds(film, speeds),
        better_upto_s: f64::INFINITY,
        weight: 0.6,
        steps_s: Vec::new(),
    }
}

pub fn choose(film: &Film, speeds: &Speeds, seconds: f64) -> FacesPlan {
    let swap_s = swap_seconds(film, speeds);
    let too_short = (has_actors(film) && seconds < LEAST_S + swap_s).then(|| {
        format!(
            "{seconds:.0} s is too little to train a face good enough to show (about {:.0} s for this film: detection, {STEPS_TO_GOOD} training steps, conversion); give the film more --hours",
            LEAST_S + swap_s
        )
    });
    FacesPlan { swap_s, too_short }
}

pub fn intent(film: &Film, speeds: &Speeds, seconds: f64) -> Result<Intent> {
    let plan = choose(film, speeds, seconds);
    let summary = if !has_actors(film) {
        "no actors registered: shots keep their faces".to_string()
    } else if let Some(why) = &plan.too_short {
        format!("shots keep their faces: {why}")
    } else {
        format!(
            "swap faces: detection and conversion ~{:.0} s, training the rest (~{:.0} s)",
            plan.swap_s - STEPS_TO_GOOD / speeds.rate(TRAIN, FALLBACK_TRAIN),
            seconds - plan.swap_s + STEPS_TO_GOOD / speeds.rate(TRAIN, FALLBACK_TRAIN)
        )
    };
    Ok(Intent {
        summary,
        details: serde_json::to_value(&plan)?,
    })
}

/// Detection on a drawn face at the film's size, a few training steps of the small model,
/// and one frame's conversion.
pub fn calibrate(film: &Film, scratch: &Path) -> Result<Speeds> {
    let device = crate::nn::device();
    let mut speeds = Speeds::default();
    let _ = film;
    // Archive footage is mostly standard definition, with a face a fifth of the height.
    let (w, h) = (480, 360);
    let pose = super::synth::Pose {
        cx: w as f32 / 2.0,
        cy: h as f32 / 2.0,
        size: h as f32 / 5.0,
        angle: 0.0,
        mouth_open: 0.2,
    };
    let picture = super::synth::face_picture(w, h, &super::synth::Look::A, &pose);
    let det = crate::vision::mtcnn::Mtcnn::embedded(&device)?;
    let started = Instant::now();
    for _ in 0..3 {
        det.detect_rgb(&picture)?;
    }
    // Decoding the frame costs about a fifth more.
    speeds.set(DETECT, 3.0 / started.elapsed().as_secs_f64() / 1.2);

    let config = train::choose_config(0.0, &device, vec!["a".into(), "b".into()]);
    let sets: Vec<FaceSet> = [("a", super::synth::Look::A), ("b", super::synth::Look::B)]
        .into_iter()
        .enumerate()
        .map(|(i, (name, look))| FaceSet {
            name: name.into(),
            faces: super::synth::aligned_faces(&look, 16, config.resolution, i as u64),
        })
        .collect();
    let mut trainer = Trainer::open(&config, Some(&scratch.join("model")), &device)?;
    let warm = TrainOptions {
        max_steps: Some(1),
        ..Default::default()
    };
    let far = Instant::now() + std::time::Duration::from_secs(600);
    let progress = crate::progress::Progress::hidden();
    trainer.train(&sets, &warm, far, &progress)?;
    let steps = TrainOptions {
        max_steps: Some(5),
        ..Default::default()
    };
    let report = trainer.train(&sets, &steps, far, &progress)?;
    speeds.set(
        format!("faces.train_steps.{}", config.resolution),
        report.steps_per_second,
    );
    let per_frame = super::convert::seconds_per_frame(&trainer.model, &sets[0].faces[0])?;
    speeds.set(CONVERT, 1.0 / per_frame);
    Ok(speeds)
}

/// Held-out SSIM gained per tenfold training: a cautious reading of the `faces_quality`
/// curve (0.21 a decade from 1000 to 3000 steps, 0.12 from 3000 to 10000).
const SSIM_PER_DECADE: f64 = 0.1;

/// The faces stage's share of more budget (its weight among the stages that can use it).
const SHARE_OF_MORE: f64 = 0.6;

/// Why a trained model's faces are not shown, if they are not: below `min_ssim` on the
/// actors' held-out faces; with the training, and the budget, that might get it there
/// (training goes on from the checkpoint when the film is made again with more `--hours`).
pub fn too_poor(
    report: &TrainReport,
    min_ssim: f32,
    casting: &Casting,
    hours: f64,
) -> Option<String> {
    let q = report.held_out_ssim.filter(|q| *q < min_ssim)?;
    let judged: Vec<&str> = casting.used.iter().map(|a| a.id.as_str()).collect();
    let steps = report.steps.max(1) as f64;
    let more_steps = steps * (10f64.powf((min_ssim - q) as f64 / SSIM_PER_DECADE) - 1.0);
    let more_s = more_steps / report.steps_per_second.max(1e-6);
    let needed_h = hours + more_s / SHARE_OF_MORE / 3600.0;
    Some(format!(
        "the swap model reached SSIM {q:.3} on held-out faces of {} after {} training steps, below the {min_ssim:.2} a face needs to be shown; about {more_steps:.0} more steps (~{more_s:.0} s here) might reach it: make the film again with --hours {:.2} or more (training goes on from its checkpoint)",
        judged.join(", "),
        report.steps,
        (needed_h * 100.0).ceil() / 100.0
    ))
}

/// Every `HOLD_OUT_EVERY`th face of an identity is kept out of training to judge the model.
const HOLD_OUT_EVERY: usize = 8;

/// Splits off the held-out faces of each identity: every eighth, or one of a set of three
/// to fifteen (an actor with a few photos); a set of one or two keeps all for training.
pub fn hold_out(sets: &mut [FaceSet]) -> Vec<FaceSet> {
    sets.iter_mut()
        .map(|s| {
            let every = match s.faces.len() {
                n if n >= 2 * HOLD_OUT_EVERY => HOLD_OUT_EVERY,
                n if n >= 3 => n,
                _ => usize::MAX,
            };
            let mut held = Vec::new();
            let mut i = 0;
            s.faces.retain(|f| {
                i += 1;
                let out = i % every == 0;
                if out {
                    held.push(f.clone());
                }
                !out
            });
            FaceSet {
                name: s.name.clone(),
                faces: held,
            }
        })
        .collect()
}

/// The model's mean SSIM rebuilding each identity's held-out faces through its own decoder;
/// the lowest over the identities named in `judged` (the actors whose faces go on screen).
pub fn held_out_ssim(
    model: &SwapModel,
    held: &[FaceSet],
    judged: &[String],
) -> Result<Option<f32>> {
    let mut worst: Option<f32> = None;
    for (id, set) in held.iter().enumerate() {
        if set.faces.is_empty() || !judged.contains(&set.name) {
            continue;
        }
        let refs: Vec<&Planar> = set.faces.iter().collect();
        let x = super::tensors::to_tensor(&refs, &model.device)?;
        let (faces, _) = model.forward(&x, id)?;
        let mut total = 0.0;
        for (i, original) in set.faces.iter().enumerate() {
            total += ssim(&super::tensors::from_tensor(&faces, i)?, original);
        }
        let mean = total / set.faces.len() as f32;
        worst = Some(worst.map_or(mean, |w: f32| w.min(mean)));
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> FaceSet {
        FaceSet {
            name: format!("{n}"),
            faces: (0..n).map(|_| Planar::new(4, 4, 3)).collect(),
        }
    }

    #[test]
    fn an_eighth_of_a_large_set_and_one_face_of_a_small_one_are_held_out() {
        let mut sets = vec![set(40), set(3), set(2)];
        let held = hold_out(&mut sets);
        let sizes: Vec<(usize, usize)> = sets
            .iter()
            .zip(&held)
            .map(|(s, h)| (s.faces.len(), h.faces.len()))
            .collect();
        assert_eq!(sizes, vec![(35, 5), (2, 1), (2, 0)]);
    }
}
