//! The film's cast, decided before drafting: a few characters with names that fit the genre.
//! The model reads them from the title page (it was fine-tuned on screenplays whose title
//! page names their cast), and every character cue it writes is kept among them.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::film::Genre;
use crate::screenplay::fountain::{self, cast_line, CAST_KEY};

fn names(genre: Genre) -> &'static [&'static str] {
    match genre {
        Genre::Noir => &[
            "EDDIE", "LORETTA", "VIC", "MARLA", "FRANKIE", "DOLORES", "SAL", "VERA", "JOHNNY",
            "RUTH", "NICK", "IRENE", "MICKEY", "GLORIA", "LOU", "HELEN", "BENNY", "CLAIRE", "RAY",
            "LILA", "GUS", "EVELYN", "HARRY", "NORA",
        ],
        Genre::Scifi => &[
            "OKAFOR",
            "VEGA",
            "REYES",
            "LIN",
            "HALE",
            "ANSEL",
            "MIRA",
            "TOBIAS",
            "KESTREL",
            "IDRIS",
            "SOLA",
            "PRUITT",
            "JUNO",
            "ABERNATHY",
            "TALLIS",
            "ESME",
            "KADE",
            "NOVAK",
            "ORSON",
            "YUKI",
            "DASHA",
            "EMEKA",
            "RHEA",
            "CORMAC",
        ],
        Genre::Romance => &[
            "CLARA", "THEO", "JUNE", "MILES", "ROSIE", "EZRA", "HANNAH", "LEO", "ISLA", "NATE",
            "MAGGIE", "OWEN", "TESS", "FELIX", "AUDREY", "SAM", "LUCY", "DANIEL", "IVY", "JACK",
            "NORA", "BEN", "POPPY", "GABE",
        ],
    }
}

/// How many speaking parts a film of `minutes` has: two for a minute, five from six minutes.
pub fn size_for(minutes: f64) -> usize {
    match minutes {
        m if m <= 1.5 => 2,
        m if m <= 3.0 => 3,
        m if m <= 6.0 => 4,
        _ => 5,
    }
}

/// A seeded cast of `size` names that fit `genre`.
pub fn choose(genre: Genre, size: usize, seed: u64) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xca57);
    let mut pool: Vec<&str> = names(genre).to_vec();
    pool.shuffle(&mut rng);
    pool.into_iter()
        .take(size.clamp(1, 8))
        .map(str::to_string)
        .collect()
}

/// A screenplay's text with its cast (the speaking characters, in order of first appearance)
/// named on its title page, after its other keys: how the fine-tuning data is written.
pub fn with_cast_line(text: &str) -> String {
    let cast = fountain::parse(text).characters;
    if cast.is_empty() || text.lines().any(|l| l.starts_with(&format!("{CAST_KEY}:"))) {
        return text.to_string();
    }
    // The title page is the first block of `Key: value` lines.
    let title_page_end = text
        .find("\n\n")
        .filter(|&i| text[..i].lines().all(|l| l.contains(':')))
        .map(|i| i + 1);
    match title_page_end {
        Some(i) => format!("{}{}{}", &text[..i], cast_line(&cast), &text[i..]),
        None => format!("{}\n{text}", cast_line(&cast)),
    }
}

/// The cast member a stray cue `name` becomes: one whose name it contains (EDDIE for "EDDIE
/// CALLOWAY"), else the one who has waited longest to speak; never the last speaker when
/// another can answer. `recent` lists the speakers so far, latest last.
pub fn remap(name: &str, cast: &[String], recent: &[String]) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    let last = recent.last();
    let may_answer = |c: &&String| cast.len() == 1 || Some(*c) != last;
    if let Some(c) = cast
        .iter()
        .filter(may_answer)
        .find(|c| words.contains(&c.as_str()))
    {
        return c.clone();
    }
    let last_turn = |c: &String| recent.iter().rposition(|r| r == c);
    cast.iter()
        .filter(may_answer)
        .min_by_key(|c| last_turn(c).map_or(-1, |i| i as i64))
        .cloned()
        .unwrap_or_else(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_are_seeded_distinct_and_sized_by_length() {
        let a = choose(Genre::Noir, size_for(4.0), 7);
        assert_eq!(a.len(), 4);
        assert_eq!(a, choose(Genre::Noir, 4, 7));
        assert_ne!(a, choose(Genre::Noir, 4, 8));
        let mut sorted = a.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), a.len());
        assert_eq!(size_for(1.0), 2);
        assert_eq!(size_for(20.0), 5);
    }

    #[test]
    fn stray_names_become_the_cast_member_who_waited_longest() {
        let cast: Vec<String> = ["EDDIE", "VERA", "SAL"].map(String::from).to_vec();
        assert_eq!(remap("EDDIE CALLOWAY", &cast, &[]), "EDDIE");
        let recent: Vec<String> = ["EDDIE", "SAL", "VERA"].map(String::from).to_vec();
        assert_eq!(remap("BARTENDER", &cast, &recent), "EDDIE");
        let recent: Vec<String> = ["VERA", "EDDIE"].map(String::from).to_vec();
        assert_eq!(remap("COP", &cast, &recent), "SAL");
        assert_eq!(remap("EDDIE", &cast, &recent), "SAL", "EDDIE just spoke");
    }

    #[test]
    fn training_text_names_its_cast_on_the_title_page() {
        let text = "Title: X\nAuthor: Y\n\nINT. BAR - NIGHT\n\nRain.\n\nVERA\nYou came.\n\nSAM\nI did.\n\nVERA\nGood.\n";
        let with = with_cast_line(text);
        assert!(
            with.starts_with("Title: X\nAuthor: Y\nCast: VERA, SAM\n\nINT. BAR"),
            "{with}"
        );
        assert_eq!(with_cast_line(&with), with);
    }
}
