//! From a model's raw draft to a screenplay every later stage can rely on: what to ask the
//! model for, the sampling with progress, the repairs and the constraints' check.

use std::time::Instant;

use anyhow::{bail, Result};

use super::fountain::{self, Element, Scene, Screenplay};
use super::lm::draft::write_draft;
use super::lm::sample::{Constraints, DraftRequest};
use super::lm::ModelBundle;
use crate::film::FilmSettings;

pub fn constraints(s: &FilmSettings) -> Constraints {
    Constraints {
        title: s.title.clone(),
        line: s.line.clone(),
        prop: s.prop.clone(),
        cast: super::cast::choose(s.genre, super::cast::size_for(s.minutes), s.seed),
    }
}

/// Turns a raw draft into a screenplay every later stage can rely on: every scene has a
/// heading and something in it, no dialogue is empty, nothing runs on repeating itself, and
/// the constraints are there.
pub fn repair(draft: &str, c: &Constraints) -> Result<Screenplay> {
    // A draft cut off mid-element loses that element.
    let complete = match draft.rfind("\n\n") {
        Some(i) if !draft.ends_with("\n\n") => &draft[..i + 2],
        _ => draft,
    };
    let parsed = fountain::parse(complete);
    let mut seen: Vec<String> = Vec::new();
    let mut scenes: Vec<Scene> = Vec::new();
    let mut waiting: Vec<Element> = Vec::new();
    for mut scene in parsed.scenes {
        // A heading with no place ("INT." and a line break) goes; what follows it stays with
        // the scene before.
        let placeless = scene.heading.place.trim().is_empty();
        let mut kept: Vec<Element> = Vec::new();
        for mut e in rejoin_dialogue(scene.elements) {
            match &mut e {
                Element::Action { text } => *text = collapse_repeats(text),
                Element::Dialogue(d) => d.text = collapse_repeats(&d.text),
                _ => {}
            }
            let key = match &e {
                Element::Action { text } => text.trim().to_string(),
                Element::Dialogue(d) => d.text.trim().to_string(),
                Element::Transition { .. } | Element::Centered { .. } => String::new(),
            };
            let prop = c.prop.as_deref().map(|p| p.trim().to_lowercase());
            let required = c.line.as_deref().is_some_and(|l| key.contains(l.trim()))
                || prop.is_some_and(|p| !p.is_empty() && key.to_lowercase().contains(&p));
            if let Element::Dialogue(d) = &e {
                if d.text.trim().is_empty() {
                    continue;
                }
            }
            // Runaway repetition: a line of four words or more said or seen before.
            if !required && key.split_whitespace().count() >= 4 && seen.contains(&key) {
                continue;
            }
            if kept.last() == Some(&e) {
                continue;
            }
            seen.push(key);
            kept.push(e);
        }
        if placeless {
            // Before any scene with a place, it waits for the first one (it may hold the
            // required line or prop).
            match scenes.last_mut() {
                Some(previous) => previous.elements.extend(kept),
                None => waiting.extend(kept),
            }
        } else if kept
            .iter()
            .any(|e| matches!(e, Element::Action { .. } | Element::Dialogue(_)))
        {
            scene.elements = std::mem::take(&mut waiting);
            scene.elements.extend(kept);
            scenes.push(scene);
        }
    }
    if scenes.is_empty() {
        bail!("the model wrote no usable scene; try another --seed (or retrain the model)");
    }
    if !c.cast.is_empty() {
        keep_cues_in_cast(&mut scenes, &c.cast);
    }
    let mut screenplay = fountain::finish(c.title.clone(), scenes);
    screenplay.cast = c.cast.clone();
    check_constraints(&screenplay, c)?;
    Ok(screenplay)
}

/// Gives each line of a speaker outside the cast to a cast member ([`cast::remap`]) rather
/// than dropping it.
fn keep_cues_in_cast(scenes: &mut [Scene], cast: &[String]) {
    let mut speakers: Vec<String> = Vec::new();
    for e in scenes.iter_mut().flat_map(|s| s.elements.iter_mut()) {
        if let Element::Dialogue(d) = e {
            if !cast.contains(&d.character) {
                d.character = super::cast::remap(&d.character, cast, &speakers);
            }
            speakers.push(d.character.clone());
        }
    }
}

/// Runaway repetition inside a paragraph: a sentence said again right after itself goes.
fn collapse_repeats(text: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for sentence in text.split_inclusive(['.', '!', '?']) {
        if out
            .last()
            .is_some_and(|prev| prev.trim() == sentence.trim())
        {
            continue;
        }
        out.push(sentence);
    }
    out.concat()
}

/// A cue the model left stranded by a blank line ("SAM" / "" / "(softly)" / "Go.") reads as two
/// action paragraphs; joined again, it is the dialogue it was meant to be. A cue with nothing
/// after it is dropped.
fn rejoin_dialogue(elements: Vec<Element>) -> Vec<Element> {
    use super::fountain::{parse_cue, Dialogue};
    let mut out: Vec<Element> = Vec::new();
    let mut pending: Option<(String, Option<String>)> = None;
    for e in elements {
        if let Element::Action { text } = &e {
            let lone_cue = !text.contains('\n') && !text.trim_end().ends_with(['.', '!', '?']);
            if let Some((name, ext, _)) = parse_cue(text).filter(|_| lone_cue) {
                pending = Some((name, ext));
                continue;
            }
            if let Some((character, extension)) = pending.take() {
                let mut lines = text.lines();
                let first = lines.next().unwrap_or("").trim();
                let (parenthetical, rest): (Option<String>, Vec<&str>) =
                    if first.starts_with('(') && first.ends_with(')') {
                        (Some(first.to_string()), lines.collect())
                    } else {
                        (None, text.lines().collect())
                    };
                let spoken = rest.join(" ").trim().to_string();
                if !spoken.is_empty() {
                    out.push(Element::Dialogue(Dialogue {
                        character,
                        extension,
                        parenthetical,
                        text: spoken,
                        dual: false,
                    }));
                    continue;
                }
            }
        } else {
            pending = None;
        }
        out.push(e);
    }
    out
}

/// Fails unless the line is spoken verbatim by a character and the prop is in the action.
pub fn check_constraints(s: &Screenplay, c: &Constraints) -> Result<()> {
    let all = || s.scenes.iter().flat_map(|sc| sc.elements.iter());
    if let Some(line) = c.line.as_deref().filter(|l| !l.trim().is_empty()) {
        if !all().any(|e| matches!(e, Element::Dialogue(d) if d.text.contains(line.trim()))) {
            bail!(
                "the screenplay does not have a character say {:?}",
                line.trim()
            );
        }
    }
    if let Some(prop) = c.prop.as_deref().filter(|p| !p.trim().is_empty()) {
        let prop = prop.trim().to_lowercase();
        if !all()
            .any(|e| matches!(e, Element::Action { text } if text.to_lowercase().contains(&prop)))
        {
            bail!("the screenplay has no action line with the prop {prop:?}");
        }
    }
    Ok(())
}

/// What to ask the model for, for a film of these settings.
pub fn request(s: &FilmSettings) -> DraftRequest {
    DraftRequest {
        genre: s.genre,
        seed: s.seed,
        target_seconds: s.minutes * 60.0,
        constraints: constraints(s),
        sampling: s.sampling.clone(),
        // A page is roughly 1500 characters; leave room for the repairs.
        max_tokens: ((s.minutes * 1500.0 * 3.0) as usize).max(2000),
    }
}

/// How fast the model wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WriteStats {
    pub tokens: usize,
    pub seconds: f64,
    pub tokens_per_second: f64,
}

/// Samples a draft with progress and repairs it into a screenplay.
pub fn write_screenplay(
    bundle: &ModelBundle,
    req: &DraftRequest,
    deadline: Option<Instant>,
    progress: &crate::progress::Progress,
) -> Result<(Screenplay, WriteStats)> {
    let bar = progress.spinner("writing");
    let started = Instant::now();
    let mut tokens = 0;
    let draft = write_draft(bundle, req, deadline, |n| {
        tokens = n;
        if n % 25 == 0 {
            bar.set_message(format!(
                "writing the screenplay: {n} tokens, {:.0} tokens/s",
                n as f64 / started.elapsed().as_secs_f64()
            ));
        }
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let stats = WriteStats {
        tokens,
        seconds,
        tokens_per_second: tokens as f64 / seconds.max(1e-9),
    };
    Ok((repair(&draft, &req.constraints)?, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentence_repeated_back_to_back_is_said_once() {
        assert_eq!(
            collapse_repeats(
                "Anger. A patch. A between them. A between them. A between them. At last."
            ),
            "Anger. A patch. A between them. At last."
        );
        assert_eq!(collapse_repeats("No. No! No."), "No. No! No.");
    }

    /// A first scene whose heading the model left without a place must not take the
    /// required prop and line with it when it goes.
    #[test]
    fn a_placeless_first_scene_keeps_the_prop_and_line_for_the_next() {
        let draft = "Title: T\n\nINT.\n\nA brass key on the bar.\n\nVERA\nWhere were you at midnight?\n\nINT. PIER - NIGHT\n\nGulls.\n\n";
        let c = Constraints {
            title: "T".into(),
            line: Some("Where were you at midnight?".into()),
            prop: Some("brass key".into()),
            ..Default::default()
        };
        let s = repair(draft, &c).unwrap();
        assert_eq!(s.scenes.len(), 1);
        assert_eq!(s.scenes[0].heading.place, "PIER");
        assert_eq!(s.scenes[0].elements.len(), 3, "{:?}", s.scenes[0].elements);
    }

    #[test]
    fn stranded_cues_are_rejoined_to_their_lines_and_lone_ones_dropped() {
        let draft = "Title: T\n\nINT. BAR - NIGHT\n\nRain.\n\nCASH (V.O.)\n\n(filtered)\nIt's the one.\n\nMORT\n\nEXT. PIER - DAY\n\nGulls.\n\n";
        let s = repair(
            draft,
            &Constraints {
                title: "T".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let bar = &s.scenes[0].elements;
        assert_eq!(bar.len(), 2, "{bar:?}");
        assert!(
            matches!(&bar[1], Element::Dialogue(d) if d.character == "CASH" && d.parenthetical.as_deref() == Some("(filtered)") && d.text == "It's the one.")
        );
        assert_eq!(s.characters, vec!["CASH"]);
    }
}
