//! Pitch, scales, keys and chords: the little music theory the composer needs.

use serde::{Deserialize, Serialize};

/// A MIDI note number (60 is middle C).
pub type Pitch = u8;

const NAMES: [&str; 12] = [
    "C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B",
];

/// Pitch class (0 = C) of a note.
pub fn pitch_class(p: Pitch) -> u8 {
    p % 12
}

/// "C4" for 60.
pub fn note_name(p: Pitch) -> String {
    format!("{}{}", NAMES[pitch_class(p) as usize], p as i32 / 12 - 1)
}

/// The scales the genres use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Major,
    /// Natural minor (the V chord borrows the harmonic minor's leading tone).
    Minor,
    Dorian,
    Lydian,
    WholeTone,
}

impl Mode {
    /// Semitones above the tonic.
    pub fn intervals(self) -> &'static [u8] {
        match self {
            Mode::Major => &[0, 2, 4, 5, 7, 9, 11],
            Mode::Minor => &[0, 2, 3, 5, 7, 8, 10],
            Mode::Dorian => &[0, 2, 3, 5, 7, 9, 10],
            Mode::Lydian => &[0, 2, 4, 6, 7, 9, 11],
            Mode::WholeTone => &[0, 2, 4, 6, 8, 10],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Major => "major",
            Mode::Minor => "minor",
            Mode::Dorian => "dorian",
            Mode::Lydian => "lydian",
            Mode::WholeTone => "whole-tone",
        }
    }

    /// Whether melodies in it lean major (the melody model's conditioning token).
    pub fn is_major(self) -> bool {
        matches!(self, Mode::Major | Mode::Lydian | Mode::WholeTone)
    }
}

/// A key: tonic pitch class and mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub tonic: u8,
    pub mode: Mode,
}

impl Key {
    pub fn new(tonic: u8, mode: Mode) -> Self {
        Key {
            tonic: tonic % 12,
            mode,
        }
    }

    /// Whether the note belongs to the key's scale.
    pub fn contains(&self, p: Pitch) -> bool {
        let rel = (pitch_class(p) + 12 - self.tonic) % 12;
        self.mode.intervals().contains(&rel)
    }

    /// "A minor".
    pub fn name(&self) -> String {
        format!("{} {}", NAMES[self.tonic as usize], self.mode.name())
    }

    /// Sharps (positive) or flats (negative) of the key signature, for MIDI's key meta event;
    /// modes use the signature of their parent major key.
    pub fn signature(&self) -> (i8, bool) {
        let (major_tonic, minor) = match self.mode {
            Mode::Major | Mode::WholeTone => (self.tonic, false),
            Mode::Minor => ((self.tonic + 3) % 12, true),
            Mode::Dorian => ((self.tonic + 10) % 12, false),
            Mode::Lydian => ((self.tonic + 7) % 12, false),
        };
        // Circle of fifths position of each major tonic, flats preferred past F#.
        const FIFTHS: [i8; 12] = [0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5];
        (FIFTHS[major_tonic as usize], minor)
    }
}

/// Chord qualities, as intervals above the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Quality {
    Major,
    Minor,
    Augmented,
    Sus2,
    Major7,
    Minor7,
    Dominant7,
    HalfDiminished7,
}

impl Quality {
    pub fn intervals(self) -> &'static [u8] {
        match self {
            Quality::Major => &[0, 4, 7],
            Quality::Minor => &[0, 3, 7],
            Quality::Augmented => &[0, 4, 8],
            Quality::Sus2 => &[0, 2, 7],
            Quality::Major7 => &[0, 4, 7, 11],
            Quality::Minor7 => &[0, 3, 7, 10],
            Quality::Dominant7 => &[0, 4, 7, 10],
            Quality::HalfDiminished7 => &[0, 3, 6, 10],
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Quality::Major => "",
            Quality::Minor => "m",
            Quality::Augmented => "+",
            Quality::Sus2 => "sus2",
            Quality::Major7 => "maj7",
            Quality::Minor7 => "m7",
            Quality::Dominant7 => "7",
            Quality::HalfDiminished7 => "m7b5",
        }
    }
}

/// A chord: root pitch class and quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chord {
    pub root: u8,
    pub quality: Quality,
}

impl Chord {
    /// The chord `offset` semitones above the key's tonic.
    pub fn on(key: &Key, offset: u8, quality: Quality) -> Self {
        Chord {
            root: (key.tonic + offset) % 12,
            quality,
        }
    }

    /// Pitch classes of the chord tones.
    pub fn pitch_classes(&self) -> Vec<u8> {
        self.quality
            .intervals()
            .iter()
            .map(|i| (self.root + i) % 12)
            .collect()
    }

    pub fn contains(&self, p: Pitch) -> bool {
        self.pitch_classes().contains(&pitch_class(p))
    }

    /// "Dm7b5".
    pub fn name(&self) -> String {
        format!("{}{}", NAMES[self.root as usize], self.quality.suffix())
    }

    /// Every chord tone in `lo..=hi`, low to high.
    pub fn tones_in(&self, lo: Pitch, hi: Pitch) -> Vec<Pitch> {
        (lo..=hi).filter(|p| self.contains(*p)).collect()
    }

    /// The root in the octave at or above `lo`.
    pub fn root_at_or_above(&self, lo: Pitch) -> Pitch {
        let mut p = lo;
        while pitch_class(p) != self.root {
            p += 1;
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chords_and_scales_hold_the_right_notes() {
        let a_minor = Key::new(9, Mode::Minor);
        assert!(a_minor.contains(60) && a_minor.contains(69) && !a_minor.contains(61));
        let e7 = Chord::on(&a_minor, 7, Quality::Dominant7);
        assert_eq!(e7.name(), "E7");
        assert!(e7.contains(68)); // G#, the leading tone
        assert_eq!(note_name(60), "C4");
        assert_eq!(
            Chord::on(&a_minor, 2, Quality::HalfDiminished7).name(),
            "Bm7b5"
        );
        assert_eq!(a_minor.signature(), (0, true));
        assert_eq!(Key::new(2, Mode::Dorian).signature(), (0, false));
        assert_eq!(Key::new(5, Mode::Major).signature(), (-1, false));
    }

    #[test]
    fn root_is_found_above_a_floor() {
        let c = Chord::on(&Key::new(0, Mode::Major), 0, Quality::Major);
        assert_eq!(c.root_at_or_above(40), 48);
        assert_eq!(c.tones_in(60, 67), vec![60, 64, 67]);
    }
}
