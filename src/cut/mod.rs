//! The cut: the last stage. It trims every shot frame-accurately from its source, fits it to
//! the frame, grades it in the genre's look, opens on a title card, ends on credits, mixes
//! and normalises the sound, and writes film.mp4 with film.srt and film.otio beside it.
//!
//! Entry points: [`cut`] for an edit list (`benjamin cut`), [`CutStage`] in the pipeline.

pub mod assemble;
pub mod budget;
pub mod cards;
pub mod cli;
pub mod export;
pub mod look;
pub mod mix;
pub mod stage;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::edl;
pub use crate::edl::EditList;
pub use stage::CutStage;

use crate::fsutil::{self, AtomicFile};
use crate::media::filter::VideoGraph;
use crate::media::mp4::{Mp4Options, Mp4Writer, TimedText};
use crate::media::source::VideoSource;
use crate::progress::Progress;
use crate::provenance::{Provenance, Signed};

/// How the cut encodes; the defaults suit a festival screener.
#[derive(Debug, Clone)]
pub struct CutOptions {
    pub title_seconds: f64,
    pub preset: String,
    pub crf: u32,
    /// What made the film, signed into it; by default what the edit list itself says.
    pub provenance: Option<Provenance>,
}

impl Default for CutOptions {
    fn default() -> Self {
        CutOptions {
            title_seconds: 4.0,
            preset: "veryfast".into(),
            crf: 20,
            provenance: None,
        }
    }
}

/// What a finished cut wrote and measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CutResult {
    pub film: PathBuf,
    pub subtitles: PathBuf,
    pub timeline: PathBuf,
    /// film.provenance.json: the record signed into the film.
    pub provenance: PathBuf,
    pub signed: Signed,
    pub frames: usize,
    pub seconds: f64,
    pub mix: mix::MixReport,
}

/// Paths of the three files a cut writes for `film` (film.mp4 -> film.srt, film.otio).
pub fn output_paths(film: &Path) -> (PathBuf, PathBuf) {
    (film.with_extension("srt"), film.with_extension("otio"))
}

/// Refuses an output that is a folder, is not an .mp4, or whose MP4, .srt or .otio would be
/// one of `inputs` (the edit list, a shot, a sound): a cut never overwrites what it reads.
pub fn check_output<'a>(out: &Path, inputs: impl IntoIterator<Item = &'a Path>) -> Result<()> {
    let text = out.as_os_str().to_string_lossy();
    if out.is_dir() || text.ends_with('/') || out.file_name().is_none() {
        bail!(
            "{} is a folder: give the MP4 file to write, such as {}",
            out.display(),
            out.join("film.mp4").display()
        );
    }
    let is_mp4 = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mp4"));
    if !is_mp4 {
        bail!(
            "{} is not an .mp4 name: the cut writes an MP4 (with .srt and .otio beside it)",
            out.display()
        );
    }
    // Compared by real location, so `./a.mp4` and `media/../a.mp4` are the same file.
    let real = |p: &Path| -> PathBuf {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        dir.join(p.file_name().unwrap_or_default())
    };
    let (srt, otio) = output_paths(out);
    let record = crate::provenance::record_path(out);
    let written = [real(out), real(&srt), real(&otio), real(&record)];
    for input in inputs {
        if let Some(w) = written.iter().find(|w| **w == real(input)) {
            bail!(
                "writing {} would overwrite {}, which this cut reads; choose another --out",
                w.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// Frames of each shot, rounded on the cumulative timeline so that lengths never drift.
fn shot_frames(edl: &EditList) -> Vec<usize> {
    let fps = edl.frame.fps as f64;
    let mut at = 0.0;
    let mut frames = Vec::with_capacity(edl.shots.len());
    for s in &edl.shots {
        let start = (at * fps).round() as usize;
        at += s.out_point - s.in_point;
        frames.push(((at * fps).round() as usize).saturating_sub(start).max(1));
    }
    frames
}

/// Cuts `edl` into `out` (an MP4), with `out`.srt and `out`.otio beside it. Everything is
/// checked before anything is written, and nothing appears under its final name until whole.
pub fn cut(
    edl: &EditList,
    out: &Path,
    opts: &CutOptions,
    progress: &Progress,
) -> Result<CutResult> {
    let media = edl.shots.iter().map(|s| s.source.as_path());
    check_output(out, media.chain(edl.audio.iter().map(|a| a.file.as_path())))?;
    let checked = edl.check()?;
    let frame = edl.frame;
    let fps = frame.fps as f64;
    let title_frames = (opts.title_seconds * fps).round() as usize;
    let offset = title_frames as f64 / fps;
    let frames_per_shot = shot_frames(edl);
    let story_frames: usize = frames_per_shot.iter().sum();
    let credits = cards::credit_lines(edl);
    let credit_frames = (cards::credits_seconds(credits.len()) * fps).round() as usize;
    let total_frames = title_frames + story_frames + credit_frames;
    let seconds = total_frames as f64 / fps;

    let work = tempfile::Builder::new()
        .prefix(".benjamin-cut")
        .tempdir()
        .context("cannot create a temporary folder")?;
    let mix_bar = progress.spinner("mixing sound");
    let samples = (seconds * crate::media::audio::MIX_RATE as f64).round() as usize;
    let (sound, mix_report) = mix::mix(&edl.audio, offset, samples)?;
    mix_bar.finish_and_clear();

    let cues = timed_cues(&edl.subtitles, offset, seconds);

    let (srt_path, otio_path) = output_paths(out);
    let record = match &opts.provenance {
        Some(p) => p.clone(),
        None => Provenance::for_edit_list(edl, None)?,
    };
    // Written unsigned beside the film, then signed into its place.
    let unsigned = AtomicFile::new(&out.with_extension("unsigned.mp4"))?;
    let mp4_opts = Mp4Options {
        width: frame.width,
        height: frame.height,
        fps: frame.fps,
        preset: opts.preset.clone(),
        crf: opts.crf,
    };
    let tags = record.mp4_tags();
    let mut writer =
        Mp4Writer::create_tagged(unsigned.path(), &mp4_opts, Some(sound), cues.clone(), &tags)?;
    let bar = progress.bar(total_frames as u64, "cutting", "frames");
    let fault = FaultInjection::from_env();
    let write = |writer: &mut Mp4Writer, picture: &mut ffmpeg_next::frame::Video| -> Result<()> {
        crate::progress::check_interrupted()?;
        writer
            .write_frame(picture)
            .with_context(|| format!("cannot write {}", out.display()))?;
        fault.after_frame(writer.frames());
        bar.inc(1);
        Ok(())
    };

    let title = cards::title_card(&edl.title, edl.genre, frame, offset, work.path())?;
    generate(&title, title_frames, |f| write(&mut writer, f))
        .context("cannot draw the title card")?;

    let fit = look::fit_to_frame(frame.width, frame.height);
    let grade = look::genre_look(edl.genre);
    for (i, (shot, &n)) in checked.iter().zip(&frames_per_shot).enumerate() {
        let name = format!("shot {} ({})", i + 1, shot.shot.source.display());
        let mut source = VideoSource::open(&shot.shot.source).with_context(|| name.clone())?;
        let mut graph: Option<VideoGraph> = None;
        let mut k = 0;
        source
            .sample(shot.shot.in_point, n, fps, |picture| {
                if graph.is_none() {
                    let spec = format!("{fit},{grade},format=yuv420p");
                    graph = Some(VideoGraph::new(
                        picture.width(),
                        picture.height(),
                        picture.format(),
                        ffmpeg_next::Rational(1, frame.fps as i32),
                        &spec,
                    )?);
                }
                let g = graph.as_mut().unwrap();
                g.push(picture, k)?;
                k += 1;
                while let Some(mut graded) = g.pull() {
                    write(&mut writer, &mut graded)?;
                }
                Ok(())
            })
            .with_context(|| name.clone())?;
    }

    let roll = cards::credits_roll(&credits, frame, credit_frames as f64 / fps, work.path())?;
    generate(&roll, credit_frames, |f| write(&mut writer, f)).context("cannot draw the credits")?;
    writer
        .finish()
        .with_context(|| format!("cannot finish {}", out.display()))?;
    bar.finish_and_clear();

    let timeline = export::otio(
        edl,
        &frames_per_shot,
        &mix_report.track_seconds,
        title_frames,
        credit_frames,
    );
    fsutil::write_atomic(&srt_path, export::srt(&cues).as_bytes())?;
    fsutil::write_atomic(
        &otio_path,
        serde_json::to_string_pretty(&timeline)?.as_bytes(),
    )?;
    let sign_bar = progress.spinner("signing");
    let mp4 = AtomicFile::new(out)?;
    let signed = crate::provenance::sign_mp4(unsigned.path(), mp4.path(), &record)?;
    drop(unsigned);
    sign_bar.finish_and_clear();
    if signed.new_identity {
        progress.info(format!(
            "made a signing key and certificate in {} (first use)",
            signed.signing_dir.display()
        ));
    }
    if signed.self_made {
        progress.info(format!(
            "warning: {} is signed with benjamin's self-made certificate: `benjamin verify` on this machine trusts it, validators elsewhere will not (README: Provenance)",
            out.display()
        ));
    }
    let record_path = crate::provenance::record_path(out);
    fsutil::write_atomic(&record_path, &serde_json::to_vec_pretty(&record)?)?;
    mp4.commit()?;
    Ok(CutResult {
        film: out.to_path_buf(),
        subtitles: srt_path,
        timeline: otio_path,
        provenance: record_path,
        signed,
        frames: total_frames,
        seconds,
        mix: mix_report,
    })
}

/// Subtitle cues in film time, in order and never overlapping: cues from several stages
/// arrive unsorted, and a subtitle track shows one cue at a time (the muxer also needs
/// strictly increasing times). A cue that would overlap the next is cut short.
fn timed_cues(cues: &[edl::Cue], offset: f64, seconds: f64) -> Vec<TimedText> {
    let mut sorted: Vec<&edl::Cue> = cues.iter().filter(|c| c.start + offset < seconds).collect();
    sorted.sort_by(|a, b| a.start.total_cmp(&b.start));
    let mut out: Vec<TimedText> = Vec::with_capacity(sorted.len());
    for c in sorted {
        let start = c.start + offset;
        if let Some(prev) = out.last_mut() {
            if start < prev.start + 0.001 {
                // Same moment: show both texts together.
                prev.text = format!("{}\n{}", prev.text, c.text);
                prev.end = prev.end.max((c.end + offset).min(seconds));
                continue;
            }
            prev.end = prev.end.min(start);
        }
        out.push(TimedText {
            start,
            end: (c.end + offset).min(seconds),
            text: c.text.clone(),
        });
    }
    out
}

/// Pulls exactly `count` frames from a generator graph (title card, credits).
fn generate(
    spec: &str,
    count: usize,
    mut emit: impl FnMut(&mut ffmpeg_next::frame::Video) -> Result<()>,
) -> Result<()> {
    let mut graph = VideoGraph::generator(spec)?;
    for _ in 0..count {
        let mut f = graph.pull().context("the card generator stopped early")?;
        emit(&mut f)?;
    }
    Ok(())
}

/// Test hook: `BENJAMIN_FAULT_ABORT_AFTER_FRAMES=N` kills the process hard after N frames,
/// the way a power cut or `kill -9` would, so tests can check what a killed cut leaves behind.
struct FaultInjection(Option<i64>);

impl FaultInjection {
    fn from_env() -> Self {
        FaultInjection(
            std::env::var("BENJAMIN_FAULT_ABORT_AFTER_FRAMES")
                .ok()
                .and_then(|v| v.parse().ok()),
        )
    }

    fn after_frame(&self, frames: i64) {
        if self.0 == Some(frames) {
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(start: f64, end: f64, text: &str) -> edl::Cue {
        edl::Cue {
            start,
            end,
            text: text.into(),
            speaker: None,
        }
    }

    #[test]
    fn cues_from_several_stages_are_sorted_and_never_overlap() {
        let cues = [
            cue(5.0, 7.0, "c"),
            cue(1.0, 3.0, "a"),
            cue(2.0, 4.0, "b"),
            cue(2.0, 2.5, "b2"),
            cue(99.0, 100.0, "late"),
        ];
        let t = timed_cues(&cues, 4.0, 20.0);
        let texts: Vec<&str> = t.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["a", "b\nb2", "c"]);
        assert!(t
            .windows(2)
            .all(|w| w[0].end <= w[1].start && w[0].start < w[1].start));
        assert_eq!((t[0].start, t[0].end), (5.0, 6.0));
    }
}
