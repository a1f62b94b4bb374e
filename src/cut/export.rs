//! What the cut writes beside the film for people: SubRip subtitles and an OpenTimelineIO
//! timeline that an editor (DaVinci Resolve, Kdenlive, OTIO's own viewer) can open.

use serde_json::{json, Value};

use crate::edl::{AudioRole, EditList};
use crate::media::mp4::TimedText;

fn srt_time(seconds: f64) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02},{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// SubRip text of the cues (film time).
pub fn srt(cues: &[TimedText]) -> String {
    let mut out = String::new();
    for (i, cue) in cues.iter().enumerate() {
        out += &format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            srt_time(cue.start),
            srt_time(cue.end),
            cue.text.trim()
        );
    }
    out
}

fn rational(value: f64, rate: f64) -> Value {
    json!({"OTIO_SCHEMA": "RationalTime.1", "rate": rate, "value": value})
}

fn range(start: f64, duration: f64, rate: f64) -> Value {
    json!({"OTIO_SCHEMA": "TimeRange.1", "start_time": rational(start, rate), "duration": rational(duration, rate)})
}

fn gap(frames: f64, rate: f64) -> Value {
    json!({"OTIO_SCHEMA": "Gap.1", "name": "", "source_range": range(0.0, frames, rate), "effects": [], "markers": [], "metadata": {}})
}

fn clip(name: &str, url: &str, start: f64, frames: f64, rate: f64, metadata: Value) -> Value {
    json!({
        "OTIO_SCHEMA": "Clip.1",
        "name": name,
        "source_range": range(start, frames, rate),
        "media_reference": {"OTIO_SCHEMA": "ExternalReference.1", "target_url": url, "available_range": null, "metadata": {}},
        "effects": [], "markers": [], "metadata": metadata
    })
}

fn track(name: &str, kind: &str, children: Vec<Value>) -> Value {
    json!({"OTIO_SCHEMA": "Track.1", "name": name, "kind": kind, "children": children, "source_range": null, "effects": [], "markers": [], "metadata": {}})
}

fn url(path: &std::path::Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!("file://{}", abs.display())
}

/// The timeline as OpenTimelineIO JSON: the title card and credits as gaps, the shots as
/// clips on V1, dialogue and music on their own tracks, at the film's frame rate.
pub fn otio(
    edl: &EditList,
    shot_frames: &[usize],
    audio_seconds: &[f64],
    title_frames: usize,
    credit_frames: usize,
) -> Value {
    let rate = edl.frame.fps as f64;
    let mut video = vec![gap(title_frames as f64, rate)];
    for (i, (shot, &frames)) in edl.shots.iter().zip(shot_frames).enumerate() {
        let name = format!("shot {} (scene {})", i + 1, shot.scene);
        let meta = json!({"benjamin": {"licence": shot.licence, "attribution": shot.attribution, "scene": shot.scene}});
        video.push(clip(
            &name,
            &url(&shot.source),
            (shot.in_point * rate).round(),
            frames as f64,
            rate,
            meta,
        ));
    }
    video.push(gap(credit_frames as f64, rate));
    let mut tracks = vec![track("V1", "Video", video)];
    for role in [AudioRole::Dialogue, AudioRole::Music] {
        let mut items = Vec::new();
        let mut cursor = 0.0;
        let mut entries: Vec<_> = edl
            .audio
            .iter()
            .zip(audio_seconds)
            .filter(|(a, _)| a.role == role)
            .collect();
        entries.sort_by(|a, b| a.0.start.total_cmp(&b.0.start));
        for (a, &seconds) in entries {
            let at = title_frames as f64 + (a.start * rate).round();
            if at > cursor {
                items.push(gap(at - cursor, rate));
                cursor = at;
            }
            let frames = (seconds * rate).round().max(1.0);
            let name = a
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            items.push(clip(
                &name,
                &url(&a.file),
                0.0,
                frames,
                rate,
                json!({"benjamin": {"gain_db": a.gain_db}}),
            ));
            cursor += frames;
        }
        let name = if role == AudioRole::Dialogue {
            "Dialogue"
        } else {
            "Music"
        };
        tracks.push(track(name, "Audio", items));
    }
    json!({
        "OTIO_SCHEMA": "Timeline.1",
        "name": edl.title,
        "global_start_time": null,
        "metadata": {"benjamin": {"genre": edl.genre.name(), "version": env!("CARGO_PKG_VERSION")}},
        "tracks": {"OTIO_SCHEMA": "Stack.1", "name": "tracks", "children": tracks, "source_range": null, "effects": [], "markers": [], "metadata": {}}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srt_numbers_cues_and_formats_times() {
        let cues = vec![
            TimedText {
                start: 1.5,
                end: 3.25,
                text: "Who's there?".into(),
            },
            TimedText {
                start: 3661.001,
                end: 3662.0,
                text: "Nobody.".into(),
            },
        ];
        let text = srt(&cues);
        assert!(text.starts_with("1\n00:00:01,500 --> 00:00:03,250\nWho's there?\n\n2\n01:01:01,001 --> 01:01:02,000\nNobody.\n"), "{text}");
    }
}
