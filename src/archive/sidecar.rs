//! Text that travels next to a source: a description (`clip.txt` or `clip.json`), subtitles
//! (`clip.srt`, `clip.vtt`), licence and attribution.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Everything the sidecars of one source say.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtitles: Vec<Subtitle>,
    /// The sidecar files read, so a change to one makes the source re-ingest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subtitle {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// The JSON sidecar's fields (both spellings of licence; a few names for the credit).
#[derive(Debug, Default, Deserialize)]
struct JsonSidecar {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default, alias = "license")]
    licence: Option<String>,
    #[serde(default, alias = "author", alias = "credit")]
    attribution: Option<String>,
}

impl Sidecar {
    /// All the text a shot can be matched on, subtitles between `start` and `end` included.
    pub fn text_for(&self, start: f64, end: f64) -> String {
        let mut parts: Vec<&str> = Vec::new();
        for s in [&self.title, &self.description] {
            if !s.is_empty() {
                parts.push(s);
            }
        }
        parts.extend(self.tags.iter().map(String::as_str));
        parts.extend(
            self.subtitles
                .iter()
                .filter(|s| s.end > start && s.start < end)
                .map(|s| s.text.as_str()),
        );
        parts.join(". ")
    }
}

/// The sidecar files a source may have: `clip.json` or `clip.mp4.json`, and so on.
fn candidates(source: &Path, ext: &str) -> [PathBuf; 2] {
    let mut long = source.as_os_str().to_owned();
    long.push(format!(".{ext}"));
    [source.with_extension(ext), PathBuf::from(long)]
}

/// The sidecar files that exist next to `source` now, in the order [`read`] reads them.
pub fn existing(source: &Path) -> Vec<PathBuf> {
    ["json", "txt", "srt", "vtt"]
        .iter()
        .flat_map(|ext| candidates(source, ext))
        .filter(|p| p.is_file() && p != source)
        .collect()
}

/// Reads whatever sidecars sit next to `source`. A sidecar that cannot be parsed is an error
/// naming it: better than crediting footage wrongly.
pub fn read(source: &Path) -> Result<Sidecar> {
    let mut out = Sidecar::default();
    for path in candidates(source, "json") {
        if path.is_file() && path != source {
            let text = read_text(&path)?;
            let j: JsonSidecar = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a valid description sidecar (JSON with title, description, tags, licence, attribution)",
                    path.display()
                )
            })?;
            out.title = j.title;
            out.description = j.description;
            out.tags = j.tags;
            out.licence = j.licence.filter(|s| !s.trim().is_empty());
            out.attribution = j.attribution.filter(|s| !s.trim().is_empty());
            out.files.push(path);
        }
    }
    for path in candidates(source, "txt") {
        if path.is_file() && path != source {
            let text = read_text(&path)?;
            let mut body = Vec::new();
            for line in text.lines() {
                let lower = line.to_ascii_lowercase();
                let field = |key: &str| -> Option<String> {
                    lower
                        .starts_with(key)
                        .then(|| line[key.len()..].trim().to_string())
                };
                if let Some(v) = field("licence:").or_else(|| field("license:")) {
                    out.licence.get_or_insert(v);
                } else if let Some(v) = field("attribution:").or_else(|| field("credit:")) {
                    out.attribution.get_or_insert(v);
                } else if let Some(v) = field("title:") {
                    if out.title.is_empty() {
                        out.title = v;
                    }
                } else if !line.trim().is_empty() {
                    body.push(line.trim());
                }
            }
            if out.description.is_empty() {
                out.description = body.join(" ");
            }
            out.files.push(path);
        }
    }
    for ext in ["srt", "vtt"] {
        for path in candidates(source, ext) {
            if path.is_file() && path != source {
                out.subtitles.extend(parse_subtitles(&read_text(&path)?));
                out.files.push(path);
            }
        }
    }
    out.subtitles.sort_by(|a, b| a.start.total_cmp(&b.start));
    Ok(out)
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text; save it as UTF-8", path.display()))
}

/// `00:01:02,500` or `01:02.500` → seconds.
fn parse_time(text: &str) -> Option<f64> {
    let text = text.trim().replace(',', ".");
    let parts: Vec<&str> = text.split(':').collect();
    let (h, m, s) = match parts.as_slice() {
        [h, m, s] => (h.parse::<f64>().ok()?, m.parse::<f64>().ok()?, s),
        [m, s] => (0.0, m.parse::<f64>().ok()?, s),
        _ => return None,
    };
    Some(h * 3600.0 + m * 60.0 + s.parse::<f64>().ok()?)
}

/// Cues of SubRip or WebVTT text (both have `start --> end` lines followed by text).
pub fn parse_subtitles(text: &str) -> Vec<Subtitle> {
    let mut cues = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((a, b)) = line.split_once("-->") else {
            continue;
        };
        // WebVTT may put settings after the end time.
        let b = b.split_whitespace().next().unwrap_or("");
        let (Some(start), Some(end)) = (parse_time(a), parse_time(b)) else {
            continue;
        };
        let mut words = Vec::new();
        while let Some(next) = lines.peek() {
            if next.trim().is_empty() {
                break;
            }
            words.push(strip_tags(next.trim()));
            lines.next();
        }
        if !words.is_empty() {
            cues.push(Subtitle {
                start,
                end,
                text: words.join(" "),
            });
        }
    }
    cues
}

/// Drops `<i>`-style markup from a cue.
fn strip_tags(text: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srt_and_vtt_cues_parse() {
        let srt = "1\n00:00:01,000 --> 00:00:02,500\nHello <i>there</i>\nfriend\n\n2\n00:00:03,000 --> 00:00:04,000\nBye\n";
        let cues = parse_subtitles(srt);
        assert_eq!(cues.len(), 2);
        assert_eq!(cues[0].text, "Hello there friend");
        assert!((cues[0].end - 2.5).abs() < 1e-9);
        let vtt = "WEBVTT\n\n00:01.000 --> 00:02.000 align:start\nRain on the glass\n";
        let cues = parse_subtitles(vtt);
        assert_eq!(cues[0].text, "Rain on the glass");
        assert!((cues[0].start - 1.0).abs() < 1e-9);
    }

    #[test]
    fn sidecars_give_licence_description_and_shot_text() {
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("clip.mp4");
        std::fs::write(&clip, b"").unwrap();
        std::fs::write(
            dir.path().join("clip.json"),
            r#"{"title": "Harbour", "license": "CC0", "author": "A. Person", "tags": ["night"]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("clip.txt"),
            "Licence: ignored\nFog over the docks.\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("clip.srt"),
            "1\n00:00:10,000 --> 00:00:12,000\nWho's there?\n",
        )
        .unwrap();
        let s = read(&clip).unwrap();
        assert_eq!(s.licence.as_deref(), Some("CC0"));
        assert_eq!(s.attribution.as_deref(), Some("A. Person"));
        assert_eq!(s.description, "Fog over the docks.");
        assert!(s.text_for(9.0, 11.0).contains("Who's there?"));
        assert!(!s.text_for(0.0, 5.0).contains("Who's there?"));
        assert_eq!(s.files.len(), 3);
    }

    #[test]
    fn a_broken_json_sidecar_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("clip.mp4");
        std::fs::write(dir.path().join("clip.json"), "{ nope").unwrap();
        let err = read(&clip).unwrap_err().to_string();
        assert!(err.contains("clip.json"), "{err}");
    }
}
