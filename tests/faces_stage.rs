//! The faces stage end to end: drawn faces in a drawn video, a drawn actor with a consent
//! record; no real face.

mod common;

use common::CONSENT;

use benjamin::edl::EdlFragment;
use benjamin::faces::stage::FacesRun;
use benjamin::faces::synth::{background, draw_face, face_picture, Look, Pose};
use benjamin::film::{Film, FilmSettings, Genre};
use benjamin::media::mp4::{Mp4Options, Mp4Writer};
use benjamin::progress::Progress;
use benjamin::vision::image::RgbConverter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// 2 s at 10 fps of a drawn face that drifts and talks.
fn face_video(path: &Path) {
    let opts = Mp4Options {
        width: 160,
        height: 120,
        fps: 10,
        preset: "ultrafast".into(),
        crf: 18,
    };
    let mut w = Mp4Writer::create(path, &opts, None, Vec::new()).unwrap();
    let mut conv = RgbConverter::default();
    for i in 0..20 {
        let mut img = background(160, 120, [70.0, 90.0, 110.0]);
        let pose = Pose {
            cx: 70.0 + i as f32,
            cy: 60.0,
            size: 60.0,
            angle: 0.05,
            mouth_open: (i % 4) as f32 / 4.0,
        };
        draw_face(&mut img, &Look::A, &pose);
        w.write_frame(&mut conv.to_yuv(&img).unwrap()).unwrap();
    }
    w.finish().unwrap();
}

use common::shot;

fn film(dir: &Path) -> Film {
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    face_video(&media.join("face.mp4"));
    benjamin::media::synth::write_still(&media.join("empty.png"), 160, 120, [40, 90, 60]).unwrap();
    // The actor: drawn faces of another look, with consent.
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for (i, size) in [56.0, 64.0, 72.0].into_iter().enumerate() {
        let pose = Pose {
            cx: 64.0,
            cy: 64.0,
            size,
            angle: 0.1 * i as f32 - 0.1,
            mouth_open: 0.3,
        };
        face_picture(128, 128, &Look::B, &pose)
            .save(photos.join(format!("{i}.png")))
            .unwrap();
    }
    std::fs::write(dir.join("consent.toml"), CONSENT).unwrap();
    let actors_dir = dir.join("actors");
    benjamin::faces::actors::add(
        &actors_dir,
        "Ana Lima",
        &photos,
        &dir.join("consent.toml"),
        false,
        &Progress::hidden(),
    )
    .unwrap();
    let mut settings = FilmSettings::new("Faces".into(), Genre::Noir, 3, 0.01);
    settings.actors = Some(actors_dir);
    let film = Film::save(&dir.join("film"), &settings).unwrap();
    let shots = EdlFragment {
        shots: vec![
            shot(media.join("face.mp4"), 0.5, 1.5, 1),
            shot(PathBuf::from("../../media/empty.png"), 0.0, 1.0, 1),
        ],
        ..Default::default()
    };
    let path = film.stage_dir("shots").join("edl.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_vec_pretty(&shots).unwrap()).unwrap();
    film
}

/// A run that pastes whatever the model paints: the tests' models train for seconds, far
/// from a face good enough for a film (the quality gate has its own test).
fn shown_from(deadline: Instant) -> FacesRun {
    FacesRun {
        min_ssim: 0.0,
        ..FacesRun::until(deadline)
    }
}

/// A model below the quality bar pastes nothing: the shots keep their faces, and the
/// manifest notes say why, with the SSIM it reached.
#[test]
fn a_model_that_cannot_paint_a_face_pastes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let film = film(dir.path());
    let out = film.stage_dir("faces");
    let run = FacesRun {
        min_ssim: 1.01,
        ..FacesRun::until(Instant::now() + Duration::from_secs(2))
    };
    let outcome =
        benjamin::faces::stage::run_stage(&film, &out, &run, &Progress::hidden()).unwrap();
    assert_eq!(outcome.notes["swapped"], 0, "{}", outcome.notes);
    let why = outcome.notes["why_none"].as_str().unwrap();
    assert!(why.contains("SSIM") && why.contains("held-out"), "{why}");
    // With the budget that might get there.
    assert!(
        why.contains("more steps") && why.contains("--hours"),
        "{why}"
    );
    assert!(outcome.notes["training"]["steps"].as_u64().unwrap() >= 30);
    let ssim = outcome.notes["held_out_ssim"].as_f64().unwrap();
    assert!((-1.0..1.0).contains(&ssim), "{ssim}");
    let frag: EdlFragment =
        serde_json::from_slice(&std::fs::read(out.join("edl.json")).unwrap()).unwrap();
    assert!(
        frag.shots.iter().all(|s| !s.source.starts_with("clips")),
        "{frag:?}"
    );

    // Too little time for a good swap: no scan at all, and the reason given.
    let run = FacesRun {
        too_short: Some("10 s is too little".into()),
        ..FacesRun::until(Instant::now())
    };
    let outcome =
        benjamin::faces::stage::run_stage(&film, &out, &run, &Progress::hidden()).unwrap();
    assert_eq!(outcome.notes["swapped"], 0);
    assert_eq!(outcome.notes["why_none"], "10 s is too little");
}

/// The stage swaps the actor into the shot with a face, passes the other through, and
/// writes a fragment the cut can use.
#[test]
fn the_stage_swaps_faces_into_new_clips() {
    let dir = tempfile::tempdir().unwrap();
    let film = film(dir.path());
    let out = film.stage_dir("faces");
    let outcome = benjamin::faces::stage::run_stage(
        &film,
        &out,
        &shown_from(Instant::now() + Duration::from_secs(5)),
        &Progress::hidden(),
    )
    .unwrap();
    assert_eq!(outcome.notes["swapped"], 1, "{}", outcome.notes);
    let frag: EdlFragment =
        serde_json::from_slice(&std::fs::read(out.join("edl.json")).unwrap()).unwrap();
    assert_eq!(frag.shots.len(), 2);
    assert_eq!(frag.shots[0].source, PathBuf::from("clips/001.mp4"));
    assert_eq!(frag.shots[0].in_point, 0.0);
    assert!((frag.shots[0].out_point - 1.0).abs() < 1e-9);
    assert_eq!(
        frag.shots[1].source,
        PathBuf::from("../shots/../../media/empty.png")
    );
    assert!(out.join("../shots/../../media/empty.png").is_file());
    let info = benjamin::media::source::probe(&out.join("clips/001.mp4")).unwrap();
    assert_eq!((info.width, info.height), (160, 120));
    assert!((info.frame_rate - 10.0).abs() < 1e-6);
    let cast: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("cast.json")).unwrap()).unwrap();
    assert_eq!(cast["characters"]["ANA-LIMA"], "ana-lima", "{cast}");
    assert!(outcome.notes["training"]["steps"].as_u64().unwrap() >= 30);

    // A second run from the same inputs keeps the model and the clip: nothing is redone.
    let clip = out.join("clips/001.mp4");
    let written = std::fs::metadata(&clip).unwrap().modified().unwrap();
    let again = benjamin::faces::stage::run_stage(
        &film,
        &out,
        &shown_from(Instant::now()),
        &Progress::hidden(),
    )
    .unwrap();
    assert_eq!(again.notes["swapped"], 1, "{}", again.notes);
    assert_eq!(
        again.notes["training"]["steps"], outcome.notes["training"]["steps"],
        "{}",
        again.notes
    );
    assert_eq!(
        std::fs::metadata(&clip).unwrap().modified().unwrap(),
        written
    );

    // A new budget trains on from the checkpoint, and the clip is converted again.
    let mut settings = film.settings.clone();
    settings.hours *= 2.0;
    let film = Film::save(&film.dir, &settings).unwrap();
    let more = benjamin::faces::stage::run_stage(
        &film,
        &out,
        &shown_from(Instant::now()),
        &Progress::hidden(),
    )
    .unwrap();
    assert!(
        more.notes["training"]["resumed_from"].as_u64().unwrap() >= 30,
        "{}",
        more.notes
    );
    assert_ne!(
        std::fs::metadata(&clip).unwrap().modified().unwrap(),
        written
    );
}

/// An actor whose consent record is gone stops the stage with a clear error.
#[test]
fn the_stage_refuses_an_actor_without_consent() {
    let dir = tempfile::tempdir().unwrap();
    let film = film(dir.path());
    std::fs::remove_file(dir.path().join("actors/ana-lima/consent.toml")).unwrap();
    let Err(err) = benjamin::faces::stage::run_stage(
        &film,
        &film.stage_dir("faces"),
        &FacesRun::until(Instant::now()),
        &Progress::hidden(),
    ) else {
        panic!("the stage ran without consent");
    };
    let msg = format!("{err:#}");
    assert!(
        msg.contains("Ana Lima") && msg.contains("no consent record"),
        "{msg}"
    );
    assert!(!film.stage_dir("faces").join("edl.json").exists());
}

/// The film's provenance names the swapped-in actor with the hash of the consent record the
/// faces stage checked, and the swap model and detector with theirs.
#[test]
fn the_provenance_names_each_swapped_actor_with_the_consent_in_force() {
    use benjamin::faces::stage::FacesStage;
    use benjamin::pipeline::{stage_impl, Pipeline, Stage, StageId};
    fn stages(id: StageId) -> Option<Box<dyn Stage>> {
        match id {
            StageId::Faces => Some(Box::new(FacesStage::ungated())),
            other => stage_impl(other),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let film = film(dir.path());
    let report = Pipeline::with_stages(stages)
        .run_one(&film, StageId::Faces, &Progress::hidden())
        .unwrap();
    assert_eq!(report.action, "ran");
    let edl = benjamin::cut::stage::assemble(&film).unwrap();
    let record = benjamin::cut::stage::provenance(&film, &edl).unwrap();
    let consent = dir.path().join("actors/ana-lima/consent.toml");
    assert_eq!(record.actors.len(), 1, "{record:?}");
    assert_eq!(record.actors[0].actor, "ana-lima");
    assert_eq!(
        record.actors[0].consent_hash,
        benjamin::fsutil::hash_file(&consent).unwrap()
    );
    let models: Vec<&str> = record.models.iter().map(|m| m.name.as_str()).collect();
    assert!(
        models.contains(&"faces") && models.contains(&"mtcnn"),
        "{models:?}"
    );
    // The swapped clip is a source, credited like the shot it replaces.
    assert!(
        record
            .sources
            .iter()
            .any(|s| s.file == "faces/clips/001.mp4"),
        "{record:?}"
    );
}
