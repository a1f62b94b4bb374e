//! Sampling a melody from the model under the harmony of the moment.
//!
//! Each note is a duration token, then a pitch (or rest) token. Before each draw the model's
//! distribution is masked and renormalised: a note never outlasts its chord, every pitch is a
//! tone of the chord it starts on, except a passing tone: a scale tone reached by a step from a
//! chord tone that moves on by a step, the same way, to a tone of the next chord (which the
//! next draw is then held to). Passing tones are marked on the note.

use anyhow::Result;
use candle_core::Device;
use rand::Rng;

use super::model::{
    duration_token, key_token, pitch_token, token_duration, token_pitch, MelodyModel, BOS_MAJOR,
    BOS_MINOR, DURATIONS, REST,
};
use super::score::{ChordSpan, Note, SIXTEENTH};
use super::theory::{Key, Pitch};

/// What to sample.
pub struct MelodyRequest<'a> {
    pub chords: &'a [ChordSpan],
    pub key: Key,
    /// Length of the cue in ticks.
    pub ticks: u32,
    /// Pitch range (intersected with the model's).
    pub lo: Pitch,
    pub hi: Pitch,
    /// Note lengths the genre likes, in sixteenths.
    pub durations: &'a [u8],
    pub temperature: f32,
    /// Added to the rest's log-probability: calm scenes breathe more.
    pub rest_bias: f32,
    pub velocity: u8,
    /// Mask pitches by the harmony (the normal case); without it only range and length are
    /// enforced (to measure what the model does on its own).
    pub constrained: bool,
}

/// Widest leap between two notes, in semitones.
const MAX_LEAP: i32 = 9;

fn chord_at(chords: &[ChordSpan], tick: u32) -> Option<&ChordSpan> {
    chords
        .iter()
        .find(|c| tick >= c.start && tick < c.start + c.length)
}

/// Draws an index from log-probabilities restricted to `allowed`, at `temperature`.
fn draw(logp: &[f32], allowed: &[(u32, f32)], temperature: f32, rng: &mut impl Rng) -> u32 {
    let t = temperature.max(1e-3);
    let top = allowed
        .iter()
        .map(|(i, bias)| (logp[*i as usize] + bias) / t)
        .fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = allowed
        .iter()
        .map(|(i, bias)| (((logp[*i as usize] + bias) / t - top) as f64).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for ((i, _), w) in allowed.iter().zip(&weights) {
        if x < *w {
            return *i;
        }
        x -= w;
    }
    allowed.last().expect("something is allowed").0
}

/// Samples a melody for one cue.
pub fn sample_melody(
    model: &MelodyModel,
    req: &MelodyRequest,
    rng: &mut impl Rng,
) -> Result<Vec<Note>> {
    let lo = req.lo.max(super::model::LOWEST);
    let hi = req.hi.min(super::model::HIGHEST);
    let end = req.ticks / SIXTEENTH * SIXTEENTH;
    let mut state = model.zero_state(1, &Device::Cpu)?;
    let bos = if req.key.mode.is_major() {
        BOS_MAJOR
    } else {
        BOS_MINOR
    };
    model.step(bos, &mut state)?;
    let mut logp = model.step(key_token(req.key.tonic), &mut state)?;
    let mut notes: Vec<Note> = Vec::new();
    let mut t = 0u32;
    // The last pitch sounded, and whether the note just before was a chord tone (no rest between).
    let mut prev: Option<Pitch> = None;
    let mut prev_chord_tone = false;
    // A passing tone waiting to resolve: its pitch and direction.
    let mut pending: Option<(Pitch, i32)> = None;
    while t + SIXTEENTH <= end {
        crate::progress::check_interrupted()?;
        let Some(span) = chord_at(req.chords, t) else {
            break;
        };
        // Duration: never past the chord or the cue.
        let room = (span.start + span.length).min(end) - t;
        let fits = |d: &&u8| **d as u32 * SIXTEENTH <= room;
        let mut lengths: Vec<(u32, f32)> = req
            .durations
            .iter()
            .filter(fits)
            .filter_map(|d| duration_token(*d))
            .map(|tok| (tok, 0.0))
            .collect();
        if lengths.is_empty() {
            lengths = DURATIONS
                .iter()
                .filter(fits)
                .filter_map(|d| duration_token(*d))
                .map(|tok| (tok, 0.0))
                .collect();
        }
        let dur_tok = draw(&logp, &lengths, req.temperature, rng);
        let length = token_duration(dur_tok).expect("a duration token") as u32 * SIXTEENTH;
        logp = model.step(dur_tok, &mut state)?;
        // Pitch.
        let next = chord_at(req.chords, t + length).filter(|_| t + length < end);
        let mut choices: Vec<(u32, f32)> = Vec::new();
        let mut passing_tones: Vec<Pitch> = Vec::new();
        for p in lo..=hi {
            let leap_ok = prev.is_none_or(|q| (p as i32 - q as i32).abs() <= MAX_LEAP);
            if !leap_ok {
                continue;
            }
            let ok = if !req.constrained {
                true
            } else if let Some((from, dir)) = pending {
                span.chord.contains(p) && (1..=2).contains(&((p as i32 - from as i32) * dir))
            } else if span.chord.contains(p) {
                true
            } else if let (Some(q), true, Some(next), true) =
                (prev, prev_chord_tone, next, req.key.contains(p))
            {
                let step = p as i32 - q as i32;
                let resolves = (lo..=hi).any(|c| {
                    next.chord.contains(c)
                        && (1..=2).contains(&((c as i32 - p as i32) * step.signum()))
                });
                let is_passing = (1..=2).contains(&step.abs()) && resolves;
                if is_passing {
                    passing_tones.push(p);
                }
                is_passing
            } else {
                false
            };
            if ok {
                choices.push((pitch_token(p).expect("in the model's range"), 0.0));
            }
        }
        if choices.is_empty() {
            // Only a pending resolution can corner us (a leap limit); any chord tone then.
            pending = None;
            choices = (lo..=hi)
                .filter(|p| span.chord.contains(*p))
                .filter_map(pitch_token)
                .map(|tok| (tok, 0.0))
                .collect();
        }
        if pending.is_none() || !req.constrained {
            choices.push((REST, req.rest_bias));
        }
        let tok = draw(&logp, &choices, req.temperature, rng);
        logp = model.step(tok, &mut state)?;
        match token_pitch(tok) {
            Some(p) => {
                let passing = req.constrained && passing_tones.contains(&p) && pending.is_none();
                pending = match (passing, prev) {
                    (true, Some(q)) => Some((p, (p as i32 - q as i32).signum())),
                    _ => None,
                };
                prev_chord_tone = span.chord.contains(p);
                prev = Some(p);
                let accent = if t.is_multiple_of(4 * SIXTEENTH) {
                    8
                } else {
                    0
                };
                notes.push(Note {
                    start: t,
                    length,
                    pitch: p,
                    velocity: req.velocity.saturating_add(accent).min(127),
                    passing,
                });
            }
            None => {
                prev_chord_tone = false;
                pending = None;
            }
        }
        t += length;
    }
    Ok(notes)
}

/// Whether a melody note fits its harmony: a tone of the chord it starts on, or a marked
/// passing tone (a scale tone a step from the note before and the note after, both chord
/// tones, moving one way).
pub fn fits_harmony(notes: &[Note], i: usize, chords: &[ChordSpan], key: &Key) -> bool {
    let n = &notes[i];
    let Some(span) = chord_at(chords, n.start) else {
        return false;
    };
    if span.chord.contains(n.pitch) {
        return true;
    }
    if !n.passing || !key.contains(n.pitch) || i == 0 || i + 1 >= notes.len() {
        return false;
    }
    let (a, b) = (&notes[i - 1], &notes[i + 1]);
    let step_in = n.pitch as i32 - a.pitch as i32;
    let step_out = b.pitch as i32 - n.pitch as i32;
    let adjacent = a.start + a.length == n.start && n.start + n.length == b.start;
    let a_fits = chord_at(chords, a.start).is_some_and(|s| s.chord.contains(a.pitch));
    let b_fits = chord_at(chords, b.start).is_some_and(|s| s.chord.contains(b.pitch));
    adjacent
        && a_fits
        && b_fits
        && (1..=2).contains(&step_in.abs())
        && (1..=2).contains(&step_out.abs())
        && step_in.signum() == step_out.signum()
}

/// Melody notes of a whole score that fit their harmony, and all melody notes.
pub fn score_harmony_fit(score: &super::score::Score) -> (usize, usize) {
    score.cues.iter().fold((0, 0), |(f, n), cue| {
        let (a, b) = cue
            .melody()
            .map(|m| harmony_fit(&m.notes, &cue.chords, &cue.key()))
            .unwrap_or((0, 0));
        (f + a, n + b)
    })
}

/// Share of the notes that fit their harmony (see [`fits_harmony`]).
pub fn harmony_fit(notes: &[Note], chords: &[ChordSpan], key: &Key) -> (usize, usize) {
    let fit = (0..notes.len())
        .filter(|i| fits_harmony(notes, *i, chords, key))
        .count();
    (fit, notes.len())
}
