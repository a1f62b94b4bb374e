//! What a careless or unlucky user does must not lose their work: a failed hand edit, a
//! regenerated edit, an output naming an input, an absurd budget, a symlink loop, a
//! screenplay of hours, a damaged manifest, a PNG with a video's name.

mod common;

use std::path::Path;
use std::process::Command;

use benjamin::archive::{AddOptions, Archive};
use benjamin::media::synth::write_still;
use benjamin::progress::Progress;
use common::{edit_list, film_with_shots, make_media, run_ok};

fn benjamin(args: &[&str], film: &Path) -> Command {
    let mut cmd = common::benjamin();
    cmd.args(args).arg("--film").arg(film).arg("--quiet");
    cmd.env("BENJAMIN_ARCHIVE", film.join("no-archive"));
    cmd
}

fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    // 1 for an error, 2 for a command line clap refuses; never 101, a panic.
    assert!(matches!(out.status.code(), Some(1 | 2)), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn state(film: &Path, stage: &str) -> String {
    let out = run_ok(&mut benjamin(&["status", "--json"], film));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == stage)
        .unwrap()
        .clone();
    format!("{} {}", s["state"].as_str().unwrap(), s["reason"])
}

const MINE: &str =
    "INT. HARBOUR BAR - NIGHT\n\nRain on the glass.\n\nVERA\nNobody comes here twice.\n";

#[test]
fn a_failed_edit_stays_an_edit_and_a_regenerated_one_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let film = film_with_shots(dir.path());
    run_ok(&mut benjamin(&["make"], &film));
    let fountain = film.join("screenplay/screenplay.fountain");

    std::fs::write(&fountain, "").unwrap();
    let err = fails(&mut benjamin(&["make"], &film));
    assert!(err.contains("no scenes"), "{err}");
    assert!(state(&film, "screenplay").starts_with("edited"));

    std::fs::write(&fountain, MINE).unwrap();
    run_ok(&mut benjamin(&["make"], &film));
    assert_eq!(std::fs::read_to_string(&fountain).unwrap(), MINE);
    let json = std::fs::read_to_string(film.join("screenplay/screenplay.json")).unwrap();
    assert!(json.contains("Nobody comes here twice."));

    // A new seed writes a new screenplay, but the edit is kept first.
    run_ok(&mut benjamin(&["run", "screenplay", "--seed", "9"], &film));
    assert_ne!(std::fs::read_to_string(&fountain).unwrap(), MINE);
    let kept: Vec<_> = std::fs::read_dir(film.join("screenplay/edits"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(kept, vec![MINE.to_string()]);
}

#[test]
fn a_screenplay_of_hours_is_refused_with_the_way_to_ask_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let film = film_with_shots(dir.path());
    run_ok(&mut benjamin(&["make"], &film));
    let scene = "INT. ROOM - NIGHT\n\nA long wait in a small room.\n\nVERA\nWe wait. And we wait some more, as the clock turns.\n\n";
    std::fs::write(
        film.join("screenplay/screenplay.fountain"),
        scene.repeat(400),
    )
    .unwrap();
    let err = fails(&mut benjamin(&["make"], &film));
    assert!(
        err.contains("--minutes") && err.contains("screenplay runs about"),
        "{err}"
    );
    let voiced = std::fs::read_dir(film.join("voice/lines")).map_or(0, |d| d.count());
    assert!(voiced < 100, "{voiced} lines voiced");
}

#[test]
fn a_cut_never_writes_over_what_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let media = make_media(dir.path());
    let edl_path = dir.path().join("ok.json");
    let edl = serde_json::to_string(&edit_list(&media)).unwrap();
    std::fs::write(&edl_path, &edl).unwrap();
    let clip = std::fs::read(media.join("clip.mp4")).unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let cut = |out: &Path| {
        let mut cmd = common::benjamin();
        cmd.args(["cut", "--edl"])
            .arg(&edl_path)
            .arg("--out")
            .arg(out);
        fails(&mut cmd)
    };
    assert!(cut(&dir.path().join("ok.json")).contains(".mp4"));
    assert!(cut(&media.join("clip.mp4")).contains("would overwrite"));
    assert!(cut(&out_dir).contains("is a folder"));
    assert_eq!(std::fs::read_to_string(&edl_path).unwrap(), edl);
    assert_eq!(std::fs::read(media.join("clip.mp4")).unwrap(), clip);
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);
    assert!(!dir.path().join("out.srt").exists());
}

#[test]
fn an_absurd_budget_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let film = dir.path().join("f");
    for hours in ["1e16", "0", "-1", "NaN", "inf"] {
        let flag = format!("--hours={hours}");
        let err = fails(&mut benjamin(&["make", "--genre", "noir", &flag], &film));
        assert!(err.contains("hours must be more than 0"), "{hours}: {err}");
    }
    let err = fails(&mut benjamin(
        &["make", "--genre", "noir", "--minutes", "0"],
        &film,
    ));
    assert!(err.contains("more than 0 and at most 120"), "{err}");
    assert!(!film.exists());

    // A film.toml edited to an absurd budget is named, not a panic.
    let made = film_with_shots(dir.path());
    let toml = std::fs::read_to_string(made.join("film.toml")).unwrap();
    let edited = toml
        .lines()
        .map(|l| {
            if l.starts_with("hours") {
                "hours = 1e308"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(made.join("film.toml"), edited).unwrap();
    let err = fails(&mut benjamin(&["make"], &made));
    assert!(err.contains("film.toml") && err.contains("hours"), "{err}");
}

#[test]
fn a_damaged_manifest_is_said_and_the_stage_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let film = film_with_shots(dir.path());
    run_ok(&mut benjamin(&["make"], &film));
    std::fs::write(film.join("music/manifest.json"), "{ not json").unwrap();
    assert!(state(&film, "music").contains("damaged"));
    run_ok(&mut benjamin(&["make"], &film));
    assert!(state(&film, "music").starts_with("fresh"));
}

#[cfg(unix)]
#[test]
fn symlink_loops_are_skipped_and_images_are_known_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(media.join("sub")).unwrap();
    write_still(&media.join("sky.png"), 160, 90, [30, 60, 200]).unwrap();
    // A PNG under a video's name.
    write_still(&media.join("sub/sea.png"), 160, 90, [20, 90, 120]).unwrap();
    std::fs::rename(media.join("sub/sea.png"), media.join("sub/sea.mp4")).unwrap();
    std::os::unix::fs::symlink("self.mp4", media.join("self.mp4")).unwrap();
    std::os::unix::fs::symlink("..", media.join("sub/up")).unwrap();

    let mut a = Archive::open(&dir.path().join("archive")).unwrap();
    let opts = AddOptions {
        keywords_only: true,
        ..Default::default()
    };
    let report = a
        .add(std::slice::from_ref(&media), &opts, &Progress::hidden())
        .unwrap();
    assert_eq!(report.added.len(), 2, "{report:?}");
    let why: Vec<String> = report
        .failed
        .iter()
        .map(|(p, w)| format!("{} {w}", p.display()))
        .collect();
    assert!(why.iter().any(|w| w.contains("self.mp4")), "{why:?}");
    assert!(why.iter().any(|w| w.contains("symlink loop")), "{why:?}");
}
