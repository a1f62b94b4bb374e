//! The batch's report: `report.json` for scripts and `report.html`, a page that opens in a
//! browser with no server and no network. Per entry: title, genre, seed, state (and error),
//! length, time spent, the festival constraints kept, a contact sheet (a still every few
//! seconds), the poster frame, and links to film.mp4, the screenplay and the subtitles.

use std::path::{Path, PathBuf};

use anyhow::Result;
use image::RgbImage;
use serde::Serialize;

use super::{Batch, Entry, State};
use crate::film::Film;
use crate::fsutil::{self, AtomicFile};
use crate::vision::detect::for_each_frame;

/// Seconds between the stills of a contact sheet, and their size.
const SHEET_EVERY: f64 = 6.0;
const THUMB: (u32, u32) = (192, 108);
const SHEET_COLUMNS: u32 = 6;

#[derive(Debug, Serialize)]
pub struct EntryReport {
    pub number: usize,
    pub title: String,
    pub folder: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Length of the film, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub film_seconds: Option<f64>,
    /// Wall-clock seconds the last run of the entry took.
    pub time_spent: f64,
    /// Whether the screenplay holds the required line and prop (absent: none was asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_kept: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prop_kept: Option<bool>,
    /// Paths relative to the batch folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub film: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screenplay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitles: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_sheet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poster: Option<String>,
}

/// Writes `report.json` and `report.html` in the batch folder; returns their paths.
pub fn write(batch: &Batch) -> Result<(PathBuf, PathBuf)> {
    let entries: Vec<EntryReport> = batch
        .entries
        .iter()
        .map(|e| entry_report(batch, e))
        .collect::<Result<_>>()?;
    let json = batch.dir.join("report.json");
    let report = serde_json::json!({
        "batch": batch.file, "entries": entries,
        "done": entries.iter().filter(|e| e.state == State::Done).count(),
        "failed": entries.iter().filter(|e| e.state == State::Failed).count(),
    });
    fsutil::write_atomic(&json, &serde_json::to_vec_pretty(&report)?)?;
    let html = batch.dir.join("report.html");
    fsutil::write_atomic(&html, page(batch, &entries).as_bytes())?;
    Ok((json, html))
}

fn entry_report(batch: &Batch, entry: &Entry) -> Result<EntryReport> {
    let state = batch.state(entry);
    let folder = super::entry_folder(entry);
    let rel = |p: &Path| {
        p.is_file().then(|| {
            format!(
                "{folder}/{}",
                p.strip_prefix(&entry.dir).unwrap_or(p).display()
            )
        })
    };
    let film = Film::open(&entry.dir).ok();
    let mp4 = entry.dir.join("film.mp4");
    let done = state.as_ref().is_some_and(|s| s.state == State::Done) && mp4.is_file();
    let fountain = entry.dir.join("screenplay/screenplay.fountain");
    let script = std::fs::read_to_string(&fountain)
        .unwrap_or_default()
        .to_lowercase();
    let kept = |want: &Option<String>| {
        want.as_ref()
            .filter(|_| !script.is_empty())
            .map(|w| script.contains(&w.to_lowercase()))
    };
    let (sheet, poster) = if done {
        stills(&mp4, &entry.dir)?
    } else {
        (None, None)
    };
    let cut = crate::manifest::StageManifest::load(&entry.dir.join("cut"))
        .ok()
        .flatten();
    Ok(EntryReport {
        number: entry.number,
        title: super::title_of(&entry.args, entry.number),
        folder: folder.clone(),
        genre: entry.args.genre.map(|g| g.name().to_string()),
        seed: film.as_ref().map(|f| f.settings.seed),
        state: state.as_ref().map(|s| s.state).unwrap_or(State::Pending),
        error: state.as_ref().and_then(|s| s.error.clone()),
        film_seconds: cut
            .and_then(|m| m.notes["seconds"].as_f64())
            .filter(|_| done),
        time_spent: state.as_ref().map(|s| s.seconds).unwrap_or(0.0),
        line_kept: kept(&entry.args.line),
        prop_kept: kept(&entry.args.prop),
        film: if done { rel(&mp4) } else { None },
        screenplay: rel(&fountain),
        subtitles: if done {
            rel(&entry.dir.join("film.srt"))
        } else {
            None
        },
        contact_sheet: sheet.as_deref().and_then(rel),
        poster: poster.as_deref().and_then(rel),
    })
}

/// The contact sheet (a still every [`SHEET_EVERY`] seconds, in a grid) and the poster frame
/// (the still a third of the way in, full size), as PNGs in the entry's folder. Made once per
/// film: they are remade only when film.mp4 is newer.
fn stills(mp4: &Path, dir: &Path) -> Result<(Option<PathBuf>, Option<PathBuf>)> {
    let sheet_path = dir.join("contact-sheet.png");
    let poster_path = dir.join("poster.png");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&sheet_path) >= modified(mp4) && poster_path.is_file() {
        return Ok((Some(sheet_path), Some(poster_path)));
    }
    let info = crate::media::source::probe(mp4)?;
    let count = ((info.duration / SHEET_EVERY).floor() as usize).max(1);
    let poster_at = count / 3;
    let mut thumbs: Vec<RgbImage> = Vec::with_capacity(count);
    let mut poster = None;
    for_each_frame(
        mp4,
        SHEET_EVERY / 2.0,
        count,
        1.0 / SHEET_EVERY,
        |k, img| {
            if k == poster_at {
                poster = Some(img.clone());
            }
            let (w, h) = THUMB;
            thumbs.push(image::imageops::resize(
                img,
                w,
                h,
                image::imageops::FilterType::Triangle,
            ));
            Ok(())
        },
    )?;
    let (w, h) = THUMB;
    let rows = (thumbs.len() as u32).div_ceil(SHEET_COLUMNS).max(1);
    let mut sheet = RgbImage::from_pixel(w * SHEET_COLUMNS, h * rows, image::Rgb([16, 16, 16]));
    for (i, t) in thumbs.iter().enumerate() {
        let (c, r) = (i as u32 % SHEET_COLUMNS, i as u32 / SHEET_COLUMNS);
        image::imageops::replace(&mut sheet, t, (c * w) as i64, (r * h) as i64);
    }
    save_png(&sheet, &sheet_path)?;
    if let Some(p) = poster {
        save_png(&p, &poster_path)?;
    }
    Ok((
        Some(sheet_path),
        poster_path.is_file().then_some(poster_path),
    ))
}

fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let file = AtomicFile::new(path)?;
    img.save_with_format(file.path(), image::ImageFormat::Png)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    file.commit()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A link to a file of the batch folder (paths are slugs and fixed names, escaped anyway).
fn link(path: &Option<String>, label: &str) -> String {
    match path {
        Some(p) => format!("<a href=\"{}\">{label}</a>", escape(p)),
        None => String::new(),
    }
}

fn page(batch: &Batch, entries: &[EntryReport]) -> String {
    let done = entries.iter().filter(|e| e.state == State::Done).count();
    let mut html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>\
body{{font-family:sans-serif;background:#111;color:#eee;margin:2em}}a{{color:#9cf}}\
.entry{{border:1px solid #333;border-radius:6px;padding:1em;margin:1em 0;display:flex;gap:1.5em}}\
.poster{{width:320px}}.sheet{{max-width:100%}}.state{{font-weight:bold}}\
.done{{color:#7d7}}.failed{{color:#f77}}.running,.pending{{color:#fd7}}\
table{{border-collapse:collapse}}td{{padding:2px 10px 2px 0;vertical-align:top}}\
</style></head><body>\n<h1>{title}</h1>\n<p>{done} of {n} films done &middot; batch file {file}</p>\n",
        title = escape(&format!("benjamin batch: {}", batch.dir.display())),
        n = entries.len(),
        file = escape(&batch.file.display().to_string()),
    );
    for e in entries {
        let yes_no = |k: Option<bool>| match k {
            Some(true) => "kept",
            Some(false) => "missing",
            None => "none asked",
        };
        let state = serde_json::to_value(e.state).unwrap_or_default();
        let state = state.as_str().unwrap_or("");
        html += &format!(
            "<div class=\"entry\"><div>{poster}</div><div><h2>{n}. {title}</h2><table>\
<tr><td>state</td><td class=\"state {state}\">{state}{error}</td></tr>\
<tr><td>genre</td><td>{genre}</td></tr><tr><td>seed</td><td>{seed}</td></tr>\
<tr><td>length</td><td>{length}</td></tr><tr><td>time spent</td><td>{spent:.0} s</td></tr>\
<tr><td>line</td><td>{line}</td></tr><tr><td>prop</td><td>{prop}</td></tr>\
<tr><td>files</td><td>{film} {script} {subs}</td></tr></table>{sheet}</div></div>\n",
            poster = e
                .poster
                .as_ref()
                .map(|p| format!(
                    "<img class=\"poster\" src=\"{}\" alt=\"poster frame\">",
                    escape(p)
                ))
                .unwrap_or_default(),
            n = e.number,
            title = escape(&e.title),
            error = e
                .error
                .as_ref()
                .map(|x| format!(": {}", escape(x)))
                .unwrap_or_default(),
            genre = e.genre.as_deref().unwrap_or("?"),
            seed = e.seed.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
            length = e
                .film_seconds
                .map(|s| format!("{}:{:02}", s as u64 / 60, s as u64 % 60))
                .unwrap_or_else(|| "-".into()),
            spent = e.time_spent,
            line = yes_no(e.line_kept),
            prop = yes_no(e.prop_kept),
            film = link(&e.film, "film.mp4"),
            script = link(&e.screenplay, "screenplay"),
            subs = link(&e.subtitles, "subtitles"),
            sheet = e
                .contact_sheet
                .as_ref()
                .map(|p| format!(
                    "<p><img class=\"sheet\" src=\"{}\" alt=\"contact sheet\"></p>",
                    escape(p)
                ))
                .unwrap_or_default(),
        );
    }
    html + "</body></html>\n"
}
