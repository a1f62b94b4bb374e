//! What each genre sounds like: keys and modes, tempo, meter, chord progressions and the
//! General MIDI instruments that play them.

use rand::seq::IndexedRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::theory::{Chord, Key, Mode, Pitch, Quality};
use crate::film::Genre;

/// What a part does in the arrangement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Melody,
    Harmony,
    Bass,
    Drums,
    Drone,
    Arpeggio,
}

/// A General MIDI instrument on its own channel, with the range it plays in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instrument {
    pub role: Role,
    pub name: String,
    /// GM program, 0-based (on the drum channel: the drum kit).
    pub program: u8,
    /// MIDI channel, 0-based (9 is the GM drum channel).
    pub channel: u8,
    pub lo: Pitch,
    pub hi: Pitch,
}

fn inst(role: Role, name: &str, program: u8, channel: u8, lo: Pitch, hi: Pitch) -> Instrument {
    Instrument {
        role,
        name: name.to_string(),
        program,
        channel,
        lo,
        hi,
    }
}

pub const DRUM_CHANNEL: u8 = 9;

/// The instruments of a film's score (one set per film, so every cue sounds of a piece).
pub fn band(genre: Genre, rng: &mut impl Rng) -> Vec<Instrument> {
    match genre {
        Genre::Noir => {
            let lead = [
                ("muted trumpet", 59, 55, 82),
                ("tenor sax", 66, 48, 75),
                ("alto sax", 65, 53, 80),
            ];
            let (name, program, lo, hi) = *lead.choose(rng).expect("leads");
            let comp = [("piano", 0), ("vibraphone", 11)];
            let (comp_name, comp_program) = *comp.choose(rng).expect("comps");
            vec![
                inst(Role::Melody, name, program, 0, lo, hi),
                inst(Role::Harmony, comp_name, comp_program, 1, 50, 77),
                inst(Role::Bass, "acoustic bass", 32, 2, 28, 55),
                inst(Role::Drums, "brush kit", 40, DRUM_CHANNEL, 35, 81),
            ]
        }
        Genre::Scifi => {
            let lead = [("vibraphone", 11, 55, 84), ("voice lead", 85, 55, 84)];
            let (name, program, lo, hi) = *lead.choose(rng).expect("leads");
            vec![
                inst(Role::Melody, name, program, 0, lo, hi),
                inst(Role::Harmony, "sweep pad", 95, 1, 52, 79),
                inst(Role::Drone, "warm pad", 89, 2, 31, 55),
                inst(Role::Arpeggio, "saw synth", 81, 3, 57, 88),
            ]
        }
        Genre::Romance => {
            let lead = [("violin", 40, 55, 93), ("flute", 73, 60, 93)];
            let (name, program, lo, hi) = *lead.choose(rng).expect("leads");
            vec![
                inst(Role::Melody, name, program, 0, lo, hi),
                inst(Role::Harmony, "strings", 48, 1, 52, 79),
                inst(Role::Arpeggio, "piano", 0, 3, 48, 79),
                inst(Role::Bass, "cello", 42, 2, 36, 60),
            ]
        }
    }
}

/// A chord progression: (semitones above the tonic, quality) per chord.
type Progression = &'static [(u8, Quality)];

fn progressions(mode: Mode) -> &'static [Progression] {
    use Quality::*;
    match mode {
        // ii-V-i and its relatives.
        Mode::Minor => &[
            &[
                (2, HalfDiminished7),
                (7, Dominant7),
                (0, Minor7),
                (0, Minor7),
            ],
            &[
                (0, Minor7),
                (5, Minor7),
                (2, HalfDiminished7),
                (7, Dominant7),
            ],
            &[
                (0, Minor7),
                (8, Major7),
                (2, HalfDiminished7),
                (7, Dominant7),
            ],
            &[
                (0, Minor7),
                (0, Minor7),
                (2, HalfDiminished7),
                (7, Dominant7),
            ],
        ],
        // I-vi-IV-V and its relatives.
        Mode::Major => &[
            &[(0, Major), (9, Minor), (5, Major), (7, Major)],
            &[(0, Major), (7, Major), (9, Minor), (5, Major)],
            &[(0, Major), (9, Minor), (2, Minor), (7, Dominant7)],
            &[(0, Major7), (5, Major7), (9, Minor7), (7, Major)],
        ],
        Mode::Dorian => &[
            &[(0, Minor7), (5, Major), (0, Minor7), (10, Major)],
            &[(0, Sus2), (3, Major7), (5, Major), (0, Minor7)],
        ],
        Mode::Lydian => &[
            &[(0, Major7), (2, Major), (0, Major7), (7, Sus2)],
            &[(0, Sus2), (2, Major), (11, Minor), (0, Major7)],
        ],
        Mode::WholeTone => &[&[(0, Augmented), (2, Augmented)]],
    }
}

/// Everything about a cue that the genre and the scene's tension decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CuePlan {
    pub key: Key,
    /// Quarter notes a minute.
    pub tempo: f64,
    /// Beats a bar (the beat is a quarter note).
    pub beats: u8,
    pub bars_per_chord: u8,
    /// Offbeat eighths are played late (the noir swing).
    pub swing: bool,
    /// The progression, one chord per `bars_per_chord` bars, repeated.
    pub progression: Vec<Chord>,
    /// Melody note lengths the genre allows, in sixteenths.
    pub durations: Vec<u8>,
}

/// The film's home key for a genre.
pub fn home_key(genre: Genre, rng: &mut impl Rng) -> Key {
    let (tonics, mode): (&[u8], Mode) = match genre {
        Genre::Noir => (&[0, 2, 5, 7, 9, 10], Mode::Minor),
        Genre::Scifi => (&[2, 4, 9, 11], Mode::Dorian),
        Genre::Romance => (&[0, 2, 5, 7, 10, 3], Mode::Major),
    };
    Key::new(*tonics.choose(rng).expect("tonics"), mode)
}

/// The plan of one cue: the home key, bent by the scene's tension (0 calm, 1 tense).
pub fn plan_cue(genre: Genre, home: Key, tension: f64, rng: &mut impl Rng) -> CuePlan {
    let t = tension.clamp(0.0, 1.0);
    let (key, tempo_range, beats, bars_per_chord, swing, durations): (
        Key,
        (f64, f64),
        u8,
        u8,
        bool,
        Vec<u8>,
    ) = match genre {
        Genre::Noir => (home, (66.0, 104.0), 4, 1, true, vec![2, 3, 4, 6, 8, 12]),
        Genre::Scifi => {
            // Calm scenes float in dorian or lydian; tense ones lose their footing in whole tones.
            let mode = if t > 0.7 {
                Mode::WholeTone
            } else if rng.random_bool(0.5) {
                Mode::Dorian
            } else {
                Mode::Lydian
            };
            (
                Key::new(home.tonic, mode),
                (60.0, 112.0),
                4,
                2,
                false,
                vec![4, 6, 8, 12, 16],
            )
        }
        Genre::Romance => {
            // The hardest scenes of a romance turn to the relative minor.
            let key = if t > 0.75 {
                Key::new(home.tonic + 9, Mode::Minor)
            } else {
                home
            };
            let beats = if rng.random_bool(0.4) { 3 } else { 4 };
            (key, (68.0, 100.0), beats, 1, false, vec![2, 4, 6, 8, 12])
        }
    };
    let options = progressions(key.mode);
    let progression = options
        .choose(rng)
        .expect("progressions")
        .iter()
        .map(|(offset, q)| Chord::on(&key, *offset, *q))
        .collect();
    let jitter: f64 = rng.random_range(-3.0..3.0);
    let tempo = (tempo_range.0 + (tempo_range.1 - tempo_range.0) * t + jitter).round();
    CuePlan {
        key,
        tempo,
        beats,
        bars_per_chord,
        swing,
        progression,
        durations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn progressions_stay_in_their_scale_but_for_the_leading_tone() {
        for mode in [
            Mode::Major,
            Mode::Minor,
            Mode::Dorian,
            Mode::Lydian,
            Mode::WholeTone,
        ] {
            let key = Key::new(0, mode);
            for p in progressions(mode) {
                for (offset, q) in p.iter() {
                    let chord = Chord::on(&key, *offset, *q);
                    let outside = (0..12u8)
                        .filter(|pc| chord.contains(*pc) && !key.contains(*pc))
                        .count();
                    let allowed = usize::from(mode == Mode::Minor && *q == Quality::Dominant7);
                    assert!(outside <= allowed, "{} in {}", chord.name(), key.name());
                }
            }
        }
    }

    #[test]
    fn tension_raises_the_tempo() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let home = home_key(Genre::Noir, &mut rng);
        let calm = plan_cue(Genre::Noir, home, 0.0, &mut rng).tempo;
        let tense = plan_cue(Genre::Noir, home, 1.0, &mut rng).tempo;
        assert!(tense > calm + 20.0, "{calm} vs {tense}");
        let band = band(Genre::Noir, &mut rng);
        assert!(band.iter().any(|i| i.channel == DRUM_CHANNEL));
    }
}
