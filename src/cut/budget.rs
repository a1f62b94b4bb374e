//! What time buys the cut: a slower x264 preset at the same quality (CRF), which makes a
//! smaller, cleaner film. The cut's work is its frames; each preset's speed is measured on
//! this machine, first by encoding graded footage (a moving texture when the archive has
//! none), then by every cut, per genre.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use ffmpeg_next::{format, frame};
use serde::{Deserialize, Serialize};

use super::{cards, CutOptions};
use crate::film::{Film, Frame, Genre};
use crate::media::filter::VideoGraph;
use crate::media::mp4::{Mp4Options, Mp4Writer};
use crate::stage::{Estimate, Intent, Speeds};

/// The presets the planner chooses from, fastest first.
pub const PRESETS: [&str; 5] = ["ultrafast", "veryfast", "faster", "medium", "slow"];

/// Frames per second of a whole cut at each preset (decoding, grading, mixing and encoding
/// 1280x720), on the 2-core machine the project is measured on; the probes replace them.
/// `faster` has none: it is chosen only at a rate this machine measured, because a guess
/// between two steps this close is as likely to overrun the budget as to fill it.
const FALLBACK_FPS: [Option<f64>; 5] = [Some(60.0), Some(42.0), None, Some(18.0), Some(10.0)];

/// A whole cut does more than encode: decoding, grading and mixing, which the encoding
/// probe leaves out (what cuts on the reference machine showed); every cut corrects it.
const WHOLE_CUT_SHARE: f64 = 0.7;

/// Room kept for a rate that is a little off.
const SAFETY: f64 = 1.1;

/// Seconds that do not scale with frames: mixing, subtitles, signing.
const FIXED_S: f64 = 3.0;

/// Rates are kept in frames of 1280x720 per second, whatever the film's size: the probe's
/// for each preset (through the grainiest look, noir's, so that it errs on the safe side)...
fn unit(preset: &str) -> String {
    format!("cut.frames.{preset}")
}

/// ...and what cuts of each genre saw: a look's grain costs the slower presets the most
/// (noir's made `slow` half again slower than clean footage on the reference machine).
fn genre_unit(genre: Genre, preset: &str) -> String {
    format!("cut.frames.{genre}.{preset}")
}

/// How many 1280x720 frames one of the film's frames is worth.
fn scale(frame: Frame) -> f64 {
    (frame.width as f64 * frame.height as f64) / (1280.0 * 720.0)
}

/// The frames per second of the film's size a cut at preset `i` makes here; `None` for a
/// preset this machine has not measured and that has no fallback.
fn fps(speeds: &Speeds, i: usize, film: &Film) -> Option<f64> {
    let measured = |unit: &str| speeds.0.get(unit).copied();
    let genre = film.settings.genre;
    let rate = measured(&genre_unit(genre, PRESETS[i]))
        .or_else(|| measured(&unit(PRESETS[i])))
        .or(FALLBACK_FPS[i])?;
    Some(rate / scale(film.settings.frame))
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
    let (story, credits) = match super::assemble::assemble(film) {
        Ok(edl) => (
            edl.shots.iter().map(|s| s.out_point - s.in_point).sum(),
            cards::credit_lines(&edl).len(),
        ),
        Err(_) => (s.story_seconds_guess(), 12),
    };
    ((title + story + cards::credits_seconds(credits)) * fps).round() as usize
}

/// The seconds a cut of `frames` takes at preset `i`, if it can be known.
fn seconds_at(film: &Film, speeds: &Speeds, i: usize, frames: usize) -> Option<f64> {
    Some(FIXED_S + SAFETY * frames as f64 / fps(speeds, i, film)?)
}

/// The seconds at the fastest and the slowest preset, which always have a rate.
fn fastest_and_slowest(film: &Film, speeds: &Speeds, frames: usize) -> (f64, f64) {
    let at = |i| seconds_at(film, speeds, i, frames).expect("a fallback rate");
    (at(0), at(PRESETS.len() - 1))
}

pub fn estimate(film: &Film, speeds: &Speeds) -> Estimate {
    let n = frames(film);
    let (least, slowest) = fastest_and_slowest(film, speeds, n);
    Estimate {
        least_s: least,
        better_from_s: 0.0,
        better_upto_s: slowest - least,
        weight: 0.1,
        // Each slower preset with a rate here is a step.
        steps_s: (1..PRESETS.len())
            .filter_map(|i| seconds_at(film, speeds, i, n))
            .map(|s| s - least)
            .collect(),
    }
}

/// The slowest preset that fits in `seconds`.
pub fn choose(film: &Film, speeds: &Speeds, seconds: f64) -> CutChoice {
    let n = frames(film);
    let i = (0..PRESETS.len())
        .rev()
        .find(|&i| seconds_at(film, speeds, i, n).is_some_and(|s| s <= seconds))
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

/// The rate a cut saw, at its own preset (in frames of 720p per second). A short cut (a
/// small test film) says little of this machine's speed, and reports nothing.
pub fn rates_seen(film: &Film, preset: &str, frames: usize, seconds: f64) -> Speeds {
    let mut seen = Speeds::default();
    let Some(used) = PRESETS.iter().position(|p| *p == preset) else {
        return seen;
    };
    if seconds < 20.0 {
        return seen;
    }
    let rate = frames as f64 / (seconds - FIXED_S) * scale(film.settings.frame);
    seen.set(genre_unit(film.settings.genre, PRESETS[used]), rate);
    seen
}

/// Encodes a second and a half of 1280x720 pictures with each preset, graded with noir's
/// look (its moving grain is what the slower presets find hardest): footage from the film's
/// archive when it has a video (x264's presets differ most on real grain and motion), else a
/// drifting texture.
pub fn calibrate(film: &Film, scratch: &Path) -> Result<Speeds> {
    const FRAMES: usize = 36;
    let f = Frame {
        width: 1280,
        height: 720,
        fps: 24,
    };
    let pictures = footage(film, f, FRAMES).unwrap_or_else(|| {
        (0..FRAMES)
            .map(|i| {
                let mut p = frame::Video::new(format::Pixel::YUV420P, f.width, f.height);
                texture(&mut p, i);
                p
            })
            .collect()
    });
    let pictures = graded(&pictures, f)?;
    let mut speeds = Speeds::default();
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
        for picture in &pictures {
            writer.write_frame(&mut picture.clone())?;
        }
        writer.finish()?;
        let rate = pictures.len() as f64 / started.elapsed().as_secs_f64();
        speeds.set(unit(preset), rate * WHOLE_CUT_SHARE);
    }
    Ok(speeds)
}

/// The pictures through noir's look, as a cut grades them.
fn graded(pictures: &[frame::Video], f: Frame) -> Result<Vec<frame::Video>> {
    let spec = format!("{},format=yuv420p", super::look::genre_look(Genre::Noir));
    let mut graph = VideoGraph::new(
        f.width,
        f.height,
        format::Pixel::YUV420P,
        ffmpeg_next::Rational(1, f.fps as i32),
        &spec,
    )?;
    let mut out = Vec::with_capacity(pictures.len());
    for (i, p) in pictures.iter().enumerate() {
        graph.push(p, i as i64)?;
        out.extend(std::iter::from_fn(|| graph.pull()));
    }
    graph.push_eof()?;
    out.extend(std::iter::from_fn(|| graph.pull()));
    Ok(out)
}

/// `count` pictures from the first video of the film's archive, scaled to `f`.
fn footage(film: &Film, f: Frame, count: usize) -> Option<Vec<frame::Video>> {
    let dir = film.settings.archive_dir();
    let archive = crate::archive::Archive::open_existing(&dir).ok()?;
    let video = archive
        .sources()
        .ok()?
        .into_iter()
        .map(|s| s.path)
        .find(|p| crate::media::source::probe(p).is_ok_and(|i| !i.still && i.duration > 10.0))?;
    let mut source = crate::media::source::VideoSource::open(&video).ok()?;
    let mut scaler: Option<ffmpeg_next::software::scaling::Context> = None;
    let mut out = Vec::with_capacity(count);
    source
        .sample(5.0, count, f.fps as f64, |picture| {
            let s = match &mut scaler {
                Some(s) => s,
                None => scaler.insert(ffmpeg_next::software::scaling::Context::get(
                    picture.format(),
                    picture.width(),
                    picture.height(),
                    format::Pixel::YUV420P,
                    f.width,
                    f.height,
                    ffmpeg_next::software::scaling::Flags::BILINEAR,
                )?),
            };
            let mut scaled = frame::Video::empty();
            s.run(picture, &mut scaled)?;
            out.push(scaled);
            Ok(())
        })
        .ok()?;
    (out.len() == count).then_some(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::film::{FilmSettings, Genre};

    #[test]
    fn more_time_buys_a_slower_preset_and_too_little_keeps_the_fastest() {
        let dir = tempfile::tempdir().unwrap();
        let film = Film::save(
            dir.path(),
            &FilmSettings::new("P".into(), Genre::Noir, 1, 1.0),
        )
        .unwrap();
        let speeds = Speeds::default();
        let e = estimate(&film, &speeds);
        assert_eq!(choose(&film, &speeds, 1.0).preset, "ultrafast");
        assert_eq!(choose(&film, &speeds, e.least_s).preset, "ultrafast");
        assert_eq!(
            choose(&film, &speeds, e.least_s + e.better_upto_s).preset,
            "slow"
        );
        let order = |p: &str| PRESETS.iter().position(|q| *q == p).unwrap();
        let mut last = 0;
        for s in (0..40).map(|i| e.least_s + i as f64 * e.better_upto_s / 39.0) {
            let now = order(&choose(&film, &speeds, s).preset);
            assert!(now >= last);
            last = now;
        }
    }

    #[test]
    fn a_preset_without_a_fallback_is_chosen_only_once_this_machine_measured_it() {
        let dir = tempfile::tempdir().unwrap();
        let film = Film::save(
            dir.path(),
            &FilmSettings::new("P".into(), Genre::Noir, 1, 1.0),
        )
        .unwrap();
        let faster = PRESETS.iter().position(|p| *p == "faster").unwrap();
        assert!(FALLBACK_FPS[faster].is_none());
        let chosen = |speeds: &Speeds| -> Vec<String> {
            let e = estimate(&film, speeds);
            (0..200)
                .map(|i| e.least_s + i as f64 * e.better_upto_s / 199.0)
                .map(|s| choose(&film, speeds, s).preset)
                .collect()
        };
        let mut speeds = Speeds::default();
        assert!(!chosen(&speeds).iter().any(|p| p == "faster"));
        // Measured between veryfast and medium, it fills the gap between them.
        speeds.set("cut.frames.noir.faster", 30.0);
        let presets = chosen(&speeds);
        let at = |p: &str| presets.iter().position(|q| q == p).unwrap();
        assert!(at("veryfast") < at("faster") && at("faster") < at("medium"));
    }

    #[test]
    fn a_cut_reports_its_rate_in_frames_of_720p_for_its_genre() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = FilmSettings::new("P".into(), Genre::Noir, 1, 1.0);
        settings.frame = Frame {
            width: 640,
            height: 360,
            fps: 24,
        };
        let film = Film::save(dir.path(), &settings).unwrap();
        // 2400 quarter-size frames in 3 + 40 s: 60 frames/s, 15 of 720p.
        let seen = rates_seen(&film, "veryfast", 2400, 43.0);
        assert_eq!(seen.0.len(), 1);
        assert!((seen.rate("cut.frames.noir.veryfast", 0.0) - 15.0).abs() < 1e-9);
        assert!(rates_seen(&film, "veryfast", 100, 5.0).0.is_empty());

        // What noir's cuts saw plans noir films; another genre keeps the probe's rate.
        let mut speeds = Speeds::default();
        let slow = PRESETS.len() - 1;
        speeds.set("cut.frames.slow", 100.0);
        let probed = seconds_at(&film, &speeds, slow, 1000).unwrap();
        speeds.set("cut.frames.noir.slow", 10.0);
        assert!(seconds_at(&film, &speeds, slow, 1000).unwrap() > 5.0 * probed);
        let other = tempfile::tempdir().unwrap();
        settings.genre = Genre::Scifi;
        let scifi = Film::save(other.path(), &settings).unwrap();
        assert_eq!(seconds_at(&scifi, &speeds, slow, 1000), Some(probed));
    }
}
