//! What time buys the cut: a slower x264 preset at the same quality (CRF), which makes a
//! smaller, cleaner film. The cut's work is its frames; each preset's speed is measured on
//! this machine, first by encoding a moving texture, then by every cut.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use ffmpeg_next::{format, frame};
use serde::{Deserialize, Serialize};

use super::{cards, CutOptions};
use crate::film::Film;
use crate::media::mp4::{Mp4Options, Mp4Writer};
use crate::stage::{Estimate, Intent, Speeds};

/// The presets the planner chooses from, fastest first.
pub const PRESETS: [&str; 4] = ["ultrafast", "veryfast", "medium", "slow"];

/// Frames per second of a whole cut at each preset (decoding, grading, mixing and encoding
/// 1280x720), on the 2-core machine the project is measured on; the probes replace them.
const FALLBACK_FPS: [f64; 4] = [60.0, 42.0, 18.0, 10.0];

/// A whole cut does more than encode: decoding, grading and mixing, which the encoding
/// probe leaves out (what cuts on the reference machine showed); every cut corrects it.
const WHOLE_CUT_SHARE: f64 = 0.7;

/// Room kept for a rate that is a little off.
const SAFETY: f64 = 1.1;

/// Seconds that do not scale with frames: mixing, subtitles, signing.
const FIXED_S: f64 = 3.0;

fn unit(preset: &str) -> String {
    format!("cut.frames.{preset}")
}

fn fps(speeds: &Speeds, i: usize) -> f64 {
    speeds.rate(&unit(PRESETS[i]), FALLBACK_FPS[i])
}

/// The cut's choice, kept in its manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CutChoice {
    pub preset: String,
    pub frames: usize,
}

/// The frames the film will have: from the edit list once the shots exist, else from the
/// length asked for.
pub fn frames(film: &Film) -> usize {
    let s = &film.settings;
    let fps = s.frame.fps as f64;
    let title = CutOptions::default().title_seconds;
    let (story, credits) = match super::stage::assemble(film) {
        Ok(edl) => (
            edl.shots.iter().map(|s| s.out_point - s.in_point).sum(),
            cards::credit_lines(&edl).len(),
        ),
        Err(_) => (s.minutes * 60.0, 12),
    };
    ((title + story + cards::credits_seconds(credits)) * fps).round() as usize
}

fn seconds_at(speeds: &Speeds, i: usize, frames: usize) -> f64 {
    FIXED_S + SAFETY * frames as f64 / fps(speeds, i)
}

pub fn estimate(film: &Film, speeds: &Speeds) -> Estimate {
    let n = frames(film);
    let least = seconds_at(speeds, 0, n);
    Estimate {
        least_s: least,
        better_from_s: 0.0,
        better_upto_s: seconds_at(speeds, PRESETS.len() - 1, n) - least,
        weight: 0.1,
    }
}

/// The slowest preset that fits in `seconds`.
pub fn choose(film: &Film, speeds: &Speeds, seconds: f64) -> CutChoice {
    let n = frames(film);
    let i = (0..PRESETS.len())
        .rev()
        .find(|&i| seconds_at(speeds, i, n) <= seconds)
        .unwrap_or(0);
    CutChoice {
        preset: PRESETS[i].to_string(),
        frames: n,
    }
}

pub fn intent(film: &Film, speeds: &Speeds, seconds: f64) -> Result<Intent> {
    let c = choose(film, speeds, seconds);
    Ok(Intent {
        summary: format!(
            "encode ~{} frames at x264 preset {} (CRF {})",
            c.frames,
            c.preset,
            CutOptions::default().crf
        ),
        details: serde_json::to_value(&c)?,
    })
}

/// The rates a cut saw: its own preset's, and the others moved by the same ratio.
pub fn rates_seen(speeds: &Speeds, preset: &str, frames: usize, seconds: f64) -> Speeds {
    let mut seen = Speeds::default();
    let Some(used) = PRESETS.iter().position(|p| *p == preset) else {
        return seen;
    };
    let rate = frames as f64 / (seconds - FIXED_S).max(seconds * 0.5).max(1e-3);
    let ratio = rate / fps(speeds, used);
    for (i, preset) in PRESETS.iter().enumerate() {
        seen.set(unit(preset), fps(speeds, i) * ratio);
    }
    seen
}

/// Encodes a second and a half of moving texture at the film's frame size with each preset.
pub fn calibrate(film: &Film, scratch: &Path) -> Result<Speeds> {
    const FRAMES: usize = 36;
    let f = film.settings.frame;
    let mut speeds = Speeds::default();
    let mut picture = frame::Video::new(format::Pixel::YUV420P, f.width, f.height);
    for preset in PRESETS {
        let opts = Mp4Options {
            width: f.width,
            height: f.height,
            fps: f.fps,
            preset: preset.to_string(),
            crf: CutOptions::default().crf,
        };
        let path = scratch.join(format!("{preset}.mp4"));
        let started = Instant::now();
        let mut writer = Mp4Writer::create(&path, &opts, None, Vec::new())?;
        for i in 0..FRAMES {
            texture(&mut picture, i);
            writer.write_frame(&mut picture)?;
        }
        writer.finish()?;
        let rate = FRAMES as f64 / started.elapsed().as_secs_f64();
        speeds.set(unit(preset), rate * WHOLE_CUT_SHARE);
    }
    Ok(speeds)
}

/// A blocky noise that drifts a few pixels a frame, with smooth colour: something for the
/// encoder's motion search to do, as footage gives it.
fn texture(picture: &mut frame::Video, i: usize) {
    let (w, h) = (picture.width() as usize, picture.height() as usize);
    let stride = picture.stride(0);
    let luma = picture.data_mut(0);
    for y in 0..h {
        for x in 0..w {
            let (bx, by) = ((x + 3 * i) / 8, y / 8);
            let mut v =
                (bx as u32).wrapping_mul(0x9e37_79b9) ^ (by as u32).wrapping_mul(0x85eb_ca6b);
            v ^= v >> 15;
            luma[y * stride + x] = 40 + (v % 160) as u8 + ((x + y) / 64) as u8 % 16;
        }
    }
    for plane in 1..3 {
        let stride = picture.stride(plane);
        let data = picture.data_mut(plane);
        for y in 0..h / 2 {
            for x in 0..w / 2 {
                data[y * stride + x] = (96 + (x + y + i) / 8 % 64) as u8;
            }
        }
    }
}
