//! Casting: every character gets a voice that is stable (same name, same voice) and differs
//! from the others it shares a scene with. The cast is voices.json, which the user may edit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::screenplay::fountain::Screenplay;

/// How one character sounds (espeak-ng terms: a language voice plus a variant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Voice {
    pub language: String,
    pub variant: String,
    /// Base pitch, 0-99 (50 is the voice's normal).
    pub pitch: u32,
    /// Pitch range, 0-99 (0 is monotone).
    pub range: u32,
    /// Words per minute.
    pub rate: u32,
}

/// Variants that sound clearly apart, men's then women's then others.
pub const VARIANTS: [&str; 16] = [
    "m1", "f1", "m3", "f2", "m2", "f3", "m4", "f4", "m5", "f5", "m6", "m7", "klatt", "klatt2",
    "klatt3", "croak",
];

fn hash(name: &str) -> u64 {
    // FNV-1a: stable across versions and platforms, unlike std's hasher.
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// The voice a name gets when nothing is in its way.
pub fn voice_for(name: &str, variant: &str) -> Voice {
    let h = hash(&name.to_uppercase());
    Voice {
        language: "en-us".into(),
        variant: variant.into(),
        pitch: 35 + (h >> 8) as u32 % 30,
        range: 35 + (h >> 16) as u32 % 35,
        rate: 155 + (h >> 24) as u32 % 35,
    }
}

/// Casts every speaking character, keeping the voices in `existing` (earlier runs or the user's
/// edits) and giving newcomers a variant nobody in their scenes already has.
pub fn cast(
    screenplay: &Screenplay,
    existing: &BTreeMap<String, Voice>,
) -> BTreeMap<String, Voice> {
    let mut cast: BTreeMap<String, Voice> = BTreeMap::new();
    for name in &screenplay.characters {
        if let Some(v) = existing.get(name) {
            cast.insert(name.clone(), v.clone());
        }
    }
    for name in &screenplay.characters {
        if cast.contains_key(name) {
            continue;
        }
        let co_stars: Vec<&str> = screenplay
            .scenes
            .iter()
            .map(|s| s.speakers())
            .filter(|speakers| speakers.contains(&name.as_str()))
            .flatten()
            .filter(|c| c != name)
            .collect();
        let taken: Vec<&str> = co_stars
            .iter()
            .filter_map(|c| cast.get(*c))
            .map(|v| v.variant.as_str())
            .collect();
        let start = (hash(&name.to_uppercase()) % VARIANTS.len() as u64) as usize;
        let variant = (0..VARIANTS.len())
            .map(|i| VARIANTS[(start + i) % VARIANTS.len()])
            .find(|v| !taken.contains(v))
            .unwrap_or(VARIANTS[start]);
        cast.insert(name.clone(), voice_for(name, variant));
    }
    cast
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screenplay::fountain::parse;

    #[test]
    fn casting_is_stable_distinct_in_a_scene_and_keeps_edits() {
        let s = parse("INT. A - DAY\n\nSAM\nHi.\n\nVERA\nHello.\n\nMAX\nHey.\n\nEXT. B - NIGHT\n\nSAM\nBye.\n\n");
        let first = cast(&s, &BTreeMap::new());
        assert_eq!(first, cast(&s, &BTreeMap::new()));
        let variants: Vec<&str> = ["SAM", "VERA", "MAX"]
            .iter()
            .map(|n| first[*n].variant.as_str())
            .collect();
        assert!(
            variants[0] != variants[1] && variants[1] != variants[2] && variants[0] != variants[2],
            "{variants:?}"
        );
        let mut edited = first.clone();
        edited.get_mut("SAM").unwrap().variant = "croak".into();
        let again = cast(&s, &edited);
        assert_eq!(again["SAM"].variant, "croak");
        assert_eq!(again["VERA"], first["VERA"]);
    }
}
