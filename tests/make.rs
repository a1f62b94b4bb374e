//! The command line on a film folder: a cut killed halfway leaves nothing that looks whole,
//! and the next `make` finishes it.

mod common;

use std::path::Path;
use std::process::Command;

use benjamin::film::{Film, Genre};
use common::{film_with_shots, run_ok};

fn benjamin(args: &[&str], film: &Path) -> Command {
    let mut cmd = common::benjamin();
    cmd.args(args).arg("--film").arg(film).arg("--quiet");
    // No archive: the shots stage is blocked and the hand-written shots fragment stands.
    cmd.env("BENJAMIN_ARCHIVE", film.join("no-archive"));
    cmd
}

fn cut_state(film: &Path) -> String {
    let out = run_ok(&mut benjamin(&["status", "--json"], film));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cut = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "cut")
        .unwrap();
    cut["state"].as_str().unwrap().to_string()
}

#[test]
fn a_killed_cut_leaves_no_whole_looking_film_and_the_next_make_completes() {
    let dir = tempfile::tempdir().unwrap();
    let film = film_with_shots(dir.path());
    assert_eq!(cut_state(&film), "never run");

    let killed = benjamin(&["make"], &film)
        .env("BENJAMIN_FAULT_ABORT_AFTER_FRAMES", "120")
        .output()
        .unwrap();
    assert!(
        !killed.status.success(),
        "the fault hook should have killed the run"
    );
    assert!(
        !film.join("film.mp4").exists(),
        "a killed cut must not leave film.mp4"
    );
    assert!(
        !film.join("cut/manifest.json").exists(),
        "a killed cut must not leave a manifest"
    );
    assert_eq!(cut_state(&film), "never run");

    run_ok(&mut benjamin(&["make"], &film));
    assert!(
        film.join("film.mp4").is_file()
            && film.join("film.srt").is_file()
            && film.join("film.otio").is_file()
    );
    assert_eq!(cut_state(&film), "fresh");
    let partials: Vec<_> = std::fs::read_dir(&film)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(
        partials.is_empty(),
        "temporary files left behind: {partials:?}"
    );

    // A subtitle file edited by hand makes the cut stale, and says so.
    std::fs::write(
        film.join("film.srt"),
        "1\n00:00:00,000 --> 00:00:01,000\nedited\n",
    )
    .unwrap();
    assert_eq!(cut_state(&film), "stale");
    let status = benjamin(&["status"], &film).output().unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).contains("film.srt was changed"));
}

#[test]
fn make_without_an_archive_reports_each_stage_and_writes_no_film() {
    let dir = tempfile::tempdir().unwrap();
    let film = dir.path().join("f");
    let out = run_ok(
        common::benjamin()
            .args([
                "make",
                "--genre",
                "scifi",
                "--hours",
                "0.01",
                "--minutes",
                "0.5",
                "--json",
                "--screenplay-model",
                "gpt",
                "--film",
            ])
            .arg(&film)
            .env("BENJAMIN_ARCHIVE", dir.path().join("no-archive")),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stages = v["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 6);
    assert_eq!(stages[2]["action"], "blocked");
    assert!(stages[2]["reason"]
        .as_str()
        .unwrap()
        .contains("archive add"));
    assert_eq!(stages[5]["action"], "blocked");
    assert!(!film.join("film.mp4").exists());
    let settings = Film::open(&film).unwrap().settings;
    assert_eq!(settings.genre, Genre::Scifi);
}

#[test]
fn unknown_genre_and_missing_genre_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::benjamin()
        .args(["make", "--genre", "western", "--hours", "1"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("western") && err.contains("noir"), "{err}");
    let out = common::benjamin()
        .args(["make", "--hours", "1"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a genre"));
}
