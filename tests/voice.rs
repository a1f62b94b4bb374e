//! The voice stage with the real espeak-ng: deterministic, distinct voices, delivery that
//! follows parentheticals, and timings that match the WAV files.

mod common;

use std::collections::BTreeMap;

use benjamin::film::{Film, FilmSettings, Genre};
use benjamin::pipeline::{Pipeline, Stage, StageId};
use benjamin::progress::Progress;
use benjamin::screenplay::fountain::parse;
use benjamin::voice::cast::{self, Voice};
use benjamin::voice::engine::{Espeak, SpeechEngine};
use benjamin::voice::prosody::{delivery, Delivery};
use benjamin::voice::{voice_screenplay, DialogueTimings, VoiceStage};

fn rms(s: &[i16]) -> f64 {
    (s.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

/// Mean fundamental frequency of the voiced 40 ms frames, by autocorrelation (60-400 Hz).
fn mean_pitch(s: &[i16], rate: u32) -> f64 {
    let frame = (rate as f64 * 0.04) as usize;
    let (lo, hi) = ((rate / 400) as usize, (rate / 60) as usize);
    let loud = rms(s) * 0.5;
    let mut found = Vec::new();
    for chunk in s
        .chunks(frame)
        .filter(|c| c.len() == frame && rms(c) > loud)
    {
        let x: Vec<f64> = chunk.iter().map(|&v| v as f64).collect();
        let energy: f64 = x.iter().map(|v| v * v).sum();
        let (lag, corr) = (lo..hi.min(frame - 1))
            .map(|lag| {
                (
                    lag,
                    x[..frame - lag]
                        .iter()
                        .zip(&x[lag..])
                        .map(|(a, b)| a * b)
                        .sum::<f64>(),
                )
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        if corr > 0.3 * energy {
            found.push(rate as f64 / lag as f64);
        }
    }
    found.iter().sum::<f64>() / found.len().max(1) as f64
}

fn voice(variant: &str, pitch: u32) -> Voice {
    Voice {
        language: "en-us".into(),
        variant: variant.into(),
        pitch,
        range: 50,
        rate: 170,
    }
}

#[test]
fn two_voices_differ_in_pitch() {
    let mut engine = Espeak::new().unwrap();
    let line = "I never liked the rain in this town.";
    let a = engine
        .speak(line, &voice("m3", 40), &Delivery::default())
        .unwrap();
    assert!(!a.is_empty());
    let low = mean_pitch(&a, engine.sample_rate());
    let high = mean_pitch(
        &engine
            .speak(line, &voice("f2", 75), &Delivery::default())
            .unwrap(),
        engine.sample_rate(),
    );
    assert!(high > low * 1.3, "mean pitch {low:.0} Hz vs {high:.0} Hz");
}

#[test]
fn whispering_and_shouting_move_level_and_pace_the_right_way() {
    let mut engine = Espeak::new().unwrap();
    let line = "Get out of here before they find you.";
    let v = voice("m1", 50);
    let plain = engine.speak(line, &v, &delivery(None, line)).unwrap();
    let whisper = engine
        .speak(line, &v, &delivery(Some("(whispering)"), line))
        .unwrap();
    let shout = engine
        .speak(line, &v, &delivery(Some("(shouting)"), line))
        .unwrap();
    assert!(
        rms(&whisper) < rms(&plain),
        "whisper {} vs plain {}",
        rms(&whisper),
        rms(&plain)
    );
    assert!(
        rms(&shout) > rms(&plain),
        "shout {} vs plain {}",
        rms(&shout),
        rms(&plain)
    );
    assert!(whisper.len() > plain.len(), "a whisper is slower");
    assert!(shout.len() < plain.len(), "a shout is faster");
}

const SCRIPT: &str = "Title: Rain\n\nINT. BAR - NIGHT\n\nRain on the glass.\n\nSAM\n(whispering)\nYou came back... why?\n\nVERA\n(shouting)\nBecause of the $500!\n\nSAM\n[sighs]\n\nEXT. PIER - DAWN\n\nGulls.\n\nVERA\n(beat)\nIt's 3:15, Dr. Cole.\n\n";

fn check_timings(t: &DialogueTimings, dir: &std::path::Path) {
    assert_eq!(t.lines.len(), 3, "the line with nothing to say is skipped");
    for pair in t.lines.windows(2) {
        assert!(pair[0].end <= pair[1].start, "lines overlap: {pair:?}");
    }
    for l in &t.lines {
        let reader = hound::WavReader::open(dir.join(&l.file)).unwrap();
        let spec = reader.spec();
        assert!(spec.sample_rate >= 22_050);
        let samples: Vec<i16> = reader.into_samples().map(|s| s.unwrap()).collect();
        let secs = samples.len() as f64 / spec.sample_rate as f64;
        assert!(
            ((l.end - l.start) - secs).abs() < 1e-6,
            "timing {} vs WAV {secs}",
            l.end - l.start
        );
        let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(
            peak > 20_000 && peak < i16::MAX as u16,
            "peak-normalised, never clipped: {peak}"
        );
        let scene = t.scenes.iter().find(|s| s.number == l.scene).unwrap();
        assert!(l.start >= scene.start && l.end <= scene.start + scene.duration);
    }
    for pair in t.scenes.windows(2) {
        assert!((pair[0].start + pair[0].duration - pair[1].start).abs() < 1e-9);
    }
    assert_eq!(t.lines[2].spoken, "It's three fifteen, Doctor Cole.");
}

#[test]
fn timings_are_monotone_and_match_the_wav_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = parse(SCRIPT);
    let cast = cast::cast(&s, &BTreeMap::new());
    let mut engine = Espeak::new().unwrap();
    let t = voice_screenplay(&s, &cast, &mut engine, dir.path(), &Progress::hidden()).unwrap();
    check_timings(&t, dir.path());
}

/// A film folder holding only a screenplay.json.
fn film_with_screenplay(dir: &std::path::Path) -> Film {
    let film = Film::save(dir, &FilmSettings::new("Rain".into(), Genre::Noir, 1, 0.05)).unwrap();
    std::fs::create_dir_all(film.stage_dir("screenplay")).unwrap();
    std::fs::write(
        film.stage_dir("screenplay").join("screenplay.json"),
        serde_json::to_vec(&parse(SCRIPT)).unwrap(),
    )
    .unwrap();
    film
}

#[test]
fn the_same_screenplay_gives_the_same_wav_files_run_after_run() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [a.path(), b.path()] {
        let film = film_with_screenplay(dir);
        common::run_ok(
            common::benjamin()
                .args(["run", "voice", "--quiet", "--film"])
                .arg(&film.dir),
        );
    }
    let t: DialogueTimings =
        serde_json::from_slice(&std::fs::read(a.path().join("voice/dialogue.json")).unwrap())
            .unwrap();
    for line in &t.lines {
        let wa = std::fs::read(a.path().join("voice").join(&line.file)).unwrap();
        let wb = std::fs::read(b.path().join("voice").join(&line.file)).unwrap();
        assert!(wa == wb, "{} differs between two runs", line.file);
    }
}

fn voice_only(id: StageId) -> Option<Box<dyn Stage>> {
    (id == StageId::Voice).then(|| Box::new(VoiceStage) as Box<dyn Stage>)
}

#[test]
fn the_voice_stage_honours_an_edited_cast() {
    let dir = tempfile::tempdir().unwrap();
    let film = film_with_screenplay(dir.path());
    let pipeline = Pipeline::with_stages(voice_only);
    let progress = Progress::hidden();
    let reports = pipeline.make(&film, &progress).unwrap();
    assert_eq!(reports[1].action, "ran");
    let vdir = film.stage_dir("voice");
    let timings: DialogueTimings =
        serde_json::from_slice(&std::fs::read(vdir.join("dialogue.json")).unwrap()).unwrap();
    check_timings(&timings, &vdir);
    let fragment: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vdir.join("edl.json")).unwrap()).unwrap();
    assert_eq!(fragment["audio"].as_array().unwrap().len(), 3);
    assert_eq!(fragment["subtitles"][0]["text"], "You came back... why?");

    let first_wav = std::fs::read(vdir.join(&timings.lines[0].file)).unwrap();
    let mut cast: BTreeMap<String, Voice> =
        serde_json::from_slice(&std::fs::read(vdir.join("voices.json")).unwrap()).unwrap();
    cast.get_mut("SAM").unwrap().pitch = 90;
    std::fs::write(
        vdir.join("voices.json"),
        serde_json::to_vec_pretty(&cast).unwrap(),
    )
    .unwrap();
    assert_eq!(pipeline.status(&film).unwrap()[1].state, "edited");
    assert_eq!(pipeline.make(&film, &progress).unwrap()[1].action, "ran");
    let kept: BTreeMap<String, Voice> =
        serde_json::from_slice(&std::fs::read(vdir.join("voices.json")).unwrap()).unwrap();
    assert_eq!(kept["SAM"].pitch, 90, "the edit is honoured");
    assert_ne!(
        std::fs::read(vdir.join(&timings.lines[0].file)).unwrap(),
        first_wav,
        "SAM's line was voiced again"
    );
    assert_eq!(pipeline.status(&film).unwrap()[1].state, "fresh");
}

/// Espeak that counts the lines it is asked to say.
struct Counting {
    inner: Espeak,
    said: Vec<String>,
}

impl SpeechEngine for Counting {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }
    fn speak(
        &mut self,
        text: &str,
        voice: &Voice,
        delivery: &Delivery,
    ) -> anyhow::Result<Vec<i16>> {
        self.said.push(text.to_string());
        self.inner.speak(text, voice, delivery)
    }
}

/// A rerun voices only what changed: nothing after a finished run, only the recast
/// character's lines after a recast, and a line whose file was damaged.
#[test]
fn a_rerun_voices_only_the_lines_whose_inputs_changed() {
    let dir = tempfile::tempdir().unwrap();
    let s = parse(SCRIPT);
    let mut cast = cast::cast(&s, &BTreeMap::new());
    let mut engine = Counting {
        inner: Espeak::new().unwrap(),
        said: Vec::new(),
    };
    let first = voice_screenplay(&s, &cast, &mut engine, dir.path(), &Progress::hidden()).unwrap();
    let all = engine.said.len();
    assert_eq!(all, first.lines.len());

    engine.said.clear();
    let again = voice_screenplay(&s, &cast, &mut engine, dir.path(), &Progress::hidden()).unwrap();
    assert!(engine.said.is_empty(), "redone: {:?}", engine.said);
    assert_eq!(again.lines, first.lines);
    check_timings(&again, dir.path());

    let recast = first.lines[0].character.clone();
    cast.get_mut(&recast).unwrap().pitch += 20;
    let theirs = first.lines.iter().filter(|l| l.character == recast).count();
    let damaged = first.lines.iter().find(|l| l.character != recast).unwrap();
    std::fs::write(dir.path().join(&damaged.file), b"RIFF").unwrap();
    engine.said.clear();
    let after = voice_screenplay(&s, &cast, &mut engine, dir.path(), &Progress::hidden()).unwrap();
    assert_eq!(engine.said.len(), theirs + 1, "{:?}", engine.said);
    check_timings(&after, dir.path());
}
