//! The cut, end to end: it makes its own media, cuts an edit list, and checks the film with FFmpeg.

mod common;

use std::path::Path;

use benjamin::cut::{cards, cut, mix, CutOptions, EditList};
use benjamin::media::audio::read_stereo;
use benjamin::media::ffmpeg::{self, format, media};
use benjamin::media::source::VideoSource;
use benjamin::progress::Progress;
use common::{edit_list, luma_stats, make_media};

fn seconds(value: i64, tb: ffmpeg::Rational) -> f64 {
    value as f64 * tb.numerator() as f64 / tb.denominator() as f64
}

/// Luma stats of the film's picture at frame `n` (24 fps).
fn frame_luma(film: &Path, n: usize) -> (f64, f64) {
    let mut src = VideoSource::open(film).unwrap();
    let mut stats = (0.0, 0.0);
    src.sample(n as f64 / 24.0, 1, 24.0, |f| {
        stats = luma_stats(f);
        Ok(())
    })
    .unwrap();
    stats
}

#[test]
fn cut_makes_a_whole_film_with_title_shots_credits_sound_and_subtitles() {
    let dir = tempfile::tempdir().unwrap();
    let media = make_media(dir.path());
    let edl = edit_list(&media);
    let out = dir.path().join("film.mp4");
    let opts = CutOptions::default();
    let result = cut(&edl, &out, &opts, &Progress::hidden()).unwrap();

    // The edit list's own length: title card + shots + credits.
    let credits = cards::credits_seconds(cards::credit_lines(&edl).len());
    let expected = opts.title_seconds + edl.story_seconds() + credits;

    let input = format::input(&out).unwrap();
    let video = input
        .streams()
        .best(media::Type::Video)
        .expect("a video stream");
    let audio = input
        .streams()
        .best(media::Type::Audio)
        .expect("an audio stream");
    let subs = input
        .streams()
        .best(media::Type::Subtitle)
        .expect("a subtitle stream");
    assert_eq!(video.parameters().id(), ffmpeg::codec::Id::H264);
    assert_eq!(audio.parameters().id(), ffmpeg::codec::Id::AAC);
    assert_eq!(subs.parameters().id(), ffmpeg::codec::Id::MOV_TEXT);
    let v = seconds(video.duration(), video.time_base());
    let a = seconds(audio.duration(), audio.time_base());
    assert!(
        (v - expected).abs() <= 1.0 / 24.0 + 1e-6,
        "video {v:.3} s, edit list {expected:.3} s"
    );
    assert!((a - v).abs() <= 0.040, "audio {a:.3} s vs video {v:.3} s");
    assert_eq!(video.frames() as usize, result.frames);

    // Title card (frame 48 of 96) and credits (their middle) carry visible text.
    let title_mid = frame_luma(&out, 48);
    let credits_mid = frame_luma(&out, result.frames - (credits * 12.0) as usize);
    assert!(title_mid.1 > 0.002, "title card looks black: {title_mid:?}");
    assert!(credits_mid.1 > 0.002, "credits look black: {credits_mid:?}");

    // Shot 1 spans the source's cut at 2.0 s: 12 dark frames then 12 bright ones, exactly.
    let title = 96;
    assert!(
        frame_luma(&out, title + 11).0 < 60.0,
        "frame before the cut should be dark"
    );
    assert!(
        frame_luma(&out, title + 12).0 > 120.0,
        "frame at the cut should be bright"
    );
    // Shot 2 holds the still (a blue gradient with a light disc), pillarboxed: dark bars at the sides.
    let (still_luma, _) = frame_luma(&out, title + 24 + 12);
    assert!(
        still_luma > 30.0 && still_luma < 140.0,
        "still frame luma {still_luma}"
    );

    // Sound normalised to -16 LUFS.
    let sound = read_stereo(&out).unwrap();
    let lufs = mix::loudness(&sound.samples).unwrap();
    assert!(
        (lufs - mix::TARGET_LUFS).abs() < 1.0,
        "loudness {lufs:.2} LUFS"
    );

    // Subtitles beside the film, shifted by the title card.
    let srt = std::fs::read_to_string(dir.path().join("film.srt")).unwrap();
    assert!(
        srt.contains("00:00:04,500 --> 00:00:05,500\nHello, tester."),
        "{srt}"
    );
    // The edit list for an editor: three clips on the video track.
    let otio: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("film.otio")).unwrap())
            .unwrap();
    let v1 = &otio["tracks"]["children"][0]["children"];
    let clips = v1
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["OTIO_SCHEMA"] == "Clip.1")
        .count();
    assert_eq!(clips, 3);
}

fn cut_error(edl: &EditList, dir: &Path) -> String {
    let out = dir.join("bad.mp4");
    let err = cut(edl, &out, &CutOptions::default(), &Progress::hidden()).unwrap_err();
    assert!(
        !out.exists(),
        "a failed cut must not leave {}",
        out.display()
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("bad"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "half-written files left: {leftovers:?}"
    );
    format!("{err:#}")
}

#[test]
fn bad_edit_lists_get_errors_that_name_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let media = make_media(dir.path());
    let good = edit_list(&media);

    let mut e = good.clone();
    e.shots[1].source = media.join("nowhere.mp4");
    let msg = cut_error(&e, dir.path());
    assert!(
        msg.contains("shot 2") && msg.contains("nowhere.mp4") && msg.contains("does not exist"),
        "{msg}"
    );

    let mut e = good.clone();
    e.shots[0].source = media.join("line.wav");
    let msg = cut_error(&e, dir.path());
    assert!(
        msg.contains("shot 1") && msg.contains("no video stream"),
        "{msg}"
    );

    let mut e = good.clone();
    e.shots[2].in_point = 3.5;
    e.shots[2].out_point = 3.0;
    let msg = cut_error(&e, dir.path());
    assert!(
        msg.contains("shot 3") && msg.contains("must come before out"),
        "{msg}"
    );

    let mut e = good.clone();
    e.shots[0].out_point = 9.0;
    let msg = cut_error(&e, dir.path());
    assert!(
        msg.contains("shot 1") && msg.contains("past the end"),
        "{msg}"
    );

    let mut e = good.clone();
    e.shots.clear();
    assert!(cut_error(&e, dir.path()).contains("no shots"));

    let corrupt = media.join("corrupt.mp4");
    std::fs::write(&corrupt, vec![0x5au8; 4096]).unwrap();
    let mut e = good.clone();
    e.shots[0].source = corrupt;
    let msg = cut_error(&e, dir.path());
    assert!(
        msg.contains("shot 1") && msg.contains("corrupt.mp4"),
        "{msg}"
    );

    let mut e = good.clone();
    e.audio[0].file = media.join("missing.wav");
    let msg = cut_error(&e, dir.path());
    assert!(
        msg.contains("audio track 1") && msg.contains("missing.wav"),
        "{msg}"
    );
}

#[test]
fn edit_list_files_are_checked_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edl.json");
    let mut json = serde_json::to_value(edit_list(Path::new("media"))).unwrap();
    json["genre"] = "western".into();
    std::fs::write(&path, json.to_string()).unwrap();
    let msg = format!("{:#}", EditList::load(&path).unwrap_err());
    assert!(msg.contains("edl.json") && msg.contains("western"), "{msg}");

    json["genre"] = "noir".into();
    std::fs::write(&path, json.to_string()).unwrap();
    let edl = EditList::load(&path).unwrap();
    assert_eq!(
        edl.shots[0].source,
        dir.path().join("media/clip.mp4"),
        "relative paths follow the edit list"
    );
}
