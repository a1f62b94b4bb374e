//! The title card and the end credits, drawn by FFmpeg's drawtext on a black frame.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::edl::EditList;
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

/// Filter graph of the title card: the title, then "a film by benjamin", faded in and out.
pub fn title_card(
    title: &str,
    genre: Genre,
    frame: Frame,
    seconds: f64,
    work: &Path,
) -> Result<String> {
    let title_file = text_file(work, "title.txt", title)?;
    let byline = text_file(work, "byline.txt", "a film by benjamin")?;
    let serif = font_option(genre != Genre::Scifi);
    let sans = font_option(false);
    let big = (frame.height / 11).max(12);
    let small = (frame.height / 26).max(8);
    let fade = (seconds / 5.0).min(0.8);
    Ok(format!(
        "color=c=black:s={w}x{h}:r={fps},format=yuv420p,\
         drawtext={serif}textfile={title_file}:expansion=none:fontcolor=white:fontsize={big}:x=(w-text_w)/2:y=(h-text_h)/2-{small},\
         drawtext={sans}textfile={byline}:expansion=none:fontcolor=0xbbbbbb:fontsize={small}:x=(w-text_w)/2:y=h/2+{small},\
         fade=t=in:st=0:d={fade},fade=t=out:st={out}:d={fade}",
        w = frame.width,
        h = frame.height,
        fps = frame.fps,
        out = (seconds - fade).max(0.0),
    ))
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
    lines.into_iter().flat_map(|l| wrap(&l, 64)).collect()
}

fn wrap(line: &str, width: usize) -> Vec<String> {
    if line.chars().count() <= width {
        return vec![line.to_string()];
    }
    let mut out = vec![String::new()];
    for word in line.split_whitespace() {
        let cur = out.last_mut().unwrap();
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            out.push(word.to_string());
        } else {
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
    }
    out
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
    use crate::cut::edl::Shot;

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
            credits: super::super::edl::Credits {
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
        assert!(wrap(&long, 64).iter().all(|l| l.chars().count() <= 64));
        assert_eq!(wrap(&long, 64).join(" "), long.trim());
    }
}
