//! The score: deterministic per seed, in range, in harmony, as long as the scenes, audible and
//! unclipped through the real SoundFont, and clear about a bad SoundFont.

mod common;

use std::path::{Path, PathBuf};

use benjamin::film::{Film, FilmSettings, Genre};
use benjamin::music::genre::Role;
use benjamin::music::melody::fits_harmony;
use benjamin::music::render::{load_soundfont, render_cue, DEFAULT_SOUNDFONT, PEAK};
use benjamin::music::{compose_score, midi, MelodyModel, SceneBrief, Score};
use benjamin::pipeline::StageId;
use benjamin::progress::Progress;
use benjamin::screenplay::fountain::parse;
use benjamin::voice::{DialogueTimings, SceneTiming};

fn scenes(lengths: &[f64]) -> Vec<SceneBrief> {
    let mut start = 0.0;
    lengths
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let s = SceneBrief {
                number: i + 1,
                start,
                duration: *d,
                tension: (i as f64 * 0.37) % 1.0,
            };
            start += d;
            s
        })
        .collect()
}

fn compose(genre: Genre, seed: u64, lengths: &[f64]) -> Score {
    let (model, _) = MelodyModel::load(None).unwrap();
    compose_score(genre, seed, &scenes(lengths), &model, &Progress::hidden()).unwrap()
}

/// The SoundFont setup installs; tests that need it say so and pass when it is absent.
fn soundfont() -> Option<PathBuf> {
    let p = PathBuf::from(DEFAULT_SOUNDFONT);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("skipped: {DEFAULT_SOUNDFONT} is absent (scripts/setup.sh installs it)");
        None
    }
}

#[test]
fn the_same_seed_makes_the_same_midi_and_another_seed_another() {
    let lengths = [6.0, 9.5, 4.2];
    for genre in Genre::ALL {
        let a = midi::write_midi(&compose(genre, 11, &lengths));
        let b = midi::write_midi(&compose(genre, 11, &lengths));
        assert_eq!(a, b, "{genre}: same seed, different MIDI");
        let c = midi::write_midi(&compose(genre, 12, &lengths));
        assert_ne!(a, c, "{genre}: the seed changes nothing");
        // A standard MIDI file: a header chunk, then a conductor track and one per instrument.
        assert_eq!(&a[0..4], b"MThd");
        let smf = midly::Smf::parse(&a).unwrap();
        assert_eq!(
            smf.tracks.len(),
            1 + compose(genre, 11, &lengths).band.len()
        );
    }
}

#[test]
fn every_note_stays_in_its_instruments_range() {
    for genre in Genre::ALL {
        for seed in [1, 2, 3] {
            let score = compose(genre, seed, &[8.0, 12.0, 5.0, 20.0]);
            for cue in &score.cues {
                for part in &cue.parts {
                    let i = &part.instrument;
                    assert!(!part.notes.is_empty() || i.role == Role::Melody);
                    for n in &part.notes {
                        assert!(
                            (i.lo..=i.hi).contains(&n.pitch),
                            "{genre} seed {seed}: {} plays {} outside {}-{}",
                            i.name,
                            n.pitch,
                            i.lo,
                            i.hi
                        );
                        assert!(n.end() <= cue.ticks && n.velocity > 0);
                    }
                }
            }
        }
    }
}

#[test]
fn every_melody_note_fits_its_chord_or_is_a_marked_passing_tone() {
    let mut notes = 0;
    let mut passing = 0;
    for genre in Genre::ALL {
        for seed in 1..=4 {
            let score = compose(genre, seed, &[10.0, 15.0, 7.0, 12.0]);
            for cue in &score.cues {
                let melody = cue.melody().expect("every cue has a melody part");
                for (i, n) in melody.notes.iter().enumerate() {
                    assert!(
                        fits_harmony(&melody.notes, i, &cue.chords, &cue.key()),
                        "{genre} seed {seed} scene {}: note {i} ({n:?}) fits neither its chord nor as a passing tone",
                        cue.scene
                    );
                    notes += 1;
                    passing += usize::from(n.passing);
                }
            }
            let (fit, total) = benjamin::music::melody::score_harmony_fit(&score);
            assert_eq!(fit, total);
        }
    }
    assert!(notes > 100, "only {notes} melody notes");
    assert!(passing > 0, "the model never took a passing tone");
}

#[test]
fn a_scene_of_zero_length_gets_no_cue() {
    let score = compose(Genre::Noir, 5, &[4.0, 0.0, 3.0]);
    let numbers: Vec<usize> = score.cues.iter().map(|c| c.scene).collect();
    assert_eq!(numbers, vec![1, 3]);
    assert!(!midi::write_midi(&score).is_empty());
    assert!(compose(Genre::Scifi, 5, &[0.0]).cues.is_empty());
}

#[test]
fn cues_are_as_long_as_their_scenes() {
    let lengths = [3.37, 7.019, 2.5];
    let score = compose(Genre::Romance, 9, &lengths);
    for (cue, want) in score.cues.iter().zip(lengths) {
        let notated = cue.ticks as f64 * cue.seconds_per_tick();
        assert!(
            (notated - want).abs() < 0.01,
            "scene {}: {notated} s of music for {want} s",
            cue.scene
        );
    }
    // In the MIDI file each cue starts where its scene does (within 10 ms).
    let starts = midi::cue_start_ticks(&score);
    let mut t = 0.0;
    for (i, cue) in score.cues.iter().enumerate() {
        if i > 0 {
            let prev = &score.cues[i - 1];
            t += (starts[i] - starts[i - 1]) as f64 * prev.seconds_per_tick();
        }
        assert!(
            (t - cue.start).abs() < 0.01,
            "cue {i} at {t} s, scene at {} s",
            cue.start
        );
    }
    let Some(sf) = soundfont() else { return };
    let font = load_soundfont(&sf).unwrap();
    for (cue, want) in score.cues.iter().zip(lengths) {
        let audio = render_cue(cue, &font, 44_100).unwrap();
        let seconds = audio.left.len() as f64 / 44_100.0;
        assert!((seconds - want).abs() < 0.01, "{seconds} s for {want} s");
    }
}

#[test]
fn the_rendered_cue_is_audible_and_not_clipped() {
    let Some(sf) = soundfont() else { return };
    let font = load_soundfont(&sf).unwrap();
    assert!(font.credit().contains("public domain"), "{}", font.credit());
    for genre in Genre::ALL {
        let score = compose(genre, 4, &[6.0]);
        let audio = render_cue(&score.cues[0], &font, 44_100).unwrap();
        let all: Vec<f32> = audio.left.iter().chain(&audio.right).copied().collect();
        let peak = all.iter().fold(0f32, |m, x| m.max(x.abs()));
        let rms = (all.iter().map(|x| x * x).sum::<f32>() / all.len() as f32).sqrt();
        assert!(rms > 0.005, "{genre}: silent (rms {rms})");
        assert!(peak <= PEAK + 1e-6, "{genre}: peak {peak} over -1 dBFS");
        // Faded in and out at the scene boundaries.
        assert!(audio.left[0].abs() < 0.01 && audio.left[all.len() / 2 - 1].abs() < 0.01);
    }
}

#[test]
fn a_bad_soundfont_gets_an_error_naming_it_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let check = |path: &Path, what: &str| {
        let err = format!("{:#}", load_soundfont(path).err().expect("an error"));
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(
            err.contains("csound-soundfont") && err.contains("film.toml"),
            "{err}"
        );
        assert!(err.contains(what), "{what}: {err}");
    };
    check(&dir.path().join("absent.sf2"), "cannot read");
    let text = dir.path().join("notes.sf2");
    std::fs::write(&text, "this is not a SoundFont at all").unwrap();
    check(&text, "not a SoundFont");
    if let Some(sf) = soundfont() {
        let bytes = std::fs::read(&sf).unwrap();
        let cut = dir.path().join("cut.sf2");
        std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
        check(&cut, "truncated");
        // A whole-looking header over garbage: the reader's failure (or panic) becomes our error.
        let mut junk = bytes[..12].to_vec();
        junk[4..8].copy_from_slice(&4000u32.to_le_bytes());
        junk.extend(std::iter::repeat_n(0x5a, 4000));
        let bad = dir.path().join("junk.sf2");
        std::fs::write(&bad, &junk).unwrap();
        check(&bad, "damaged");
    }
}

/// A film folder with a screenplay and voice timings written by hand (no espeak-ng needed).
fn film_with_timings(dir: &Path, genre: Genre, soundfont: Option<PathBuf>) -> Film {
    let mut settings = FilmSettings::new("Score Test".into(), genre, 3, 0.1);
    settings.soundfont = soundfont;
    let film = Film::save(dir, &settings).unwrap();
    let script = parse(
        "INT. OFFICE - NIGHT\n\nRain on the glass. She draws the gun.\n\nVERA\nYou're late.\n\nEXT. ROOF - NIGHT\n\nHe runs. Shots. He jumps.\n\nINT. DINER - DAY\n\nEmpty.\n",
    );
    let sp = film.stage_dir("screenplay");
    std::fs::create_dir_all(&sp).unwrap();
    std::fs::write(
        sp.join("screenplay.json"),
        serde_json::to_vec(&script).unwrap(),
    )
    .unwrap();
    let timings = DialogueTimings {
        engine: "hand".into(),
        sample_rate: 22_050,
        scenes: vec![
            SceneTiming {
                number: 1,
                start: 0.0,
                duration: 4.0,
            },
            SceneTiming {
                number: 2,
                start: 4.0,
                duration: 3.5,
            },
            SceneTiming {
                number: 3,
                start: 7.5,
                duration: 0.0,
            },
        ],
        lines: vec![],
        total_seconds: 7.5,
    };
    let voice = film.stage_dir("voice");
    std::fs::create_dir_all(&voice).unwrap();
    std::fs::write(
        voice.join("dialogue.json"),
        serde_json::to_vec(&timings).unwrap(),
    )
    .unwrap();
    film
}

#[test]
fn the_stage_writes_cues_midi_and_its_part_of_the_edit_list() {
    let Some(_) = soundfont() else { return };
    let dir = tempfile::tempdir().unwrap();
    let film = film_with_timings(dir.path(), Genre::Noir, None);
    let report = common::pipeline()
        .run_one(&film, StageId::Music, &Progress::hidden())
        .unwrap();
    assert_eq!(report.action, "ran");
    let music = film.stage_dir("music");
    for f in [
        "score.mid",
        "cues.json",
        "edl.json",
        "cues/scene-001.wav",
        "cues/scene-002.wav",
    ] {
        assert!(music.join(f).is_file(), "{f} missing");
    }
    assert!(
        !music.join("cues/scene-003.wav").exists(),
        "a cue for a zero-length scene"
    );
    let wav = hound::WavReader::open(music.join("cues/scene-002.wav")).unwrap();
    assert_eq!(wav.spec().channels, 2);
    let secs = wav.duration() as f64 / wav.spec().sample_rate as f64;
    assert!((secs - 3.5).abs() < 0.01, "{secs}");
    let frag: serde_json::Value =
        serde_json::from_slice(&std::fs::read(music.join("edl.json")).unwrap()).unwrap();
    assert_eq!(frag["audio"].as_array().unwrap().len(), 2);
    assert_eq!(frag["audio"][1]["role"], "music");
    assert_eq!(frag["audio"][1]["start"], 4.0);
    let credits = frag["credits"]["music"].to_string();
    assert!(credits.contains("Score composed by benjamin") && credits.contains("sf_GMbank.sf2"));
    // Now fresh; the cut would read its fragment.
    let status = common::pipeline().status(&film).unwrap();
    let music_state = status.iter().find(|s| s.stage == StageId::Music).unwrap();
    assert_eq!(music_state.state, "fresh");
    let edl = benjamin::cut::stage::assemble(&film).err();
    assert!(edl.is_some(), "no shots yet, so the cut stays blocked");

    // A lost cue makes the stage stale; the rerun renders that cue only.
    let kept = music.join("cues/scene-001.wav");
    let rendered = std::fs::metadata(&kept).unwrap().modified().unwrap();
    std::fs::remove_file(music.join("cues/scene-002.wav")).unwrap();
    let report = common::pipeline()
        .run_one(&film, StageId::Music, &Progress::hidden())
        .unwrap();
    assert_eq!(report.action, "ran");
    assert!(music.join("cues/scene-002.wav").is_file());
    assert_eq!(
        std::fs::metadata(&kept).unwrap().modified().unwrap(),
        rendered
    );
}

#[test]
fn the_stage_names_a_missing_soundfont_and_run_with_a_new_seed_changes_the_score() {
    let dir = tempfile::tempdir().unwrap();
    let film = film_with_timings(dir.path(), Genre::Scifi, Some(dir.path().join("none.sf2")));
    let err = format!(
        "{:#}",
        common::pipeline()
            .run_one(&film, StageId::Music, &Progress::hidden())
            .unwrap_err()
    );
    assert!(
        err.contains("none.sf2") && err.contains("csound-soundfont"),
        "{err}"
    );
    let Some(sf) = soundfont() else { return };
    let mut settings = film.settings.clone();
    settings.soundfont = Some(sf);
    Film::save(&film.dir, &settings).unwrap();
    let midi_of = |seed: &str| {
        common::run_ok(common::benjamin().args([
            "--quiet",
            "run",
            "music",
            "--film",
            dir.path().to_str().unwrap(),
            "--seed",
            seed,
        ]));
        std::fs::read(dir.path().join("music/score.mid")).unwrap()
    };
    let five = midi_of("5");
    assert_ne!(five, midi_of("6"));
    assert_eq!(five, midi_of("5"));
}
