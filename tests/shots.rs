//! The shots stage on a film folder: scenes filled to their length from a generated archive,
//! night scenes on dark footage, nothing shown twice, the same seed the same choice.

mod common;

use std::path::Path;

use benjamin::edl::EdlFragment;
use benjamin::film::{Film, FilmSettings, Frame, Genre};
use benjamin::pipeline::StageId;
use benjamin::progress::Progress;
use benjamin::screenplay::fountain;

const SCRIPT: &str = "EXT. ALLEY - NIGHT\n\nRain falls in the dark alley. A lamp flickers.\n\nMILO\nWho's there?\n\nEXT. BEACH - DAY\n\nSun on the beach. Waves roll in under the sun.\n\nANNA\n(laughing)\nOver here!\n";

fn film(dir: &Path, archive: Option<&Path>) -> Film {
    let mut settings = FilmSettings::new("Shore Leave".into(), Genre::Noir, 11, 0.05);
    settings.frame = Frame {
        width: 320,
        height: 180,
        fps: 24,
    };
    settings.archive = archive.map(Path::to_path_buf);
    let film = Film::save(&dir.join("film"), &settings).unwrap();
    let screenplay = fountain::parse(SCRIPT);
    let json = benjamin::screenplay::stage::json_path(&film);
    std::fs::create_dir_all(json.parent().unwrap()).unwrap();
    std::fs::write(&json, serde_json::to_vec_pretty(&screenplay).unwrap()).unwrap();
    film
}

fn fragment(film: &Film) -> EdlFragment {
    let text = std::fs::read_to_string(film.dir.join("shots/edl.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn scenes_are_filled_from_fitting_footage_once_and_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let archive = common::small_archive(dir.path());
    let film = film(dir.path(), Some(&archive));
    let pipeline = common::pipeline();
    let report = pipeline
        .run_one(&film, StageId::Shots, &Progress::hidden())
        .unwrap();
    assert_eq!(report.action, "ran");
    let shots = fragment(&film).shots;
    let screenplay = fountain::parse(SCRIPT);
    for scene in &screenplay.scenes {
        let want = (scene.estimated_seconds * 24.0).round() as i64;
        let got: i64 = shots
            .iter()
            .filter(|s| s.scene as usize == scene.number)
            .map(|s| ((s.out_point - s.in_point) * 24.0).round() as i64)
            .sum();
        assert!(
            (got - want).abs() <= 1,
            "scene {}: {got} frames for {want}",
            scene.number
        );
    }
    // The night scene opens on the dark alley; the day scene on the beach.
    let first = |n: u32| shots.iter().find(|s| s.scene == n).unwrap();
    assert!(first(1).source.ends_with("alley.mp4"), "{:?}", first(1));
    assert_eq!(first(1).licence, "CC0");
    assert_eq!(first(1).attribution, "Night Footage Co.");
    assert!(first(2).source.ends_with("beach.mp4"), "{:?}", first(2));
    // No frame of a source is used twice.
    for (i, a) in shots.iter().enumerate() {
        for b in &shots[i + 1..] {
            if a.source == b.source && !a.source.ends_with("sky.png") {
                assert!(a.out_point <= b.in_point + 1e-9 || b.out_point <= a.in_point + 1e-9);
            }
        }
    }
    let before = std::fs::read(film.dir.join("shots/edl.json")).unwrap();
    pipeline
        .run_one(&film, StageId::Shots, &Progress::hidden())
        .unwrap();
    assert_eq!(
        before,
        std::fs::read(film.dir.join("shots/edl.json")).unwrap()
    );
    let status = pipeline.status(&film).unwrap();
    let shots_status = status.iter().find(|s| s.stage == StageId::Shots).unwrap();
    assert_eq!(shots_status.state, "fresh");
}

#[test]
fn without_an_archive_the_stage_is_blocked_and_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let film = film(dir.path(), Some(&dir.path().join("no-archive")));
    let status = common::pipeline().status(&film).unwrap();
    let shots = status.iter().find(|s| s.stage == StageId::Shots).unwrap();
    assert_eq!(shots.state, "blocked");
    assert!(
        shots.reason.as_deref().unwrap().contains("archive add"),
        "{:?}",
        shots.reason
    );
}
