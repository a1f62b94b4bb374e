//! The title card and the end credits, drawn by FFmpeg's drawtext on a black frame.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::edl::EditList;
use crate::film::{Frame, Genre};
use crate::media::escape_filter_value;

/// A font file: Debian's DejaVu when installed, else whatever fontconfig picks.
fn font(serif: bool) -> Option<PathBuf> {
    let names: &[&str] = if serif {
        &["DejaVuSerif.ttf", "DejaVuSans.ttf"]
    } else {
        &["DejaVuSans.ttf"]
    };
    names
        .iter()
        .map(|n| Path::new("/usr/share/fonts/truetype/dejavu").join(n))
        .find(|p| p.is_file())
}

fn font_option(serif: bool) -> String {
    match font(serif) {
        Some(f) => format!("fontfile={}:", escape_filter_value(&f.to_string_lossy())),
        None => String::new(),
    }
}

/// Text goes through a file so that no title can break the filter syntax.
fn text_file(dir: &Path, name: &str, text: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(escape_filter_value(&path.to_string_lossy()))
}

/// Lines the title card gives a title at most; a longer title is cut short with "…".
const TITLE_LINES: usize = 3;

/// A title laid out for a frame `width` pixels wide: its words wrapped into at most
/// [`TITLE_LINES`] lines (a title written over several lines is one text), at the largest
/// font size from `largest` down to `smallest` at which they fit.
fn title_lines(title: &str, width: u32, largest: u32, smallest: u32) -> (Vec<String>, u32) {
    let words: Vec<&str> = title.split_whitespace().collect();
    let mut size = largest;
    loop {
        // DejaVu's glyphs average a little over half the font size in width.
        let fits = ((width as f64 * 0.9) / (size as f64 * 0.6))
            .floor()
            .max(1.0) as usize;
        let lines = wrap(&words, fits);
        if lines.len() <= TITLE_LINES || size <= smallest {
            return (clip(lines, fits), size);
        }
        size = (size * 9 / 10).max(smallest);
    }
}

/// Words into lines of at most `fits` characters (a longer word is split).
fn wrap(words: &[&str], fits: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in words {
        let mut rest: Vec<char> = word.chars().collect();
        while !rest.is_empty() {
            let room = if line.is_empty() {
                fits
            } else {
                fits.saturating_sub(line.chars().count() + 1)
            };
            if rest.len() <= room {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.extend(rest.drain(..));
            } else if line.is_empty() {
                line.extend(rest.drain(..fits));
                lines.push(std::mem::take(&mut line));
            } else {
                lines.push(std::mem::take(&mut line));
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The first [`TITLE_LINES`] lines, the last ending in "…" when some were left out.
fn clip(mut lines: Vec<String>, fits: usize) -> Vec<String> {
    if lines.len() > TITLE_LINES {
        lines.truncate(TITLE_LINES);
        let last = &mut lines[TITLE_LINES - 1];
        let keep: String = last.chars().take(fits.saturating_sub(1)).collect();
        *last = format!("{}…", keep.trim_end());
    }
    lines
}

/// Filter graph of the title card: the title (wrapped and fitted to the frame), then "a film
/// by benjamin", faded in and out.
pub fn title_card(
    title: &str,
    genre: Genre,
    frame: Frame,
    seconds: f64,
    work: &Path,
) -> Result<String> {
    let small = (frame.height / 26).max(8);
    let (lines, size) = title_lines(title, frame.width, (frame.height / 11).max(12), small + 2);
    let serif = font_option(genre != Genre::Scifi);
    let sans = font_option(false);
    // Each line is its own drawtext, centred (FFmpeg 5.1's drawtext cannot centre lines).
    let step = size * 6 / 5;
    let top = frame.height as i64 / 2 - small as i64 - (step as i64 * lines.len() as i64) / 2;
    let mut graph = format!(
        "color=c=black:s={w}x{h}:r={fps},format=yuv420p,",
        w = frame.width,
        h = frame.height,
        fps = frame.fps
    );
    for (i, line) in lines.iter().enumerate() {
        let file = text_file(work, &format!("title-{i}.txt"), line)?;
        let y = top + (step * i as u32) as i64;
        graph += &format!(
            "drawtext={serif}textfile={file}:expansion=none:fontcolor=white:fontsize={size}:x=(w-text_w)/2:y={y},"
        );
    }
    let byline = text_file(work, "byline.txt", "a film by benjamin")?;
    let byline_y = top + (step * lines.len() as u32) as i64 + small as i64;
    let fade = (seconds / 5.0).min(0.8);
    graph += &format!(
        "drawtext={sans}textfile={byline}:expansion=none:fontcolor=0xbbbbbb:fontsize={small}:x=(w-text_w)/2:y={byline_y},\
         fade=t=in:st=0:d={fade},fade=t=out:st={out}:d={fade}",
        out = (seconds - fade).max(0.0),
    );
    Ok(graph)
}

/// The credit lines: every source with its licence and attribution, the voices, the music.
pub fn credit_lines(edl: &EditList) -> Vec<String> {
    let mut lines = vec![
        edl.title.clone(),
        String::new(),
        "written and directed by benjamin".to_string(),
        String::new(),
    ];
    let mut sources: Vec<String> = Vec::new();
    for shot in &edl.shots {
        let name = shot
            .source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let line = format!(
            "{} - {} ({})",
            shot.attribution.trim(),
            shot.licence.trim(),
            name
        );
        if !sources.contains(&line) {
            sources.push(line);
        }
    }
    let mut section = |title: &str, items: &[String]| {
        if !items.is_empty() {
            lines.push(title.to_uppercase());
            lines.extend(items.iter().cloned());
            lines.push(String::new());
        }
    };
    section("Footage", &sources);
    section("Voices", &edl.credits.voices);
    section("Music", &edl.credits.music);
    section("With thanks", &edl.credits.extra);
    lines.push("Cut with FFmpeg".to_string());
    let wrapped = |l: String| match l.split_whitespace().collect::<Vec<_>>() {
        words if words.is_empty() => vec![String::new()],
        words => wrap(&words, 64),
    };
    lines.into_iter().flat_map(wrapped).collect()
}

/// How long the credits roll: long enough to read every line.
pub fn credits_seconds(lines: usize) -> f64 {
    (lines as f64 * 0.45).clamp(6.0, 60.0)
}

/// Filter graph of the credits, rolling up from the bottom to past the top over `seconds`.
pub fn credits_roll(lines: &[String], frame: Frame, seconds: f64, work: &Path) -> Result<String> {
    let file = text_file(work, "credits.txt", &lines.join("\n"))?;
    let sans = font_option(false);
    let size = (frame.height / 28).max(8);
    Ok(format!(
        "color=c=black:s={w}x{h}:r={fps},format=yuv420p,\
         drawtext={sans}textfile={file}:expansion=none:fontcolor=white:fontsize={size}:line_spacing={gap}:\
         x=(w-text_w)/2:y=h-(h+text_h)*t/{seconds:.3}",
        w = frame.width,
        h = frame.height,
        fps = frame.fps,
        gap = size / 2,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_multi_line_titles_are_wrapped_to_fit() {
        let (lines, size) = title_lines("Zone Out", 1280, 65, 29);
        assert_eq!((lines, size), (vec!["Zone Out".to_string()], 65));
        let long =
            "The Long Night Of The Brass Key And The Woman Who Never Came Back To The Harbour Bar";
        let (lines, size) = title_lines(&format!("{long}\nPart\tTwo"), 1280, 65, 29);
        assert!(
            lines.len() <= TITLE_LINES && size < 65,
            "{lines:?} at {size}"
        );
        let fits = ((1280.0 * 0.9) / (size as f64 * 0.6)).floor() as usize;
        assert!(lines
            .iter()
            .all(|l| l.chars().count() <= fits && !l.contains('\n')));
        let endless = "word ".repeat(400);
        let (lines, _) = title_lines(&endless, 320, 16, 8);
        assert_eq!(lines.len(), TITLE_LINES);
        assert!(lines[TITLE_LINES - 1].ends_with('…'));
        let (lines, _) = title_lines(&"x".repeat(300), 320, 16, 8);
        assert!(lines.len() == TITLE_LINES && lines[0].chars().count() > 1);
    }
    use crate::edl::Shot;

    fn shot(src: &str, attribution: &str) -> Shot {
        Shot {
            source: src.into(),
            in_point: 0.0,
            out_point: 1.0,
            scene: 1,
            licence: "CC0".into(),
            attribution: attribution.into(),
        }
    }

    #[test]
    fn credits_list_each_source_once_with_licence_voices_and_music() {
        let edl = EditList {
            title: "Rain".into(),
            genre: Genre::Noir,
            frame: Frame::default(),
            shots: vec![
                shot("a.mp4", "Prelinger Archives"),
                shot("a.mp4", "Prelinger Archives"),
                shot("b.png", "NASA"),
            ],
            audio: vec![],
            subtitles: vec![],
            credits: crate::edl::Credits {
                voices: vec!["SAM - espeak-ng".into()],
                music: vec!["Score - sf_GMbank".into()],
                extra: vec![],
            },
        };
        let lines = credit_lines(&edl);
        let text = lines.join("\n");
        assert_eq!(text.matches("Prelinger Archives - CC0 (a.mp4)").count(), 1);
        assert!(text.contains("NASA - CC0 (b.png)"));
        assert!(text.contains("written and directed by benjamin"));
        assert!(text.contains("SAM - espeak-ng") && text.contains("Score - sf_GMbank"));
    }

    #[test]
    fn long_credit_lines_are_wrapped() {
        let long = "word ".repeat(40);
        let words: Vec<&str> = long.split_whitespace().collect();
        assert!(wrap(&words, 64).iter().all(|l| l.chars().count() <= 64));
        assert_eq!(wrap(&words, 64).join(" "), long.trim());
    }
}
