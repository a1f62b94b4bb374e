//! Fault injection on a tiny film: `make` killed at seeded random moments and run again ends
//! where an uninterrupted run ends; two makes on one folder; output pipes closed early.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{film_with_shots, run_ok};

fn make(film: &Path) -> Command {
    let mut cmd = common::benjamin();
    cmd.args(["make", "--film"]).arg(film);
    // No archive: the shots stage is blocked and the hand-written fragment stands.
    cmd.env("BENJAMIN_ARCHIVE", film.join("no-archive"));
    cmd
}

/// The artifacts that must not depend on how often the run was killed.
fn artifacts(film: &Path) -> Vec<(String, Vec<u8>)> {
    [
        "screenplay/screenplay.fountain",
        "screenplay/screenplay.json",
        "voice/dialogue.json",
        "music/cues.json",
        "music/score.mid",
        "film.srt",
    ]
    .iter()
    .map(|p| {
        let bytes = std::fs::read(film.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        (p.to_string(), bytes)
    })
    .collect()
}

fn states(film: &Path) -> Vec<String> {
    let out = run_ok(
        common::benjamin()
            .args(["status", "--json", "--film"])
            .arg(film)
            .env("BENJAMIN_ARCHIVE", film.join("no-archive")),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}={}", s["stage"], s["state"]))
        .collect()
}

/// A few xorshift steps of `seed`: the kill moments, the same on every run of the test.
fn moments(mut seed: u64, n: usize, longest: Duration) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            longest.mul_f64((seed % 1000) as f64 / 1000.0)
        })
        .collect()
}

#[test]
fn a_make_killed_anywhere_ends_like_an_uninterrupted_one() {
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = film_with_shots(reference_dir.path());
    let started = Instant::now();
    run_ok(make(&reference).arg("--quiet"));
    let whole_run = started.elapsed();

    let dir = tempfile::tempdir().unwrap();
    let film = film_with_shots(dir.path());
    for wait in moments(0x5eed, 4, whole_run) {
        let mut child = make(&film)
            .arg("--quiet")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(wait);
        let _ = child.kill();
        child.wait().unwrap();
        // Whatever a killed run left, `status` reads it without an error.
        states(&film);
    }
    run_ok(make(&film).arg("--quiet"));
    assert!(film.join("film.mp4").is_file());
    assert!(states(&film)
        .iter()
        .all(|s| s.ends_with("\"fresh\"") || s.contains("shots")));
    assert_eq!(artifacts(&film), artifacts(&reference));
    let partials = walkdir(&film)
        .into_iter()
        .filter(|p| p.ends_with(".partial"))
        .collect::<Vec<_>>();
    assert!(partials.is_empty(), "left behind: {partials:?}");
}

fn walkdir(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}

#[test]
fn a_second_make_on_a_film_in_use_is_refused_and_the_first_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let film = film_with_shots(dir.path());
    let mut first = make(&film)
        .arg("--quiet")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first holds the folder once it has written who it is into the lock file.
    let lock = film.join(".benjamin.lock");
    let until = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&lock).map_or(true, |s| s.is_empty()) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = make(&film).arg("--quiet").output().unwrap();
    let first_status = first.wait().unwrap();
    let mut first_err = String::new();
    first
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut first_err)
        .unwrap();
    assert!(first_status.success(), "{first_err}");
    assert!(film.join("film.mp4").is_file());
    if !second.status.success() {
        let err = String::from_utf8_lossy(&second.stderr);
        assert!(
            err.contains("in use by another benjamin") && err.contains("process"),
            "{err}"
        );
    }
    // Either it was refused, or the first had finished and it found everything fresh.
    assert!(states(&film)
        .iter()
        .all(|s| s.ends_with("\"fresh\"") || s.contains("shots")));
}

#[test]
fn closed_output_pipes_end_quietly_and_never_lose_the_film() {
    let dir = tempfile::tempdir().unwrap();
    let film = film_with_shots(dir.path());
    // Progress on a stderr nobody reads (`make 2>&1 | head -1`): the film is still made.
    let mut child = make(&film).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stderr.take());
    assert!(child.wait().unwrap().success());
    assert!(film.join("film.mp4").is_file());
    // Output on a stdout nobody reads (`status | head -1`): a quiet end, no panic.
    let mut child = common::benjamin()
        .args(["status", "--film"])
        .arg(&film)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(0) && !err.contains("panicked"),
        "{:?}: {err}",
        out.status
    );
}

#[test]
fn sigterm_mid_cut_leaves_no_partial_behind() {
    let dir = tempfile::tempdir().unwrap();
    let film = film_with_shots(dir.path());
    let mut child = make(&film)
        .arg("--quiet")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = || {
        std::fs::read_dir(&film)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".partial"))
    };
    let until = Instant::now() + Duration::from_secs(120);
    while !partial() && Instant::now() < until && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(partial(), "the cut never started writing film.mp4");
    // SAFETY: kill only sends a signal, to the child this test started.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0);
    let status = child.wait().unwrap();
    assert!(!status.success(), "SIGTERM should stop the make");
    assert!(!partial(), "a SIGTERM left a partial file");
    assert!(!film.join("film.mp4").exists());
}
