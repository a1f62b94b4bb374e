//! Seeded sampling of a Fountain draft: temperature, top-k and top-p, genre conditioning, and
//! the festival's constraints woven in while the model writes (the title primes the draft; the
//! prop opens an action line the model then finishes; the required line is what the first
//! character to speak in its scene says, and the model writes on from it).

use std::time::Instant;

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::tokenizer::{genre_token, END};
use super::{ModelBundle, Stepper};
use crate::film::Genre;
use crate::screenplay::cast;
use crate::screenplay::fountain::{self, parse_cue, parse_heading};

/// How adventurous the sampling is; film.toml's `[sampling]` table.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SamplingOptions {
    /// Below 1 keeps to likely words; above 1 takes more chances (0 is greedy).
    pub temperature: f32,
    /// Only the k likeliest tokens are drawn from.
    pub top_k: usize,
    /// ... and of those only the smallest set whose probability reaches p.
    pub top_p: f32,
    /// Above 1 makes words used in the last few hundred tokens less likely (punctuation,
    /// line breaks and capitals, the cues and headings, are not held against it), so that a
    /// small model does not loop on one line; 1 turns it off.
    pub repetition_penalty: f32,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        SamplingOptions {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            repetition_penalty: 1.2,
        }
    }
}

/// Scenes a film is cut into at most, by length: a scene that has run this share of the
/// screen time ends at its next paragraph.
const SCENES_PER_FILM: f64 = 5.0;

/// Paragraphs a scene holds (its heading among them) before the next heading may start.
const MIN_SCENE_PARAGRAPHS: usize = 3;

/// Tokens the repetition penalty looks back over.
const PENALTY_WINDOW: usize = 256;

/// Makes the `penalised` tokens among `recent` less likely (CTRL's penalty: a positive logit
/// divided by `penalty`, a negative one multiplied), each once.
fn penalise_repeats(logits: &mut [f32], recent: &[u32], penalised: &[bool], penalty: f32) {
    if penalty == 1.0 {
        return;
    }
    let mut seen: Vec<u32> = recent.to_vec();
    seen.sort_unstable();
    seen.dedup();
    for id in seen {
        let i = id as usize;
        if penalised.get(i) == Some(&true) {
            let l = &mut logits[i];
            *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
        }
    }
}

/// What must be in the screenplay.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Constraints {
    pub title: String,
    pub line: Option<String>,
    pub prop: Option<String>,
    /// The characters who speak (every cue is one of them); empty leaves the model free.
    pub cast: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DraftRequest {
    pub genre: Genre,
    pub seed: u64,
    /// Screen time to aim for.
    pub target_seconds: f64,
    pub constraints: Constraints,
    pub sampling: SamplingOptions,
    /// Hard cap on generated tokens.
    pub max_tokens: usize,
}

/// Draws a token id from `logits` with temperature, top-k and top-p, never one of `banned`.
pub fn sample_token(
    logits: &[f32],
    opts: &SamplingOptions,
    banned: &[u32],
    rng: &mut ChaCha8Rng,
) -> u32 {
    // A pretrained base has tens of thousands of tokens (and a ban list as long after a
    // forced word): mark the bans once, and sort only the k best.
    let mut allowed = vec![true; logits.len()];
    for &b in banned {
        if let Some(a) = allowed.get_mut(b as usize) {
            *a = false;
        }
    }
    let mut idx: Vec<usize> = (0..logits.len()).filter(|&i| allowed[i]).collect();
    let better = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    let k = if opts.temperature <= 0.0 {
        1
    } else {
        opts.top_k.max(1)
    };
    if idx.len() > k {
        idx.select_nth_unstable_by(k - 1, better);
        idx.truncate(k);
    }
    idx.sort_by(better);
    if opts.temperature <= 0.0 {
        return idx[0] as u32;
    }
    let max = logits[idx[0]];
    let mut probs: Vec<f32> = idx
        .iter()
        .map(|&i| ((logits[i] - max) / opts.temperature).exp())
        .collect();
    let sum: f32 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= sum);
    let mut keep = 0;
    let mut acc = 0.0;
    for p in &probs {
        keep += 1;
        acc += p;
        if acc >= opts.top_p {
            break;
        }
    }
    let total: f32 = probs[..keep].iter().sum();
    let mut r = rng.random::<f32>() * total;
    for (i, p) in probs[..keep].iter().enumerate() {
        r -= p;
        if r <= 0.0 {
            return idx[i] as u32;
        }
    }
    idx[keep - 1] as u32
}

/// The prop as the start of an action line: "The revolver", "A letter" stays as given.
fn prop_opening(prop: &str) -> String {
    let p = prop.trim();
    let lower = p.to_lowercase();
    let mut s = if ["a ", "an ", "the ", "his ", "her ", "their "]
        .iter()
        .any(|a| lower.starts_with(a))
    {
        p.to_string()
    } else {
        format!("The {p}")
    };
    if let Some(first) = s.get(..1) {
        s = first.to_uppercase() + &s[1..];
    }
    s
}

/// Where the line being written started, in the token stream and in the text.
#[derive(Clone, Copy)]
struct LineStart {
    token: usize,
    byte: usize,
}

/// A cue the model just wrote for someone outside the cast (or for the one who spoke last),
/// rewritten for the cast member [`cast::remap`] picks (extension kept); `None` when the cue
/// is fine. Records the speaker.
fn cast_cue(line: &str, cast: &[String], speakers: &mut Vec<String>) -> Option<String> {
    let (name, ext, _) = parse_cue(line)?;
    // A cast member answering themself is a small model's loop more often than a scene's need.
    let repeats = cast.len() > 1 && speakers.last() == Some(&name);
    if cast.is_empty() || (cast.contains(&name) && !repeats) {
        speakers.push(name);
        return None;
    }
    let member = cast::remap(&name, cast, speakers);
    let cue = match ext {
        Some(e) => format!("{member} {e}\n"),
        None => format!("{member}\n"),
    };
    speakers.push(member);
    Some(cue)
}

/// Writes a draft in Fountain. Same model, request and seed give the same text.
pub fn write_draft(
    bundle: &ModelBundle,
    req: &DraftRequest,
    deadline: Option<Instant>,
    mut on_token: impl FnMut(usize),
) -> Result<String> {
    let tok = &bundle.tokenizer;
    let mut rng = ChaCha8Rng::seed_from_u64(req.seed);
    let banned: Vec<u32> = Genre::ALL
        .iter()
        .map(|g| tok.id(&genre_token(*g)))
        .collect();
    let end = tok.id(END);
    // Tokens that would glue letters onto a forced word ("The umbrella" + "i").
    let word_continuations: Vec<u32> = (0..tok.vocab_size() as u32)
        .filter(|&id| {
            tok.token_bytes(id)
                .first()
                .is_some_and(|b| b.is_ascii_alphanumeric())
        })
        .collect();
    // Words (tokens with a lower-case letter) count as repeats; cues and headings do not.
    let penalised: Vec<bool> = (0..tok.vocab_size() as u32)
        .map(|id| tok.token_bytes(id).iter().any(u8::is_ascii_lowercase))
        .collect();
    // Tokens that could start a scene heading at the start of a paragraph.
    let heading_starts: Vec<u32> = (0..tok.vocab_size() as u32)
        .filter(|&id| {
            let bytes = tok.token_bytes(id);
            let t = String::from_utf8_lossy(&bytes);
            let t = t.trim_start_matches(' ');
            !t.is_empty() && ["INT.", "EXT.", "I/E"].iter().any(|h| h.starts_with(t))
        })
        .collect();
    let mut after_forced_word = false;
    let opening = if rng.random_bool(0.6) {
        "INT. "
    } else {
        "EXT. "
    };
    let cast_line = match &req.constraints.cast {
        c if !c.is_empty() && bundle.config.reads_cast() => cast::cast_line(c),
        _ => String::new(),
    };
    let prime = format!(
        "{}Title: {}\nAuthor: benjamin corpus\n{cast_line}\n{opening}",
        genre_token(req.genre),
        req.constraints.title.trim()
    );
    let mut stepper = Stepper::new(&bundle.model);
    stepper.push(&tok.encode(&prime)?);
    let prime_len = stepper.tokens().len();
    let mut text = prime[genre_token(req.genre).len()..].to_string();
    let prop_scene = 1 + rng.random_range(0..2usize);
    let line_scene = 1 + rng.random_range(0..2usize);
    let mut prop_pending = req
        .constraints
        .prop
        .clone()
        .filter(|p| !p.trim().is_empty());
    let mut line_pending = req
        .constraints
        .line
        .clone()
        .filter(|l| !l.trim().is_empty());
    let mut scene = 1usize;
    let mut generated = 0usize;
    let mut speakers: Vec<String> = Vec::new();
    // A scene holds a few paragraphs before the next heading, and never repeats the heading
    // of the one before: small models otherwise loop through one-line scenes.
    let (mut scene_paragraphs, mut last_heading) = (0usize, String::new());
    let mut continue_scene = false;
    let mut line_start = LineStart {
        token: stepper.tokens().len(),
        byte: text.len() - opening.len(),
    };
    loop {
        if generated >= req.max_tokens || deadline.is_some_and(|d| Instant::now() > d) {
            break;
        }
        crate::progress::check_interrupted()?;
        let mut logits = stepper.next_logits()?;
        let written = &stepper.tokens()[prime_len..];
        penalise_repeats(
            &mut logits,
            &written[written.len().saturating_sub(PENALTY_WINDOW)..],
            &penalised,
            req.sampling.repetition_penalty,
        );
        let done_enough = prop_pending.is_none()
            && line_pending.is_none()
            && fountain::parse(&text).estimated_seconds >= req.target_seconds * 0.7;
        let mut ban = banned.clone();
        if !done_enough {
            ban.push(end);
        }
        if std::mem::take(&mut after_forced_word) {
            ban.extend_from_slice(&word_continuations);
        }
        let at_paragraph = text.ends_with("\n\n");
        if at_paragraph
            && (std::mem::take(&mut continue_scene) || scene_paragraphs < MIN_SCENE_PARAGRAPHS)
        {
            ban.extend_from_slice(&heading_starts);
        }
        let id = sample_token(&logits, &req.sampling, &ban, &mut rng);
        generated += 1;
        on_token(generated);
        if id == end {
            break;
        }
        stepper.push(&[id]);
        text.push_str(&String::from_utf8_lossy(&tok.token_bytes(id)));
        if !text.ends_with('\n') {
            continue;
        }
        // A line just ended: keep its cue in the cast, weave in the constraints, follow the
        // length.
        let before_blank = text[..line_start.byte].ends_with("\n\n");
        let last_line = text[line_start.byte..].trim_end().to_string();
        if before_blank && parse_heading(&last_line).is_some() {
            if last_line.trim().eq_ignore_ascii_case(last_heading.trim()) {
                stepper.truncate(line_start.token)?;
                text.truncate(line_start.byte);
                continue_scene = true;
                continue;
            }
            last_heading = last_line.clone();
            scene_paragraphs = 0;
        }
        if text.ends_with("\n\n") && !last_line.is_empty() {
            scene_paragraphs += 1;
        }
        if before_blank && parse_heading(&last_line).is_none() {
            if let Some(cue) = cast_cue(&last_line, &req.constraints.cast, &mut speakers) {
                stepper.truncate(line_start.token)?;
                text.truncate(line_start.byte);
                stepper.push(&tok.encode(&cue)?);
                text.push_str(&cue);
            }
        }
        let lines: Vec<&str> = text.lines().collect();
        let last = lines.last().copied().unwrap_or("");
        if parse_heading(last).is_some() && lines.len() > 4 {
            scene += 1;
        }
        let mut force = String::new();
        if text.ends_with("\n\n") {
            let prev = lines
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .copied()
                .unwrap_or("");
            if let Some(prop) = prop_pending
                .as_ref()
                .filter(|_| scene >= prop_scene && parse_heading(prev).is_some())
            {
                force = prop_opening(prop);
                prop_pending = None;
                after_forced_word = true;
            } else {
                let parsed = fountain::parse(&text);
                if parsed.estimated_seconds >= req.target_seconds
                    && prop_pending.is_none()
                    && line_pending.is_none()
                {
                    break;
                }
                // A scene that has run its share of the film gives way to the next one.
                let scene_seconds = parsed.scenes.last().map_or(0.0, |s| s.estimated_seconds);
                if scene_seconds >= (req.target_seconds / SCENES_PER_FILM).max(20.0) {
                    force = if rng.random_bool(0.6) {
                        "INT. "
                    } else {
                        "EXT. "
                    }
                    .to_string();
                }
            }
        } else if let Some(line) = line_pending.as_ref().filter(|_| {
            scene >= line_scene
                && before_blank
                && parse_cue(last).is_some()
                && parse_heading(last).is_none()
        }) {
            force = format!("{}\n\n", line.trim());
            line_pending = None;
        }
        line_start = LineStart {
            token: stepper.tokens().len(),
            byte: text.len(),
        };
        if !force.is_empty() {
            stepper.push(&tok.encode(&force)?);
            text.push_str(&force);
            if force.ends_with('\n') {
                line_start = LineStart {
                    token: stepper.tokens().len(),
                    byte: text.len(),
                };
            }
        }
    }
    if prop_pending.is_some() || line_pending.is_some() {
        bail!("the model could not fit the required {} into a screenplay within {} tokens; try another --seed or a longer film",
            if line_pending.is_some() { "line" } else { "prop" }, req.max_tokens);
    }
    let full = tok.decode(&stepper.tokens()[prime_len..])?;
    Ok(format!(
        "{}{opening}{full}",
        &prime[genre_token(req.genre).len()..prime.len() - opening.len()]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_respects_top_k_bans_and_the_seed() {
        let logits = vec![0.0, 5.0, 4.9, -3.0, 4.8];
        let opts = SamplingOptions {
            temperature: 1.0,
            top_k: 2,
            top_p: 1.0,
            repetition_penalty: 1.0,
        };
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..50)
                .map(|_| sample_token(&logits, &opts, &[1], &mut rng))
                .collect::<Vec<_>>()
        };
        let a = draw(7);
        assert!(
            a.iter().all(|&t| t == 2 || t == 4),
            "only the two best unbanned tokens: {a:?}"
        );
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        let greedy = SamplingOptions {
            temperature: 0.0,
            ..opts
        };
        assert_eq!(
            sample_token(&logits, &greedy, &[], &mut ChaCha8Rng::seed_from_u64(0)),
            1
        );
    }

    #[test]
    fn prop_openings_read_naturally() {
        assert_eq!(prop_opening("revolver"), "The revolver");
        assert_eq!(prop_opening("a red umbrella"), "A red umbrella");
    }
}
