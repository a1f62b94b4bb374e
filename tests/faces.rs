//! The faces: actors and consent, MTCNN against a recorded reference, alignment, the swap
//! model, conversion and the stage. Everything here makes its own pictures; no real face.

mod common;

use std::path::Path;
use std::process::Command;

use benjamin::faces::actors;
use benjamin::progress::Progress;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_benjamin"))
}

const CONSENT: &str = "name = \"Ana Lima\"\nsigned_by = \"Ana Lima\"\ndate = \"2024-05-01\"\nuses = [\"face-swap\"]\n";

fn photos(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("photos");
    std::fs::create_dir_all(&p).unwrap();
    for i in 0..3 {
        benjamin::media::synth::write_still(&p.join(format!("{i}.png")), 64, 64, [200, 150, 120])
            .unwrap();
    }
    p
}

#[test]
fn actors_need_a_valid_consent_record() {
    let dir = tempfile::tempdir().unwrap();
    let actors_dir = dir.path().join("actors");
    let photos = photos(dir.path());
    // No record at all: refused, nothing written.
    let out = bin()
        .args(["actors", "add", "Ana Lima", "--photos"])
        .arg(&photos)
        .arg("--consent")
        .arg(dir.path().join("missing.toml"))
        .arg("--actors")
        .arg(&actors_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("consent"), "{err}");
    assert!(actors::list(&actors_dir).unwrap().is_empty());
    // A record for someone else: refused.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, CONSENT.replace("Ana Lima", "Bo Chen")).unwrap();
    let out = bin()
        .args(["actors", "add", "Ana Lima", "--photos"])
        .arg(&photos)
        .arg("--consent")
        .arg(&other)
        .arg("--actors")
        .arg(&actors_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not for"));

    let consent = dir.path().join("consent.toml");
    std::fs::write(&consent, CONSENT).unwrap();
    common::run_ok(
        bin()
            .args(["actors", "add", "Ana Lima", "--photos"])
            .arg(&photos)
            .arg("--consent")
            .arg(&consent)
            .arg("--actors")
            .arg(&actors_dir),
    );
    let list = common::run_ok(bin().args(["actors", "list", "--actors"]).arg(&actors_dir));
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("Ana Lima") && text.contains("consent valid"), "{text}");
    let actor = actors::find(&actors_dir, "ana lima").unwrap();
    assert_eq!(actor.photos().unwrap().len(), 3);
    actor.consent().unwrap();

    // The record removed by hand: the actor is refused with a clear error.
    std::fs::remove_file(actor.consent_path()).unwrap();
    let err = format!("{:#}", actor.consent().unwrap_err());
    assert!(err.contains("no consent record") && err.contains("Ana Lima"), "{err}");

    common::run_ok(
        bin()
            .args(["actors", "remove", "Ana Lima", "--actors"])
            .arg(&actors_dir),
    );
    assert!(actors::list(&actors_dir).unwrap().is_empty());
}

#[test]
fn actor_photos_can_come_from_a_video() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("ana.mp4");
    benjamin::media::synth::write_video(
        &video,
        64,
        48,
        10,
        &[benjamin::media::synth::Segment {
            frames: 20,
            rgb: [180, 120, 100],
        }],
    )
    .unwrap();
    let consent = dir.path().join("consent.toml");
    std::fs::write(&consent, CONSENT).unwrap();
    let actor = actors::add(
        &dir.path().join("actors"),
        "Ana Lima",
        &video,
        &consent,
        &Progress::hidden(),
    )
    .unwrap();
    let photos = actor.photos().unwrap();
    assert_eq!(photos.len(), 4, "{photos:?}");
    let img = image::open(&photos[0]).unwrap();
    assert_eq!((img.width(), img.height()), (64, 48));
}
