//! `benjamin batch`: a festival file's entries made into their own folders under the batch
//! folder, one bad entry never stopping the others, reruns skipping what is done, an edited
//! entry made again, and a report for people and scripts.

mod common;

use std::path::Path;
use std::process::Output;

fn batch(file: &Path, extra: &[&str]) -> Output {
    common::benjamin()
        .env("BENJAMIN_SIGNING", file.parent().unwrap().join("keys"))
        .args(["--quiet", "batch"])
        .arg(file)
        .args(extra)
        .output()
        .unwrap()
}

fn festival(line_of_second: &str) -> String {
    format!(
        r#"
[defaults]
minutes = 0.3
hours = 0.02
screenplay_model = "gpt"
archive = "archive"
frame = {{ width = 160, height = 96, fps = 12 }}

[[entry]]
title = "Rain / ../../Escape"
genre = "noir"
line = "Where were you?"
prop = "brass key"
seed = 1

[[entry]]
title = "Rain: ../../Escape"
genre = "romance"
line = "{line_of_second}"
seed = 2

[[entry]]
title = "No Footage"
genre = "scifi"
archive = "no-such-archive"
seed = 3
"#
    )
}

/// An archive with a few minutes of small footage, enough for three short films.
fn footage_archive(dir: &Path) {
    use benjamin::media::synth::{write_video, Segment};
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    for (i, rgb) in [[30u8, 30, 60], [200, 180, 120], [90, 140, 90], [60, 40, 40]]
        .into_iter()
        .enumerate()
    {
        let seg = |k: u8| Segment {
            frames: 240,
            rgb: [rgb[0].wrapping_add(k * 40), rgb[1], rgb[2]],
        };
        let name = format!("reel{i}.mp4");
        write_video(
            &media.join(&name),
            96,
            64,
            12,
            &[seg(0), seg(1), seg(2), seg(3)],
        )
        .unwrap();
        std::fs::write(
            media.join(format!("reel{i}.txt")),
            "Licence: CC0\nAttribution: benjamin tests\nrain street night day sea\n",
        )
        .unwrap();
    }
    let mut archive = benjamin::archive::Archive::open(&dir.join("archive")).unwrap();
    let opts = benjamin::archive::AddOptions {
        keywords_only: true,
        ..Default::default()
    };
    archive
        .add(&[media], &opts, &benjamin::progress::Progress::hidden())
        .unwrap();
}

fn modified(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn a_batch_makes_its_entries_apart_resumes_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    footage_archive(dir.path());
    let file = dir.path().join("fest.toml");
    std::fs::write(&file, festival("Stay.")).unwrap();

    let out = batch(&file, &[]);
    let fest = dir.path().join("fest");
    // What each entry ended with, for a failure's message.
    let err = format!(
        "{}
{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(fest.join("report.json")).unwrap_or_default()
    );
    assert!(!out.status.success(), "a failed entry fails the command");
    assert!(err.contains("1 entries failed"), "{err}");
    // Titles that look like paths stay inside the batch folder, each its own folder.
    let first = fest.join("rain-escape/film.mp4");
    let second = fest.join("rain-escape-2/film.mp4");
    assert!(first.is_file() && second.is_file(), "{err}");
    let outside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for name in &outside {
        assert!(
            ["fest", "fest.toml", "archive", "media", "keys"].contains(&name.as_str()),
            "written outside the batch folder: {name}"
        );
    }

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fest.join("report.json")).unwrap()).unwrap();
    let entries = report["entries"].as_array().unwrap();
    let states: Vec<&str> = entries
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["done", "done", "failed"]);
    assert!(
        entries[2]["error"].as_str().unwrap().contains("archive"),
        "{}",
        entries[2]
    );
    assert_eq!(entries[0]["seed"], 1);
    assert!(entries[0]["film_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(entries[0]["line_kept"], true, "{}", entries[0]);
    assert!(fest.join("rain-escape/contact-sheet.png").is_file());
    assert!(fest.join("rain-escape/poster.png").is_file());
    let html = std::fs::read_to_string(fest.join("report.html")).unwrap();
    assert!(html.contains("Rain / ../../Escape") && html.contains("rain-escape/film.mp4"));

    // A rerun redoes nothing done and skips the failure; an edited entry is made again.
    let (a, b) = (modified(&first), modified(&second));
    std::fs::write(&file, festival("Stay with me.")).unwrap();
    let out = batch(&file, &[]);
    assert!(!out.status.success());
    assert_eq!(modified(&first), a, "a done entry was made again");
    assert_ne!(modified(&second), b, "the edited entry was not made again");
    let script =
        std::fs::read_to_string(fest.join("rain-escape-2/screenplay/screenplay.fountain")).unwrap();
    assert!(script.contains("Stay with me."));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fest.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["entries"][2]["state"], "failed");
}

#[test]
fn a_bad_batch_file_names_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[[entry]]\ntitle = \"X\"\ngenre = \"noir\"\nfilm = \"/tmp/elsewhere\"\n",
    )
    .unwrap();
    let out = batch(&file, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.toml") && err.contains("`film` is not a batch key"),
        "{err}"
    );
    std::fs::write(&file, "[[entry]]\ntitel = \"X\"\n").unwrap();
    let err = String::from_utf8_lossy(&batch(&file, &[]).stderr).into_owned();
    assert!(
        err.contains("not a valid batch file") && err.contains("titel"),
        "{err}"
    );
}
