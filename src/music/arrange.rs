//! Arranging a cue: the chords laid out over the scene, the melody from the model, and the
//! band's other parts by genre rules (walking bass, brushed drums, comping, pads, drones,
//! arpeggios), all shaped by the scene's tension.

use anyhow::Result;
use rand::Rng;

use super::genre::{CuePlan, Instrument, Role};
use super::melody::{sample_melody, MelodyRequest};
use super::model::MelodyModel;
use super::score::{ChordSpan, CueScore, Note, Part, PPQ, SIXTEENTH};
use super::tension::SceneBrief;
use super::theory::{pitch_class, Chord, Pitch};

const BEAT: u32 = PPQ;
const EIGHTH: u32 = PPQ / 2;

/// Chords over `ticks`, one per `bars_per_chord` bars, the progression repeated.
pub fn lay_out_chords(plan: &CuePlan, ticks: u32) -> Vec<ChordSpan> {
    let span = BEAT * plan.beats as u32 * plan.bars_per_chord as u32;
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while start < ticks {
        out.push(ChordSpan {
            start,
            length: span,
            chord: plan.progression[i % plan.progression.len()],
        });
        start += span;
        i += 1;
    }
    out
}

fn velocity(base: f64, tension: f64) -> u8 {
    (base + 35.0 * tension).round().clamp(1.0, 127.0) as u8
}

/// Folds a pitch by octaves into `lo..=hi`.
fn fold(p: i32, lo: Pitch, hi: Pitch) -> Pitch {
    let mut p = p;
    while p < lo as i32 {
        p += 12;
    }
    while p > hi as i32 {
        p -= 12;
    }
    p.clamp(lo as i32, hi as i32) as Pitch
}

/// Chord tones in a close voicing around the middle of the range.
fn voicing(chord: &Chord, lo: Pitch, hi: Pitch, rootless: bool) -> Vec<Pitch> {
    let mid = (lo as u32 + hi as u32) / 2;
    let base = chord.root_at_or_above((mid as Pitch).saturating_sub(6).max(lo));
    let mut notes: Vec<Pitch> = chord
        .quality
        .intervals()
        .iter()
        .skip(usize::from(rootless && chord.quality.intervals().len() > 3))
        .map(|i| fold(base as i32 + *i as i32, lo, hi))
        .collect();
    notes.sort_unstable();
    notes.dedup();
    notes
}

fn note(start: u32, length: u32, pitch: Pitch, velocity: u8) -> Note {
    Note {
        start,
        length,
        pitch,
        velocity,
        passing: false,
    }
}

/// Walking bass: root on the downbeat, chord tones between, a chromatic approach to the next root.
fn walking_bass(chords: &[ChordSpan], inst: &Instrument, vel: u8, rng: &mut impl Rng) -> Vec<Note> {
    let mut out = Vec::new();
    let mut prev = fold(inst.lo as i32 + 7, inst.lo, inst.hi);
    for (i, span) in chords.iter().enumerate() {
        let next_root = chords
            .get(i + 1)
            .map(|c| c.chord.root)
            .unwrap_or(span.chord.root);
        let beats = span.length / BEAT;
        let root = nearest_pc(span.chord.root, prev, inst.lo, inst.hi.saturating_sub(7));
        for b in 0..beats {
            let pitch = if b == 0 {
                root
            } else if b + 1 == beats {
                let target = nearest_pc(next_root, prev, inst.lo + 1, inst.hi - 1);
                if rng.random_bool(0.5) {
                    target + 1
                } else {
                    target - 1
                }
            } else {
                let tones = span.chord.tones_in(inst.lo, inst.hi);
                let near: Vec<Pitch> = tones
                    .into_iter()
                    .filter(|p| *p != prev && (*p as i32 - prev as i32).abs() <= 5)
                    .collect();
                if near.is_empty() {
                    root
                } else {
                    near[rng.random_range(0..near.len())]
                }
            };
            out.push(note(span.start + b * BEAT, BEAT - 20, pitch, vel));
            prev = pitch;
        }
    }
    out
}

/// The pitch of class `pc` in `lo..=hi` nearest to `near`.
fn nearest_pc(pc: u8, near: Pitch, lo: Pitch, hi: Pitch) -> Pitch {
    (lo..=hi)
        .filter(|p| pitch_class(*p) == pc)
        .min_by_key(|p| (*p as i32 - near as i32).abs())
        .unwrap_or_else(|| fold(pc as i32 + 48, lo, hi))
}

/// Brushes: ride in swing, pedal hi-hat on 2 and 4, snare and kick as the scene tightens.
fn brush_drums(ticks: u32, beats: u32, tension: f64, vel: u8) -> Vec<Note> {
    const KICK: Pitch = 36;
    const SNARE: Pitch = 38;
    const PEDAL_HAT: Pitch = 44;
    const RIDE: Pitch = 51;
    let mut out = Vec::new();
    let bar = BEAT * beats;
    let mut t = 0;
    while t < ticks {
        for b in 0..beats {
            let beat = t + b * BEAT;
            out.push(note(beat, EIGHTH, RIDE, vel.saturating_sub(8)));
            if b % 2 == 1 {
                out.push(note(
                    beat + EIGHTH + PPQ / 6,
                    EIGHTH / 2,
                    RIDE,
                    vel.saturating_sub(18),
                ));
                out.push(note(beat, EIGHTH, PEDAL_HAT, vel.saturating_sub(12)));
                if tension > 0.4 {
                    out.push(note(beat, EIGHTH, SNARE, vel.saturating_sub(20)));
                }
            } else if tension > 0.6 {
                out.push(note(beat, EIGHTH, KICK, vel.saturating_sub(25)));
            }
        }
        t += bar;
    }
    out
}

/// Comping: the Charleston (1 and the and of 2), more hits when tense.
fn comp(chords: &[ChordSpan], inst: &Instrument, tension: f64, vel: u8) -> Vec<Note> {
    let mut out = Vec::new();
    for span in chords {
        let v = voicing(&span.chord, inst.lo, inst.hi, true);
        let mut hits = vec![(0, 3 * EIGHTH), (3 * EIGHTH + PPQ / 6, EIGHTH)];
        if tension > 0.55 && span.length >= 4 * BEAT {
            hits.push((2 * BEAT + 3 * EIGHTH + PPQ / 6, EIGHTH));
        }
        for (offset, len) in hits {
            for p in &v {
                out.push(note(span.start + offset, len, *p, vel));
            }
        }
    }
    out
}

/// Held chords (pads, strings), one voicing a chord.
fn held(chords: &[ChordSpan], inst: &Instrument, vel: u8) -> Vec<Note> {
    chords
        .iter()
        .flat_map(|span| {
            voicing(&span.chord, inst.lo, inst.hi, false)
                .into_iter()
                .map(move |p| note(span.start, span.length, p, vel))
        })
        .collect()
}

/// A drone on the key's tonic and its octave, struck again with each chord.
fn drone(chords: &[ChordSpan], tonic: u8, inst: &Instrument, vel: u8) -> Vec<Note> {
    let low = nearest_pc(tonic, inst.lo + 6, inst.lo, inst.hi.saturating_sub(12));
    chords
        .iter()
        .flat_map(|span| {
            [low, low + 12]
                .into_iter()
                .map(move |p| note(span.start, span.length, p, vel))
        })
        .collect()
}

/// Broken chords: up and down the voicing (and an octave above), in eighths or, when tense,
/// sixteenths.
fn arpeggio(chords: &[ChordSpan], inst: &Instrument, tension: f64, vel: u8) -> Vec<Note> {
    let step = if tension > 0.5 { SIXTEENTH } else { EIGHTH };
    let mut out = Vec::new();
    for span in chords {
        let base = voicing(&span.chord, inst.lo, inst.hi.saturating_sub(12), false);
        let mut up: Vec<Pitch> = base.clone();
        up.extend(base.iter().map(|p| p + 12).filter(|p| *p <= inst.hi));
        let mut cycle = up.clone();
        cycle.extend(up.iter().rev().skip(1).take(up.len().saturating_sub(2)));
        let mut t = 0;
        let mut i = 0;
        while t < span.length {
            let accent = if t % BEAT == 0 { 6 } else { 0 };
            out.push(note(
                span.start + t,
                step,
                cycle[i % cycle.len()],
                vel + accent,
            ));
            t += step;
            i += 1;
        }
    }
    out
}

/// Cello or bass: the root, then the fifth half-way through the chord.
fn root_fifth(chords: &[ChordSpan], inst: &Instrument, vel: u8) -> Vec<Note> {
    let mut out = Vec::new();
    for span in chords {
        let root = nearest_pc(span.chord.root, inst.lo + 7, inst.lo, inst.hi - 7);
        let half = span.length / 2;
        out.push(note(span.start, half, root, vel));
        let fifth = span
            .chord
            .tones_in(root + 1, root + 8)
            .last()
            .copied()
            .unwrap_or(root);
        out.push(note(span.start + half, span.length - half, fifth, vel));
    }
    out
}

/// Plays offbeat eighths late (a triplet feel); the note before stretches to meet them.
fn swing(notes: &mut [Note]) {
    const DELAY: u32 = PPQ / 6;
    for i in 0..notes.len() {
        if notes[i].start % BEAT == EIGHTH && notes[i].length > DELAY {
            let old = notes[i].start;
            notes[i].start += DELAY;
            notes[i].length -= DELAY;
            if i > 0 && notes[i - 1].end() == old {
                notes[i - 1].length += DELAY;
            }
        }
    }
}

/// Composes one scene's cue.
pub fn arrange_cue(
    scene: &SceneBrief,
    plan: CuePlan,
    band: &[Instrument],
    model: &MelodyModel,
    rng: &mut impl Rng,
) -> Result<CueScore> {
    let ticks = (scene.duration * plan.tempo / 60.0 * PPQ as f64).round() as u32;
    let chords = lay_out_chords(&plan, ticks);
    let t = scene.tension;
    let mut parts = Vec::new();
    for inst in band {
        let mut notes = match inst.role {
            Role::Melody => {
                // Tension lifts the melody's register.
                let span = inst.hi.saturating_sub(inst.lo) as f64;
                let lo = inst.lo + (span * 0.25 * t) as u8;
                let hi = (lo as u32 + 19).min(inst.hi as u32) as Pitch;
                let req = MelodyRequest {
                    chords: &chords,
                    key: plan.key,
                    ticks,
                    lo,
                    hi,
                    durations: &plan.durations,
                    temperature: 0.9,
                    rest_bias: (0.8 - 1.2 * t) as f32,
                    velocity: velocity(62.0, t),
                    constrained: true,
                };
                let mut m = sample_melody(model, &req, rng)?;
                if plan.swing {
                    swing(&mut m);
                }
                m
            }
            Role::Bass if plan.swing => walking_bass(&chords, inst, velocity(68.0, t), rng),
            Role::Bass => root_fifth(&chords, inst, velocity(50.0, t)),
            Role::Drums => brush_drums(ticks, plan.beats as u32, t, velocity(60.0, t)),
            Role::Harmony if plan.swing => comp(&chords, inst, t, velocity(48.0, t)),
            Role::Harmony => held(&chords, inst, velocity(40.0, t)),
            Role::Drone => drone(&chords, plan.key.tonic, inst, velocity(45.0, t)),
            Role::Arpeggio => arpeggio(&chords, inst, t, velocity(38.0, t)),
        };
        // Nothing sounds past the cue's end.
        notes.retain(|n| n.start < ticks);
        for n in &mut notes {
            n.length = n.length.min(ticks - n.start).max(1);
            if inst.role != Role::Drums {
                n.pitch = fold(n.pitch as i32, inst.lo, inst.hi);
            }
        }
        notes.sort_by_key(|n| (n.start, n.pitch));
        parts.push(Part {
            instrument: inst.clone(),
            notes,
        });
    }
    Ok(CueScore {
        scene: scene.number,
        start: scene.start,
        duration: scene.duration,
        tension: t,
        plan,
        ticks,
        chords: chords.into_iter().filter(|c| c.start < ticks).collect(),
        parts,
    })
}
