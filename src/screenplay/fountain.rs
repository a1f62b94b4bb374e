//! Fountain (https://fountain.io) in and out: a lenient parser into scenes, headings, action and
//! dialogue, a writer of canonical Fountain, and the repairs a generated draft needs.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Screenplay {
    pub title: String,
    pub scenes: Vec<Scene>,
    /// Speaking characters in order of first appearance.
    pub characters: Vec<String>,
    /// The cast named on the title page (`Cast: A, B`), decided before drafting.
    #[serde(default)]
    pub cast: Vec<String>,
    /// Screen time by the page-a-minute rule.
    pub estimated_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    pub number: usize,
    pub heading: Heading,
    pub elements: Vec<Element>,
    pub estimated_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heading {
    pub text: String,
    /// INT, EXT, INT/EXT or EST (empty for a forced heading without one).
    pub int_ext: String,
    pub place: String,
    /// DAY, NIGHT, DAWN, ... (empty when the heading names none).
    pub time: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Element {
    Action { text: String },
    Dialogue(Dialogue),
    Transition { text: String },
    Centered { text: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dialogue {
    pub character: String,
    /// (V.O.), (O.S.), (CONT'D), ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parenthetical: Option<String>,
    pub text: String,
    /// Spoken at the same time as the previous dialogue (Fountain's `^`).
    #[serde(default)]
    pub dual: bool,
}

/// Removes /* boneyard */ and [[notes]], which may span lines.
impl Scene {
    /// The characters who speak in the scene, in order of their first line.
    pub fn speakers(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for e in &self.elements {
            if let Element::Dialogue(d) = e {
                if !names.contains(&d.character.as_str()) {
                    names.push(&d.character);
                }
            }
        }
        names
    }
}

fn strip_hidden(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let next = [("/*", "*/"), ("[[", "]]")]
            .iter()
            .filter_map(|(o, c)| rest.find(o).map(|i| (i, *o, *c)))
            .min_by_key(|x| x.0);
        match next {
            Some((i, open, close)) => {
                out.push_str(&rest[..i]);
                rest = match rest[i + open.len()..].find(close) {
                    Some(j) => &rest[i + open.len() + j + close.len()..],
                    None => "",
                };
            }
            None => {
                out.push_str(rest);
                break;
            }
        }
    }
    out
}

const HEADING_PREFIXES: [&str; 8] = [
    "INT./EXT", "INT/EXT", "I/E", "INT", "EXT", "EST", "EXT./INT", "EXT/INT",
];

/// `Some(heading)` when `line` is a scene heading (standard or forced with a leading '.').
pub fn parse_heading(line: &str) -> Option<Heading> {
    let line = line.trim();
    let text = if let Some(forced) = line.strip_prefix('.') {
        if forced.starts_with('.') || forced.is_empty() {
            return None;
        }
        forced.trim()
    } else {
        let upper = line.to_uppercase();
        let prefix = HEADING_PREFIXES.iter().find(|p| {
            upper.starts_with(*p)
                && matches!(upper[p.len()..].chars().next(), Some('.') | Some(' '))
        })?;
        let _ = prefix;
        line
    };
    // Scene numbers: "INT. HOUSE - DAY #1A#".
    let text = match (text.rfind(" #"), text.ends_with('#')) {
        (Some(i), true) => text[..i].trim(),
        _ => text,
    };
    let upper = text.to_uppercase();
    let (int_ext, rest) = match HEADING_PREFIXES.iter().find(|p| {
        upper.starts_with(*p) && matches!(upper[p.len()..].chars().next(), Some('.') | Some(' '))
    }) {
        Some(p) => {
            let kind = match *p {
                "INT./EXT" | "INT/EXT" | "I/E" | "EXT./INT" | "EXT/INT" => "INT/EXT",
                other => other,
            };
            (
                kind.to_string(),
                text[p.len()..].trim_start_matches(['.', ' ']).trim(),
            )
        }
        None => (String::new(), text),
    };
    let (place, time) = match rest.rfind(" - ") {
        Some(i) => (rest[..i].trim(), rest[i + 3..].trim()),
        None => (rest, ""),
    };
    Some(Heading {
        text: text.to_string(),
        int_ext,
        place: place.to_string(),
        time: time.to_uppercase(),
    })
}

fn is_transition(line: &str) -> bool {
    let t = line.trim();
    let upper = t == t.to_uppercase() && t.chars().any(|c| c.is_alphabetic());
    (t.starts_with('>') && !t.ends_with('<'))
        || (upper && t.ends_with("TO:"))
        || (upper
            && matches!(
                t,
                "FADE IN:" | "FADE OUT." | "FADE OUT" | "FADE TO BLACK." | "THE END"
            ))
}

/// The name part of a character cue, when `line` is one ("SAM (V.O.) ^", "@McCLANE").
pub fn parse_cue(line: &str) -> Option<(String, Option<String>, bool)> {
    let t = line.trim();
    let (t, dual) = match t.strip_suffix('^') {
        Some(s) => (s.trim_end(), true),
        None => (t, false),
    };
    let (forced, t) = match t.strip_prefix('@') {
        Some(s) => (true, s),
        None => (false, t),
    };
    let (name, ext) = match t.find('(') {
        Some(i) => (t[..i].trim(), Some(t[i..].trim().to_string())),
        None => (t.trim(), None),
    };
    let ok = !name.is_empty()
        && name.chars().any(|c| c.is_alphabetic())
        && (forced || name == name.to_uppercase())
        && !name.ends_with(':')
        && name.len() <= 40
        && parse_heading(name).is_none();
    ok.then(|| (name.to_string(), ext, dual))
}

/// The lines under a cue, split at each parenthetical: "(beat)" mid-speech starts a new part.
fn dialogue_parts(lines: &[&str]) -> Vec<(Option<String>, String)> {
    let mut parts: Vec<(Option<String>, Vec<&str>)> = vec![(None, Vec::new())];
    for l in lines.iter().map(|l| l.trim()) {
        if l.starts_with('(') && l.ends_with(')') {
            parts.push((Some(l.to_string()), Vec::new()));
        } else {
            parts
                .last_mut()
                .unwrap()
                .1
                .push(l.trim_start_matches('~').trim());
        }
    }
    parts
        .into_iter()
        .filter(|(_, words)| !words.is_empty())
        .map(|(p, words)| (p, words.join(" ")))
        .collect()
}

/// Parses Fountain leniently: anything it cannot place becomes action.
pub fn parse(text: &str) -> Screenplay {
    let text = strip_hidden(&text.replace("\r\n", "\n"));
    let mut lines: Vec<&str> = text.lines().collect();
    let mut title = String::new();
    let mut cast: Vec<String> = Vec::new();
    // Title page: "Key: value" lines up to the first blank line.
    let first = lines.iter().position(|l| !l.trim().is_empty()).unwrap_or(0);
    if lines.get(first).is_some_and(|l| {
        l.contains(':')
            && !l.trim_end().ends_with(':')
            && !is_transition(l)
            && parse_heading(l).is_none()
    }) {
        let end = lines[first..]
            .iter()
            .position(|l| l.trim().is_empty())
            .map(|i| first + i)
            .unwrap_or(lines.len());
        for l in &lines[first..end] {
            if let Some(v) = l.strip_prefix("Title:") {
                title = v.trim().trim_matches('_').trim_matches('*').to_string();
            }
            if let Some(v) = l.strip_prefix("Cast:") {
                cast = v
                    .split(',')
                    .map(|n| n.trim().to_uppercase())
                    .filter(|n| !n.is_empty())
                    .collect();
            }
        }
        lines.drain(..end);
    }
    let mut scenes: Vec<Scene> = Vec::new();
    let mut pending: Vec<Element> = Vec::new();
    let push =
        |scenes: &mut Vec<Scene>, pending: &mut Vec<Element>, e: Element| match scenes.last_mut() {
            Some(s) => s.elements.push(e),
            None => pending.push(e),
        };
    for block in lines.split(|l| l.trim().is_empty()) {
        let block: Vec<&str> = block
            .iter()
            .map(|l| l.trim_end())
            .filter(|l| !l.trim().starts_with("==="))
            .collect();
        let block: Vec<&str> = block
            .into_iter()
            .filter(|l| !(l.starts_with('#') || (l.starts_with('=') && !l.starts_with("=="))))
            .collect();
        if block.is_empty() {
            continue;
        }
        let mut i = 0;
        while i < block.len() {
            let line = block[i];
            if let Some(h) = parse_heading(line) {
                let number = scenes.len() + 1;
                scenes.push(Scene {
                    number,
                    heading: h,
                    elements: Vec::new(),
                    estimated_seconds: 0.0,
                });
                i += 1;
                continue;
            }
            let t = line.trim();
            if t.starts_with('>') && t.ends_with('<') && t.len() >= 2 {
                push(
                    &mut scenes,
                    &mut pending,
                    Element::Centered {
                        text: t[1..t.len() - 1].trim().to_string(),
                    },
                );
                i += 1;
                continue;
            }
            if i == 0 && block.len() == 1 && is_transition(t) {
                push(
                    &mut scenes,
                    &mut pending,
                    Element::Transition {
                        text: t.trim_start_matches('>').trim().to_string(),
                    },
                );
                i += 1;
                continue;
            }
            if i == 0 && block.len() > 1 && !t.starts_with('!') {
                if let Some((character, extension, dual)) = parse_cue(t) {
                    for (k, (parenthetical, text)) in
                        dialogue_parts(&block[1..]).into_iter().enumerate()
                    {
                        let d = Dialogue {
                            character: character.clone(),
                            extension: extension.clone(),
                            parenthetical,
                            text,
                            dual: dual && k == 0,
                        };
                        push(&mut scenes, &mut pending, Element::Dialogue(d));
                    }
                    i = block.len();
                    continue;
                }
            }
            // Action: the rest of the block, up to a heading that was run into it.
            let end = block[i..]
                .iter()
                .position(|l| parse_heading(l).is_some())
                .map(|j| i + j)
                .unwrap_or(block.len());
            let text = block[i..end]
                .iter()
                .map(|l| l.strip_prefix('!').unwrap_or(l))
                .collect::<Vec<_>>()
                .join("\n");
            push(&mut scenes, &mut pending, Element::Action { text });
            i = end;
        }
    }
    if !pending.is_empty()
        && pending
            .iter()
            .any(|e| !matches!(e, Element::Transition { .. }))
    {
        let heading = Heading {
            text: String::new(),
            int_ext: String::new(),
            place: String::new(),
            time: String::new(),
        };
        scenes.insert(
            0,
            Scene {
                number: 0,
                heading,
                elements: pending,
                estimated_seconds: 0.0,
            },
        );
        for (i, s) in scenes.iter_mut().enumerate() {
            s.number = i + 1;
        }
    }
    let mut screenplay = finish(title, scenes);
    screenplay.cast = cast;
    screenplay
}

/// Fills in characters and timings.
pub fn finish(title: String, mut scenes: Vec<Scene>) -> Screenplay {
    let mut characters: Vec<String> = Vec::new();
    for (i, s) in scenes.iter_mut().enumerate() {
        s.number = i + 1;
        s.estimated_seconds = estimate_seconds(s);
        for name in s.speakers() {
            if !characters.iter().any(|c| c == name) {
                characters.push(name.to_string());
            }
        }
    }
    let estimated_seconds = scenes.iter().map(|s| s.estimated_seconds).sum();
    Screenplay {
        title,
        scenes,
        characters,
        cast: Vec::new(),
        estimated_seconds,
    }
}

fn wrapped_lines(text: &str, width: usize) -> usize {
    text.lines()
        .map(|l| l.chars().count().div_ceil(width).max(1))
        .sum()
}

/// The page-a-minute rule: a page is 55 lines; action wraps at 58 characters, dialogue at 35.
pub fn estimate_seconds(scene: &Scene) -> f64 {
    let mut lines = 2;
    for e in &scene.elements {
        lines += 1 + match e {
            Element::Action { text } => wrapped_lines(text, 58),
            Element::Dialogue(d) => {
                1 + d.parenthetical.is_some() as usize + wrapped_lines(&d.text, 35)
            }
            Element::Transition { .. } | Element::Centered { .. } => 1,
        };
    }
    lines as f64 * 60.0 / 55.0
}

/// The title-page key that names the cast.
pub const CAST_KEY: &str = "Cast";

/// The title-page line that names `cast`.
pub fn cast_line(cast: &[String]) -> String {
    format!("{CAST_KEY}: {}\n", cast.join(", "))
}

/// Canonical Fountain for a screenplay.
pub fn write(s: &Screenplay) -> String {
    let mut out = format!("Title: {}\nAuthor: benjamin\n", s.title);
    if !s.cast.is_empty() {
        out += &cast_line(&s.cast);
    }
    out.push('\n');
    for scene in &s.scenes {
        if !scene.heading.text.is_empty() {
            let h = &scene.heading.text;
            // Force headings the parser would not recognise by their prefix.
            let needs_dot = parse_heading(h).is_none_or(|p| p.int_ext.is_empty());
            out += &format!("{}{}\n\n", if needs_dot { "." } else { "" }, h);
        }
        for e in &scene.elements {
            match e {
                Element::Action { text } => {
                    // An action line that would read as something else is forced with '!'.
                    let forced = text.lines().next().is_some_and(|l| {
                        parse_cue(l).is_some() || is_transition(l) || parse_heading(l).is_some()
                    });
                    out += &format!("{}{}\n\n", if forced { "!" } else { "" }, text);
                }
                Element::Dialogue(d) => {
                    let ext = d
                        .extension
                        .as_deref()
                        .map(|e| format!(" {e}"))
                        .unwrap_or_default();
                    let force = if d.character == d.character.to_uppercase() {
                        ""
                    } else {
                        "@"
                    };
                    out += &format!(
                        "{force}{}{}{}\n",
                        d.character,
                        ext,
                        if d.dual { " ^" } else { "" }
                    );
                    if let Some(p) = &d.parenthetical {
                        out += &format!("{p}\n");
                    }
                    out += &format!("{}\n\n", d.text);
                }
                Element::Transition { text } => {
                    out += &if text.ends_with("TO:") {
                        format!("{text}\n\n")
                    } else {
                        format!("> {text}\n\n")
                    };
                }
                Element::Centered { text } => out += &format!("> {text} <\n\n"),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
