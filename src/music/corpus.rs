//! What the melody model learns from: traditional public-domain tunes written out here as note
//! lists (by benjamin's authors, from the tunes as commonly sung), and melodies made by
//! benjamin's own rules over its genre progressions. Both are transposed into every key that
//! fits the model's range.

use anyhow::{bail, Context, Result};
use rand::seq::IndexedRandom;
use rand::Rng;

use super::genre::plan_cue;
use super::model::{
    duration_token, key_token, pitch_token, BOS_MAJOR, BOS_MINOR, HIGHEST, LOWEST, REST,
};
use super::theory::{Key, Mode, Pitch};
use crate::film::Genre;

/// One note of a tune: pitch (None for a rest) and length in sixteenths.
pub type TuneNote = (Option<Pitch>, u8);

/// A tune: whether it is major, its tonic (pitch class) and its notes.
#[derive(Debug, Clone)]
pub struct Tune {
    pub name: String,
    pub major: bool,
    pub tonic: u8,
    pub notes: Vec<TuneNote>,
}

/// Traditional tunes, all public domain. `name | major or minor and the tonic | notes`, a note being
/// `C4:4` (pitch and octave, then sixteenths) or `R:4` (a rest).
pub const TUNES: &str = "\
Ode to Joy (Beethoven) | major C | E4:4 E4:4 F4:4 G4:4 G4:4 F4:4 E4:4 D4:4 C4:4 C4:4 D4:4 E4:4 E4:6 D4:2 D4:8 E4:4 E4:4 F4:4 G4:4 G4:4 F4:4 E4:4 D4:4 C4:4 C4:4 D4:4 E4:4 D4:6 C4:2 C4:8 D4:4 D4:4 E4:4 C4:4 D4:4 E4:2 F4:2 E4:4 C4:4 D4:4 E4:2 F4:2 E4:4 D4:4 C4:4 D4:4 G3:8 E4:4 E4:4 F4:4 G4:4 G4:4 F4:4 E4:4 D4:4 C4:4 C4:4 D4:4 E4:4 D4:6 C4:2 C4:8
Twinkle, Twinkle, Little Star | major C | C4:4 C4:4 G4:4 G4:4 A4:4 A4:4 G4:8 F4:4 F4:4 E4:4 E4:4 D4:4 D4:4 C4:8 G4:4 G4:4 F4:4 F4:4 E4:4 E4:4 D4:8 G4:4 G4:4 F4:4 F4:4 E4:4 E4:4 D4:8 C4:4 C4:4 G4:4 G4:4 A4:4 A4:4 G4:8 F4:4 F4:4 E4:4 E4:4 D4:4 D4:4 C4:8
Frere Jacques | major C | C4:4 D4:4 E4:4 C4:4 C4:4 D4:4 E4:4 C4:4 E4:4 F4:4 G4:8 E4:4 F4:4 G4:8 G4:2 A4:2 G4:2 F4:2 E4:4 C4:4 G4:2 A4:2 G4:2 F4:2 E4:4 C4:4 C4:4 G3:4 C4:8 C4:4 G3:4 C4:8
Mary Had a Little Lamb | major C | E4:4 D4:4 C4:4 D4:4 E4:4 E4:4 E4:8 D4:4 D4:4 D4:8 E4:4 G4:4 G4:8 E4:4 D4:4 C4:4 D4:4 E4:4 E4:4 E4:4 E4:4 D4:4 D4:4 E4:4 D4:4 C4:16
London Bridge | major C | G4:3 A4:1 G4:2 F4:2 E4:4 F4:4 G4:8 D4:4 E4:4 F4:8 E4:4 F4:4 G4:8 G4:3 A4:1 G4:2 F4:2 E4:4 F4:4 G4:8 D4:8 G4:8 E4:4 C4:12
Row, Row, Row Your Boat | major C | C4:6 C4:6 C4:4 D4:2 E4:6 E4:4 D4:2 E4:4 F4:2 G4:12 C5:2 C5:2 C5:2 G4:2 G4:2 G4:2 E4:2 E4:2 E4:2 C4:2 C4:2 C4:2 G4:4 F4:2 E4:4 D4:2 C4:12
Yankee Doodle | major C | C4:2 C4:2 D4:2 E4:2 C4:2 E4:2 D4:2 G3:2 C4:2 C4:2 D4:2 E4:2 C4:4 B3:4 C4:2 C4:2 D4:2 E4:2 F4:2 E4:2 D4:2 C4:2 B3:2 G3:2 A3:2 B3:2 C4:4 C4:4
Oh! Susanna (Foster) | major C | C4:2 D4:2 E4:4 G4:4 G4:3 A4:1 G4:4 E4:4 C4:3 D4:1 E4:4 E4:4 D4:4 C4:4 D4:8 R:4 C4:2 D4:2 E4:4 G4:4 G4:3 A4:1 G4:4 E4:4 C4:3 D4:1 E4:4 E4:4 D4:4 D4:4 C4:12
Auld Lang Syne | major C | G3:4 C4:6 C4:2 C4:4 E4:4 D4:6 C4:2 D4:4 E4:2 D4:2 C4:6 C4:2 E4:4 G4:4 A4:12 A4:4 G4:6 E4:2 E4:4 C4:4 D4:6 C4:2 D4:4 E4:2 D4:2 C4:6 A3:2 A3:4 G3:4 C4:12
Amazing Grace | major C | G3:4 C4:8 E4:2 C4:2 E4:8 D4:4 C4:8 A3:4 G3:8 G3:4 C4:8 E4:2 C4:2 E4:8 D4:2 E4:2 G4:12 R:8 E4:4 G4:6 E4:2 G4:2 E4:2 C4:8 G3:4 A3:6 C4:2 C4:2 A3:2 G3:8 G3:4 C4:8 E4:2 C4:2 E4:8 D4:4 C4:12
When the Saints Go Marching In | major C | R:4 C4:4 E4:4 F4:4 G4:16 R:4 C4:4 E4:4 F4:4 G4:16 R:4 C4:4 E4:4 F4:4 G4:8 E4:8 C4:8 E4:8 D4:16 R:4 E4:4 E4:4 D4:4 C4:12 C4:4 E4:8 G4:8 G4:4 F4:12 R:4 E4:4 F4:4 G4:4 E4:8 C4:8 D4:8 D4:8 C4:16
Joy to the World | major C | C5:8 B4:6 A4:2 G4:12 F4:4 E4:8 D4:8 C4:12 G4:4 A4:12 A4:4 B4:12 B4:4 C5:12 C5:4 C5:4 B4:4 A4:4 G4:4 G4:6 F4:2 E4:4 C5:4 C5:4 B4:4 A4:4 G4:4 G4:6 F4:2 E4:4 E4:4 E4:4 E4:4 E4:4 E4:2 F4:2 G4:12 F4:2 E4:2 D4:4 D4:4 D4:4 D4:2 E4:2 F4:12 E4:2 D4:2 C4:4 C5:8 A4:4 G4:6 F4:2 E4:4 F4:4 E4:8 D4:8 C4:16
Jingle Bells | major C | E4:4 E4:4 E4:8 E4:4 E4:4 E4:8 E4:4 G4:4 C4:6 D4:2 E4:16 F4:4 F4:4 F4:6 F4:2 F4:4 E4:4 E4:4 E4:2 E4:2 E4:4 D4:4 D4:4 E4:4 D4:8 G4:8 E4:4 E4:4 E4:8 E4:4 E4:4 E4:8 E4:4 G4:4 C4:6 D4:2 E4:16 F4:4 F4:4 F4:6 F4:2 F4:4 E4:4 E4:4 E4:2 E4:2 G4:4 G4:4 F4:4 D4:4 C4:16
Greensleeves | minor A | A4:2 C5:4 D5:2 E5:3 F5:1 E5:2 D5:4 B4:2 G4:3 A4:1 B4:2 C5:4 A4:2 A4:3 G#4:1 A4:2 B4:4 G#4:2 E4:4 A4:2 C5:4 D5:2 E5:3 F5:1 E5:2 D5:4 B4:2 G4:3 A4:1 B4:2 C5:3 B4:1 A4:2 G#4:3 F#4:1 G#4:2 A4:6 A4:4 R:2 G5:6 G5:3 F#5:1 E5:2 D5:4 B4:2 G4:3 A4:1 B4:2 C5:4 A4:2 A4:3 G#4:1 A4:2 B4:4 G#4:2 E4:6 G5:6 G5:3 F#5:1 E5:2 D5:4 B4:2 G4:3 A4:1 B4:2 C5:3 B4:1 A4:2 G#4:3 F#4:1 G#4:2 A4:12
Scarborough Fair | minor D | D4:4 D4:4 A4:4 A4:6 E4:2 F4:4 E4:4 D4:8 R:4 A4:4 C5:4 D5:8 C5:4 A4:4 B4:4 G4:4 A4:12 R:4 D5:4 D5:4 D5:8 C5:4 A4:8 A4:4 G4:4 F4:8 E4:4 C4:8 D4:4 A4:4 G4:4 F4:4 E4:4 D4:4 C4:4 D4:12
Drunken Sailor | minor D | A4:4 A4:2 A4:2 A4:4 A4:2 A4:2 A4:4 D4:4 F4:4 A4:4 G4:4 G4:2 G4:2 G4:4 G4:2 G4:2 G4:4 C4:4 E4:4 G4:4 A4:4 A4:2 A4:2 A4:4 A4:2 A4:2 A4:4 B4:4 C5:4 D5:4 C5:4 A4:4 G4:4 E4:4 D4:8 D4:8
God Rest Ye Merry, Gentlemen | minor A | A4:4 A4:4 E5:4 E5:4 D5:4 C5:4 B4:4 A4:4 G4:4 A4:4 B4:4 C5:4 D5:4 E5:12 A4:4 A4:4 E5:4 E5:4 D5:4 C5:4 B4:4 A4:4 G4:4 A4:4 B4:4 C5:4 D5:4 E5:12 E5:4 F5:4 D5:4 E5:4 F5:4 G5:4 A5:4 E5:4 D5:4 C5:4 A4:4 B4:4 C5:4 D5:4 E5:8 D5:4 E5:4 F5:4 G5:4 A5:4 G5:4 F5:4 E5:4 D5:4 C5:4 B4:4 A4:12
Wayfaring Stranger | minor A | E4:4 A4:8 A4:4 B4:4 C5:8 B4:4 A4:4 C5:8 E5:4 E5:4 D5:12 R:4 E4:4 A4:8 A4:4 B4:4 C5:8 B4:4 A4:4 G4:8 E4:4 E4:4 A4:12
";

fn parse_pitch(text: &str) -> Option<Pitch> {
    let mut chars = text.chars();
    let letter = chars.next()?;
    let base: i32 = match letter {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => return None,
    };
    let rest: String = chars.collect();
    let (accidental, octave) = match rest.strip_prefix('#') {
        Some(o) => (1, o),
        None => match rest.strip_prefix('b') {
            Some(o) => (-1, o),
            None => (0, rest.as_str()),
        },
    };
    let octave: i32 = octave.parse().ok()?;
    u8::try_from((octave + 1) * 12 + base + accidental).ok()
}

/// Parses tunes in the [`TUNES`] notation.
pub fn parse_tunes(text: &str) -> Result<Vec<Tune>> {
    let mut tunes = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split('|').map(str::trim).collect();
        let [name, mode, notes] = parts[..] else {
            bail!(
                "tune line {}: expected `name | major or minor and tonic | notes`",
                n + 1
            );
        };
        let (mode, tonic) = mode
            .split_once(' ')
            .with_context(|| format!("{name}: expected e.g. `major C` or `minor A`"))?;
        let tonic = parse_pitch(&format!("{tonic}4"))
            .with_context(|| format!("{name}: bad tonic {tonic:?}"))?
            % 12;
        let mut list = Vec::new();
        for note in notes.split_whitespace() {
            let (p, d) = note
                .split_once(':')
                .with_context(|| format!("{name}: note {note:?} lacks its :length"))?;
            let d: u8 = d
                .parse()
                .with_context(|| format!("{name}: bad length in {note:?}"))?;
            let pitch = match p {
                "R" => None,
                p => Some(parse_pitch(p).with_context(|| format!("{name}: bad pitch {p:?}"))?),
            };
            list.push((pitch, d));
        }
        tunes.push(Tune {
            name: name.to_string(),
            major: mode == "major",
            tonic,
            notes: list,
        });
    }
    Ok(tunes)
}

/// A tune as model tokens, shifted by `semitones`; `None` when a note leaves the model's range
/// or a length is one the model does not know.
pub fn tokens(tune: &Tune, semitones: i32) -> Option<Vec<u32>> {
    let tonic = (tune.tonic as i32 + semitones).rem_euclid(12) as u8;
    let mut out = vec![
        if tune.major { BOS_MAJOR } else { BOS_MINOR },
        key_token(tonic),
    ];
    for (pitch, d) in &tune.notes {
        out.push(duration_token(*d)?);
        out.push(match pitch {
            None => REST,
            Some(p) => {
                let q = *p as i32 + semitones;
                if q < LOWEST as i32 || q > HIGHEST as i32 {
                    return None;
                }
                pitch_token(q as u8)?
            }
        });
    }
    Some(out)
}

/// Every transposition (within an octave either way) of the tune that fits the range.
pub fn transpositions(tune: &Tune) -> Vec<Vec<u32>> {
    (-12..=12).filter_map(|s| tokens(tune, s)).collect()
}

/// A melody by benjamin's rules over a genre progression: chord tones reached by steps and
/// small leaps, stepwise passing tones between them, a rest at each phrase end.
pub fn rule_melody(genre: Genre, rng: &mut impl Rng) -> Tune {
    let tonic = rng.random_range(0..12);
    let mode = match genre {
        Genre::Noir => Mode::Minor,
        Genre::Scifi => Mode::Dorian,
        Genre::Romance => Mode::Major,
    };
    let plan = plan_cue(genre, Key::new(tonic, mode), rng.random(), rng);
    let bar = plan.beats as u32 * 4;
    let (lo, hi) = (55u8, 79u8);
    let mut prev: Pitch = rng.random_range(60..72);
    let mut notes = Vec::new();
    let chords_per_phrase = plan.progression.len() * 2;
    for i in 0..chords_per_phrase {
        let chord = plan.progression[i % plan.progression.len()];
        let mut left = bar * plan.bars_per_chord as u32;
        let last = i + 1 == chords_per_phrase;
        while left > 0 {
            let fits: Vec<u8> = plan
                .durations
                .iter()
                .copied()
                .filter(|d| *d as u32 <= left)
                .collect();
            let d = *fits.choose(rng).unwrap_or(&1);
            left -= d as u32;
            if last && left == 0 {
                notes.push((None, d));
                break;
            }
            let tones = chord.tones_in(lo.max(prev.saturating_sub(7)), hi.min(prev + 7));
            let target = *tones.choose(rng).unwrap_or(&prev);
            // A passing tone on the way when the leap is a third.
            let gap = target as i32 - prev as i32;
            if (3..=4).contains(&gap.abs()) && d >= 2 && rng.random_bool(0.5) {
                let mid = (prev as i32 + gap.signum() * if gap.abs() == 3 { 1 } else { 2 }) as u8;
                if plan.key.contains(mid) {
                    notes.push((Some(mid), d / 2));
                    notes.push((Some(target), d - d / 2));
                    prev = target;
                    continue;
                }
            }
            notes.push((Some(target), d));
            prev = target;
        }
    }
    // Only lengths the model knows.
    notes.retain(|(_, d)| duration_token(*d).is_some());
    Tune {
        name: format!("rules: {genre}"),
        major: mode.is_major(),
        tonic: plan.key.tonic,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_tunes_parse_and_transpose() {
        let tunes = parse_tunes(TUNES).unwrap();
        assert!(tunes.len() >= 15);
        for t in &tunes {
            assert!(t.notes.len() >= 16, "{}", t.name);
            assert!(transpositions(t).len() >= 8, "{}", t.name);
        }
        assert_eq!(parse_pitch("C4"), Some(60));
        assert_eq!(parse_pitch("G#4"), Some(68));
        assert_eq!(parse_pitch("Bb3"), Some(58));
    }

    #[test]
    fn rule_melodies_are_in_range() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for g in Genre::ALL {
            let t = rule_melody(g, &mut rng);
            assert!(t.notes.len() > 4);
            assert!(tokens(&t, 0).is_some());
        }
    }
}
