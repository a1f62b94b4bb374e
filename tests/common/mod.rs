//! Small media the cut tests make for themselves.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use benjamin::archive::{AddOptions, Archive};
use benjamin::edl::{AudioRole, AudioTrack, Credits, Cue, EditList, Shot};
use benjamin::film::{Film, FilmSettings, Frame, Genre};
use benjamin::media::ffmpeg::frame;
use benjamin::media::synth::{write_still, write_tone, write_video, Segment};
use benjamin::progress::Progress;

/// A valid consent record for the drawn actor "Ana Lima" (no real person).
pub const CONSENT: &str = "name = \"Ana Lima\"\nsigned_by = \"Ana Lima\"\ndate = \"2024-05-01\"\nuses = [\"face-swap\"]\n";

pub const DARK: [u8; 3] = [20, 20, 20];
pub const BRIGHT: [u8; 3] = [220, 220, 220];

/// A 30 fps clip that cuts from dark to bright at frame 60 (2.0 s), a still, two tones.
pub fn make_media(dir: &Path) -> PathBuf {
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    write_video(
        &media.join("clip.mp4"),
        320,
        240,
        30,
        &[
            Segment {
                frames: 60,
                rgb: DARK,
            },
            Segment {
                frames: 60,
                rgb: BRIGHT,
            },
        ],
    )
    .unwrap();
    write_still(&media.join("still.png"), 200, 300, [60, 120, 200]).unwrap();
    write_tone(&media.join("line.wav"), 1.0, 440.0, 0.5, 22_050).unwrap();
    write_tone(&media.join("music.wav"), 4.0, 110.0, 0.3, 44_100).unwrap();
    media
}

/// A CC0 shot of `source` from `a` to `b` seconds.
pub fn shot(source: PathBuf, a: f64, b: f64, scene: u32) -> Shot {
    Shot {
        source,
        in_point: a,
        out_point: b,
        scene,
        licence: "CC0".into(),
        attribution: "benjamin tests".into(),
    }
}

/// Shot 1: the clip across its cut (1.5 s to 2.5 s); shot 2: the still for 1 s; shot 3: the clip's bright end.
pub fn edit_list(media: &Path) -> EditList {
    EditList {
        title: "Test: A \"Quoted\" Title, 100% Real".into(),
        genre: Genre::Romance,
        frame: Frame {
            width: 320,
            height: 180,
            fps: 24,
        },
        shots: vec![
            shot(media.join("clip.mp4"), 1.5, 2.5, 1),
            shot(media.join("still.png"), 0.0, 1.0, 1),
            shot(media.join("clip.mp4"), 3.0, 4.0, 2),
        ],
        audio: vec![
            AudioTrack {
                file: media.join("music.wav"),
                start: 0.0,
                gain_db: 0.0,
                role: AudioRole::Music,
            },
            AudioTrack {
                file: media.join("line.wav"),
                start: 0.5,
                gain_db: 0.0,
                role: AudioRole::Dialogue,
            },
        ],
        subtitles: vec![Cue {
            start: 0.5,
            end: 1.5,
            text: "Hello, tester.".into(),
            speaker: Some("ANA".into()),
        }],
        credits: Credits {
            voices: vec!["ANA - a 440 Hz tone".into()],
            music: vec!["a 110 Hz tone".into()],
            extra: vec![],
        },
    }
}

/// Mean luma (0-255) of a picture's Y plane, and the share of its pixels brighter than 128.
pub fn luma_stats(f: &frame::Video) -> (f64, f64) {
    let (w, h) = (f.width() as usize, f.height() as usize);
    let stride = f.stride(0);
    let data = f.data(0);
    let (mut sum, mut bright) = (0u64, 0usize);
    for row in 0..h {
        for &y in &data[row * stride..row * stride + w] {
            sum += y as u64;
            bright += (y > 128) as usize;
        }
    }
    (sum as f64 / (w * h) as f64, bright as f64 / (w * h) as f64)
}

/// Runs a benjamin command and fails the test with its stderr unless it succeeds.
pub fn run_ok(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().expect("the benjamin binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A film folder (small frame, the small GPT) whose shots stage has (as if) written its part
/// of the edit list; run it with no archive (`BENJAMIN_ARCHIVE` pointing nowhere) so the
/// shots stage is blocked and the hand-written fragment stands.
pub fn film_with_shots(dir: &Path) -> PathBuf {
    let media = make_media(dir);
    let film = dir.join("film");
    let mut settings = FilmSettings::new("Killed Halfway".into(), Genre::Noir, 3, 0.05);
    // The small GPT: the default adapters need the 93 MB base the setup fetches.
    settings.screenplay_model = Some("gpt".into());
    settings.frame = Frame {
        width: 320,
        height: 180,
        fps: 24,
    };
    Film::save(&film, &settings).unwrap();
    let edl = edit_list(&media);
    std::fs::create_dir_all(film.join("shots")).unwrap();
    let fragment =
        serde_json::json!({"shots": edl.shots, "audio": edl.audio, "subtitles": edl.subtitles});
    std::fs::write(film.join("shots/edl.json"), fragment.to_string()).unwrap();
    film
}

/// An archive of two small night and day videos and a still, text matched by keywords.
pub fn small_archive(dir: &Path) -> PathBuf {
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    let seg = |rgb| Segment { frames: 120, rgb };
    write_video(
        &media.join("alley.mp4"),
        160,
        120,
        24,
        &[seg([20, 20, 40]), seg([35, 25, 25])],
    )
    .unwrap();
    std::fs::write(
        media.join("alley.txt"),
        "Licence: CC0\nAttribution: Night Footage Co.\nrain in a dark alley at night\n",
    )
    .unwrap();
    write_video(
        &media.join("beach.mp4"),
        160,
        120,
        24,
        &[seg([230, 210, 150]), seg([200, 220, 240])],
    )
    .unwrap();
    std::fs::write(
        media.join("beach.txt"),
        "Licence: CC0\nsun and waves on a beach\n",
    )
    .unwrap();
    write_still(&media.join("sky.png"), 160, 90, [90, 140, 220]).unwrap();
    let dir = dir.join("archive");
    let mut a = Archive::open(&dir).unwrap();
    let opts = AddOptions {
        keywords_only: true,
        ..Default::default()
    };
    a.add(&[media], &opts, &Progress::hidden()).unwrap();
    dir
}

/// benjamin's data folder for the tests (calibration, genre checkpoints): one per test binary
/// under Cargo's scratch folder, so that a test run neither reads nor writes the user's.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "data-{}",
        std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default()
    ))
}

/// The benjamin binary, with the tests' data folder.
pub fn benjamin() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_benjamin"));
    cmd.env("XDG_DATA_HOME", data_dir());
    cmd
}

/// The built-in stages planned with their fallback speeds: no calibration, and nothing
/// written to the user's data folder.
pub fn pipeline() -> benjamin::pipeline::Pipeline {
    benjamin::pipeline::Pipeline::default().with_speeds(benjamin::pipeline::Speeds::default())
}
