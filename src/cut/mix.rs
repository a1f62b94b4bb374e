//! The sound mix: dialogue and music placed on the timeline, music ducked under dialogue,
//! then the whole normalised to -16 LUFS integrated (EBU R128) under a -1 dBFS peak ceiling.

use std::collections::VecDeque;

use anyhow::{Context, Result};

use crate::edl::{AudioRole, AudioTrack};
use crate::media::audio::{read_stereo, Stereo, MIX_RATE};

/// Integrated loudness the film is normalised to.
pub const TARGET_LUFS: f64 = -16.0;
/// How far music drops while someone speaks.
pub const DUCK_DB: f32 = -12.0;
const CEILING: f32 = 0.891; // -1 dBFS
const BLOCK: usize = MIX_RATE as usize / 100; // 10 ms

/// What the mix measured, for the manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MixReport {
    pub loudness_before_lufs: f64,
    pub loudness_lufs: f64,
    pub gain_db: f64,
    /// Length of each track in seconds, in the order given.
    #[serde(skip)]
    pub track_seconds: Vec<f64>,
}

/// Mixes `tracks` (story times shifted by `offset` seconds) into exactly `frames` stereo frames.
pub fn mix(tracks: &[AudioTrack], offset: f64, frames: usize) -> Result<(Stereo, MixReport)> {
    let mut dialogue = vec![0f32; frames * 2];
    let mut music = vec![0f32; frames * 2];
    let mut track_seconds = Vec::with_capacity(tracks.len());
    for (i, track) in tracks.iter().enumerate() {
        crate::progress::check_interrupted()?;
        let sound = read_stereo(&track.file)
            .with_context(|| format!("audio track {} ({})", i + 1, track.file.display()))?;
        track_seconds.push(sound.seconds());
        let bus = match track.role {
            AudioRole::Dialogue => &mut dialogue,
            AudioRole::Music => &mut music,
        };
        let gain = db_to_gain(track.gain_db as f32);
        let at = ((offset + track.start) * MIX_RATE as f64).round() as usize * 2;
        for (dst, src) in bus.iter_mut().skip(at).zip(&sound.samples) {
            *dst += src * gain;
        }
    }
    duck(&mut music, &dialogue);
    let mut out: Vec<f32> = dialogue.iter().zip(&music).map(|(d, m)| d + m).collect();
    let before = loudness(&out)?;
    let mut gain_db = 0.0;
    if before.is_finite() {
        // The limiter takes some loudness off each pass (a lot from peaky speech), so
        // repeat until the mix is within 0.1 LU of the target.
        for _ in 0..8 {
            let now = loudness(&out)?;
            if !now.is_finite() || (TARGET_LUFS - now).abs() < 0.1 {
                break;
            }
            let step = (TARGET_LUFS - now) as f32;
            let g = db_to_gain(step);
            out.iter_mut().for_each(|s| *s *= g);
            limit(&mut out, CEILING);
            gain_db += step as f64;
        }
    }
    let after = loudness(&out)?;
    Ok((
        Stereo { samples: out },
        MixReport {
            loudness_before_lufs: before,
            loudness_lufs: after,
            gain_db,
            track_seconds,
        },
    ))
}

fn db_to_gain(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// Integrated loudness of interleaved stereo, in LUFS (-inf for silence).
pub fn loudness(samples: &[f32]) -> Result<f64> {
    let mut meter = ebur128::EbuR128::new(2, MIX_RATE, ebur128::Mode::I)
        .context("cannot set up the loudness meter")?;
    meter
        .add_frames_f32(samples)
        .context("loudness meter failed")?;
    Ok(meter.loudness_global().unwrap_or(f64::NEG_INFINITY))
}

/// Lowers `music` wherever `dialogue` is audible: 10 ms blocks, gated at -50 dBFS, a 40 ms
/// attack that starts a little before the line and a 400 ms release after it.
pub fn duck(music: &mut [f32], dialogue: &[f32]) {
    let blocks = music.len() / 2 / BLOCK + 1;
    let gate = db_to_gain(-50.0);
    let speaking: Vec<bool> = (0..blocks)
        .map(|b| {
            let s = &dialogue
                [(b * BLOCK * 2).min(dialogue.len())..((b + 1) * BLOCK * 2).min(dialogue.len())];
            let rms = (s.iter().map(|x| x * x).sum::<f32>() / s.len().max(1) as f32).sqrt();
            rms > gate
        })
        .collect();
    let low = db_to_gain(DUCK_DB);
    let lead = 3; // blocks of look-ahead: the music dips just before the line
    let attack = 1.0 - (-1.0f32 / 4.0).exp(); // ~40 ms
    let release = 1.0 - (-1.0f32 / 40.0).exp(); // ~400 ms
    let mut gain = 1.0f32;
    let mut gains = Vec::with_capacity(blocks);
    for b in 0..blocks {
        let soon = (b..(b + lead).min(blocks)).any(|i| speaking[i]);
        let target = if soon { low } else { 1.0 };
        let rate = if target < gain { attack } else { release };
        gain += (target - gain) * rate;
        gains.push(gain);
    }
    for (i, frame) in music.chunks_mut(2).enumerate() {
        let pos = i as f32 / BLOCK as f32;
        let b = (pos as usize).min(blocks - 1);
        let next = (b + 1).min(blocks - 1);
        let g = gains[b] + (gains[next] - gains[b]) * (pos - b as f32);
        frame.iter_mut().for_each(|s| *s *= g);
    }
}

/// A look-ahead peak limiter: gain never lets a sample exceed `ceiling`, reaches its
/// minimum 2 ms before a peak and recovers over ~80 ms.
pub fn limit(samples: &mut [f32], ceiling: f32) {
    let frames = samples.len() / 2;
    let need: Vec<f32> = samples
        .chunks(2)
        .map(|f| {
            let peak = f.iter().fold(0f32, |m, s| m.max(s.abs()));
            if peak > ceiling {
                ceiling / peak
            } else {
                1.0
            }
        })
        .collect();
    // Sliding minimum over the next `ahead` frames (monotonic queue).
    let ahead = MIX_RATE as usize / 500;
    let mut window: VecDeque<usize> = VecDeque::new();
    let mut min_ahead = vec![1f32; frames];
    for i in (0..frames).rev() {
        while window.back().is_some_and(|&j| need[j] >= need[i]) {
            window.pop_back();
        }
        window.push_back(i);
        while window.front().is_some_and(|&j| j > i + ahead) {
            window.pop_front();
        }
        min_ahead[i] = need[*window.front().unwrap()];
    }
    let release = 1.0 - (-1.0f32 / (MIX_RATE as f32 * 0.08)).exp();
    let mut gain = 1.0f32;
    for (i, frame) in samples.chunks_mut(2).enumerate() {
        let target = min_ahead[i];
        gain = if target < gain {
            target
        } else {
            gain + (target - gain) * release
        };
        frame.iter_mut().for_each(|s| *s *= gain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frames: usize, amp: f32, freq: f32) -> Vec<f32> {
        (0..frames)
            .flat_map(|i| {
                let v =
                    amp * (2.0 * std::f32::consts::PI * freq * i as f32 / MIX_RATE as f32).sin();
                [v, v]
            })
            .collect()
    }

    fn rms(s: &[f32]) -> f32 {
        (s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32).sqrt()
    }

    #[test]
    fn music_is_ducked_under_dialogue_and_recovers_after() {
        let n = MIX_RATE as usize * 3;
        let mut music = tone(n, 0.3, 220.0);
        let mut dialogue = vec![0f32; n * 2];
        // Dialogue during the middle second only.
        let speech = tone(MIX_RATE as usize, 0.5, 440.0);
        dialogue[n * 2 / 3..n * 2 / 3 + speech.len()].copy_from_slice(&speech);
        duck(&mut music, &dialogue);
        let sec = MIX_RATE as usize * 2;
        let first = rms(&music[..sec / 2]);
        let during = rms(&music[sec + sec / 4..2 * sec - sec / 4]);
        let after = rms(&music[3 * sec - sec / 4..]);
        assert!(
            during < first * 0.3,
            "music under dialogue {during} vs before {first}"
        );
        assert!(
            after > first * 0.9,
            "music recovers after dialogue: {after} vs {first}"
        );
    }

    #[test]
    fn limiter_keeps_every_sample_under_the_ceiling() {
        let mut s = tone(MIX_RATE as usize, 1.8, 300.0);
        limit(&mut s, CEILING);
        assert!(s.iter().all(|x| x.abs() <= CEILING + 1e-6));
        assert!(rms(&s) > 0.3, "the limiter should not silence the signal");
    }
}
