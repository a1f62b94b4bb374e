//! Writing a draft: the model samples token by token, and at each line's end benjamin keeps
//! the text a screenplay. The festival's constraints are woven in (the title primes the draft;
//! the prop opens an action line the model then finishes; the required line is what the
//! first character to speak in its scene says); every cue is kept in the cast; scenes hold a
//! few paragraphs, never repeat the last heading, and give way when they have run their
//! share of the film. A line that breaks a rule is rewound and rewritten.

use std::time::Instant;

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::sample::{penalise_repeats, sample_token, DraftRequest};
use super::tokenizer::{genre_token, ScreenplayTokenizer, END};
use super::{ModelBundle, Stepper};
use crate::film::Genre;
use crate::screenplay::cast;
use crate::screenplay::fountain::{self, parse_cue, parse_heading};

/// Tokens the repetition penalty looks back over.
const PENALTY_WINDOW: usize = 256;

/// Scenes a film is cut into at most, by length: a scene that has run this share of the
/// screen time ends at its next paragraph.
const SCENES_PER_FILM: f64 = 5.0;

/// Paragraphs a scene holds (its heading among them) before the next heading may start.
const MIN_SCENE_PARAGRAPHS: usize = 3;

/// Writes a draft in Fountain. Same model, request and seed give the same text.
pub fn write_draft(
    bundle: &ModelBundle,
    req: &DraftRequest,
    deadline: Option<Instant>,
    mut on_token: impl FnMut(usize),
) -> Result<String> {
    let mut draft = Drafter::new(bundle, req)?;
    let mut generated = 0usize;
    while generated < req.max_tokens && deadline.is_none_or(|d| Instant::now() <= d) {
        crate::progress::check_interrupted()?;
        let Some(id) = draft.sample()? else {
            break;
        };
        generated += 1;
        on_token(generated);
        if draft.push(id)? == Flow::Stop {
            break;
        }
    }
    draft.finish()
}

/// Token ids the drafter treats apart, worked out once per draft.
struct TokenClasses {
    /// The genre tokens: never written inside a screenplay.
    genres: Vec<u32>,
    end: u32,
    /// Tokens that would glue letters onto a forced word ("The umbrella" + "i").
    word_continuations: Vec<u32>,
    /// Tokens that could start a scene heading at the start of a paragraph.
    heading_starts: Vec<u32>,
    /// Words (tokens with a lower-case letter): what the repetition penalty counts; cues
    /// and headings are not held against the model.
    penalised: Vec<bool>,
}

impl TokenClasses {
    fn new(tok: &ScreenplayTokenizer) -> Self {
        let texts: Vec<Vec<u8>> = (0..tok.vocab_size() as u32)
            .map(|id| tok.token_bytes(id))
            .collect();
        let ids_where = |f: &dyn Fn(&[u8]) -> bool| -> Vec<u32> {
            (0..texts.len() as u32)
                .filter(|&id| f(&texts[id as usize]))
                .collect()
        };
        TokenClasses {
            genres: Genre::ALL
                .iter()
                .map(|g| tok.id(&genre_token(*g)))
                .collect(),
            end: tok.id(END),
            word_continuations: ids_where(&|b| b.first().is_some_and(u8::is_ascii_alphanumeric)),
            heading_starts: ids_where(&|b| {
                let t = String::from_utf8_lossy(b);
                let t = t.trim_start_matches(' ');
                !t.is_empty() && ["INT.", "EXT.", "I/E"].iter().any(|h| h.starts_with(t))
            }),
            penalised: texts
                .iter()
                .map(|b| b.iter().any(u8::is_ascii_lowercase))
                .collect(),
        }
    }
}

/// Where the line being written started, in the token stream and in the text.
#[derive(Clone, Copy)]
struct LineStart {
    token: usize,
    byte: usize,
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

struct Drafter<'a> {
    tok: &'a ScreenplayTokenizer,
    req: &'a DraftRequest,
    classes: TokenClasses,
    rng: ChaCha8Rng,
    stepper: Stepper<'a>,
    /// The title page as primed, and the draft written after it.
    title_page: String,
    text: String,
    prime_len: usize,
    line_start: LineStart,
    prop_pending: Option<String>,
    line_pending: Option<String>,
    /// The scenes from which the prop and the line may come.
    prop_scene: usize,
    line_scene: usize,
    scene: usize,
    /// Who spoke, in order (cast members after any rewrite).
    speakers: Vec<String>,
    scene_paragraphs: usize,
    last_heading: String,
    /// The next paragraph may not start a scene (a repeated heading was just taken back).
    continue_scene: bool,
    after_forced_word: bool,
}

impl<'a> Drafter<'a> {
    fn new(bundle: &'a ModelBundle, req: &'a DraftRequest) -> Result<Self> {
        let tok = &bundle.tokenizer;
        let mut rng = ChaCha8Rng::seed_from_u64(req.seed);
        let opening = if rng.random_bool(0.6) {
            "INT. "
        } else {
            "EXT. "
        };
        let cast_line = match &req.constraints.cast {
            c if !c.is_empty() && bundle.config.reads_cast() => fountain::cast_line(c),
            _ => String::new(),
        };
        let title_page = format!(
            "Title: {}\nAuthor: benjamin corpus\n{cast_line}\n",
            req.constraints.title.trim()
        );
        let mut stepper = Stepper::new(&bundle.model);
        stepper.push(&tok.encode(&format!("{}{title_page}", genre_token(req.genre)))?);
        let prime_len = stepper.tokens().len();
        stepper.push(&tok.encode(opening)?);
        let pending = |s: &Option<String>| s.clone().filter(|v| !v.trim().is_empty());
        Ok(Drafter {
            tok,
            req,
            classes: TokenClasses::new(tok),
            prop_scene: 1 + rng.random_range(0..2usize),
            line_scene: 1 + rng.random_range(0..2usize),
            rng,
            line_start: LineStart {
                token: prime_len,
                byte: 0,
            },
            stepper,
            title_page,
            text: opening.to_string(),
            prime_len,
            prop_pending: pending(&req.constraints.prop),
            line_pending: pending(&req.constraints.line),
            scene: 1,
            speakers: Vec::new(),
            scene_paragraphs: 0,
            last_heading: String::new(),
            continue_scene: false,
            after_forced_word: false,
        })
    }

    /// The next token, or `None` when the model ends the screenplay.
    fn sample(&mut self) -> Result<Option<u32>> {
        let mut logits = self.stepper.next_logits()?;
        let written = &self.stepper.tokens()[self.prime_len..];
        penalise_repeats(
            &mut logits,
            &written[written.len().saturating_sub(PENALTY_WINDOW)..],
            &self.classes.penalised,
            self.req.sampling.repetition_penalty,
        );
        let bans = self.bans();
        let id = sample_token(&logits, &self.req.sampling, &bans, &mut self.rng);
        Ok((id != self.classes.end).then_some(id))
    }

    fn bans(&mut self) -> Vec<u32> {
        let c = &self.classes;
        let mut ban = c.genres.clone();
        let done_enough = self.prop_pending.is_none()
            && self.line_pending.is_none()
            && fountain::parse(&self.text).estimated_seconds >= self.req.target_seconds * 0.7;
        if !done_enough {
            ban.push(c.end);
        }
        if std::mem::take(&mut self.after_forced_word) {
            ban.extend_from_slice(&c.word_continuations);
        }
        let continue_scene = std::mem::take(&mut self.continue_scene);
        if self.text.ends_with("\n\n")
            && (continue_scene || self.scene_paragraphs < MIN_SCENE_PARAGRAPHS)
        {
            ban.extend_from_slice(&c.heading_starts);
        }
        ban
    }

    /// Takes a sampled token; at a line's end, keeps the screenplay's rules.
    fn push(&mut self, id: u32) -> Result<Flow> {
        self.stepper.push(&[id]);
        self.text
            .push_str(&String::from_utf8_lossy(&self.tok.token_bytes(id)));
        if !self.text.ends_with('\n') {
            return Ok(Flow::Continue);
        }
        let after_blank =
            self.line_start.byte == 0 || self.text[..self.line_start.byte].ends_with("\n\n");
        let line = self.text[self.line_start.byte..].trim_end().to_string();
        let is_heading = parse_heading(&line).is_some();
        if after_blank && is_heading {
            if line.trim().eq_ignore_ascii_case(self.last_heading.trim()) {
                self.rewrite_line("")?;
                self.continue_scene = true;
                return Ok(Flow::Continue);
            }
            if !self.last_heading.is_empty() {
                self.scene += 1;
            }
            self.last_heading = line.clone();
            self.scene_paragraphs = 0;
        }
        if self.text.ends_with("\n\n") && !line.is_empty() {
            self.scene_paragraphs += 1;
        }
        let mut is_cue = false;
        if after_blank && !is_heading {
            let cast = &self.req.constraints.cast;
            if let Some(cue) = cast_cue(&line, cast, &mut self.speakers) {
                self.rewrite_line(&cue)?;
            }
            is_cue = parse_cue(&line).is_some();
        }
        let forced = match self.forced_text(is_cue) {
            Some(f) => f,
            None => return Ok(Flow::Stop),
        };
        self.mark_line_start();
        if !forced.is_empty() {
            self.stepper.push(&self.tok.encode(&forced)?);
            self.text.push_str(&forced);
            if forced.ends_with('\n') {
                self.mark_line_start();
            }
        }
        Ok(Flow::Continue)
    }

    /// What benjamin writes next itself (often nothing); `None` when the draft is long
    /// enough and holds what it must.
    fn forced_text(&mut self, after_cue: bool) -> Option<String> {
        let all_in = self.prop_pending.is_none() && self.line_pending.is_none();
        if after_cue && self.scene >= self.line_scene {
            if let Some(line) = self.line_pending.take() {
                return Some(format!("{}\n\n", line.trim()));
            }
        }
        if !self.text.ends_with("\n\n") {
            return Some(String::new());
        }
        let after_heading = self
            .text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| parse_heading(l).is_some());
        if after_heading && self.scene >= self.prop_scene {
            if let Some(prop) = self.prop_pending.take() {
                self.after_forced_word = true;
                return Some(prop_opening(&prop));
            }
        }
        let parsed = fountain::parse(&self.text);
        if parsed.estimated_seconds >= self.req.target_seconds && all_in {
            return None;
        }
        // A scene that has run its share of the film gives way to the next one.
        let scene_seconds = parsed.scenes.last().map_or(0.0, |s| s.estimated_seconds);
        if scene_seconds >= (self.req.target_seconds / SCENES_PER_FILM).max(20.0) {
            let opening = if self.rng.random_bool(0.6) {
                "INT. "
            } else {
                "EXT. "
            };
            return Some(opening.to_string());
        }
        Some(String::new())
    }

    /// Takes back the line just written and writes `replacement` in its place.
    fn rewrite_line(&mut self, replacement: &str) -> Result<()> {
        self.stepper.truncate(self.line_start.token)?;
        self.text.truncate(self.line_start.byte);
        if !replacement.is_empty() {
            self.stepper.push(&self.tok.encode(replacement)?);
            self.text.push_str(replacement);
        }
        Ok(())
    }

    fn mark_line_start(&mut self) {
        self.line_start = LineStart {
            token: self.stepper.tokens().len(),
            byte: self.text.len(),
        };
    }

    fn finish(self) -> Result<String> {
        if self.prop_pending.is_some() || self.line_pending.is_some() {
            bail!(
                "the model could not fit the required {} into a screenplay within {} tokens; try another --seed or a longer film",
                if self.line_pending.is_some() { "line" } else { "prop" },
                self.req.max_tokens
            );
        }
        let written = self.tok.decode(&self.stepper.tokens()[self.prime_len..])?;
        Ok(format!("{}{written}", self.title_page))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prop_openings_read_naturally() {
        assert_eq!(prop_opening("revolver"), "The revolver");
        assert_eq!(prop_opening("a red umbrella"), "A red umbrella");
    }

    #[test]
    fn cues_stay_in_the_cast_and_take_turns() {
        let cast: Vec<String> = ["ROSA", "DUKE"].map(String::from).to_vec();
        let mut speakers = Vec::new();
        assert_eq!(cast_cue("ROSA", &cast, &mut speakers), None);
        assert_eq!(
            cast_cue("ROSA (V.O.)", &cast, &mut speakers).as_deref(),
            Some("DUKE (V.O.)\n")
        );
        assert_eq!(
            cast_cue("BARTENDER", &cast, &mut speakers).as_deref(),
            Some("ROSA\n")
        );
        assert_eq!(cast_cue("The rain stops.", &cast, &mut speakers), None);
        assert_eq!(speakers, ["ROSA", "DUKE", "ROSA"]);
    }
}
