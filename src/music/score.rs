//! The score as data: cues (one per scene) of parts (one per instrument) of notes, on a grid
//! of ticks (480 a quarter note), each cue at its own tempo.

use serde::{Deserialize, Serialize};

use super::genre::{CuePlan, Instrument};
use super::theory::{Chord, Key, Pitch};
use crate::film::Genre;

/// Ticks per quarter note (MIDI's division).
pub const PPQ: u32 = 480;
pub const SIXTEENTH: u32 = PPQ / 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// Ticks from the start of the cue.
    pub start: u32,
    pub length: u32,
    pub pitch: Pitch,
    pub velocity: u8,
    /// A melody note outside its chord, allowed as a stepwise passing tone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub passing: bool,
}

impl Note {
    pub fn end(&self) -> u32 {
        self.start + self.length
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub instrument: Instrument,
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChordSpan {
    pub start: u32,
    pub length: u32,
    pub chord: Chord,
}

/// The music of one scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CueScore {
    pub scene: usize,
    /// Story time of the cue's first sample, seconds.
    pub start: f64,
    /// Seconds, equal to the scene's.
    pub duration: f64,
    pub tension: f64,
    pub plan: CuePlan,
    /// Length in ticks at the cue's tempo.
    pub ticks: u32,
    pub chords: Vec<ChordSpan>,
    pub parts: Vec<Part>,
}

impl CueScore {
    pub fn seconds_per_tick(&self) -> f64 {
        60.0 / (self.plan.tempo * PPQ as f64)
    }

    pub fn melody(&self) -> Option<&Part> {
        self.parts
            .iter()
            .find(|p| p.instrument.role == super::genre::Role::Melody)
    }

    pub fn key(&self) -> Key {
        self.plan.key
    }
}

/// The whole score of a film.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub genre: Genre,
    pub seed: u64,
    pub home_key: Key,
    pub band: Vec<Instrument>,
    pub cues: Vec<CueScore>,
}
