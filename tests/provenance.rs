//! Content Credentials: a cut film carries a signed C2PA manifest that `benjamin verify` reads
//! back; one changed byte or a stripped manifest fails verification. Each test signs with a key
//! of its own (`BENJAMIN_SIGNING`), made on first use.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn benjamin(keys: &Path) -> Command {
    let mut cmd = common::benjamin();
    cmd.env("BENJAMIN_SIGNING", keys);
    cmd
}

/// Cuts the common test edit list into `dir/film.mp4` with `keys`.
fn signed_film(dir: &Path, keys: &Path) -> PathBuf {
    let media = common::make_media(dir);
    let edl = dir.join("edl.json");
    std::fs::write(
        &edl,
        serde_json::to_vec_pretty(&common::edit_list(&media)).unwrap(),
    )
    .unwrap();
    let out = dir.join("film.mp4");
    let cut = common::run_ok(
        benjamin(keys)
            .args(["cut", "--preset", "ultrafast", "--edl"])
            .arg(&edl)
            .arg("--out")
            .arg(&out),
    );
    let said = String::from_utf8_lossy(&cut.stderr);
    assert!(said.contains("self-made certificate"), "{said}");
    out
}

fn verify(keys: &Path, film: &Path) -> (Output, serde_json::Value) {
    let out = benjamin(keys)
        .args(["verify", "--json"])
        .arg(film)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, json)
}

#[test]
fn a_cut_film_verifies_and_names_its_sources_and_maker() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let film = signed_film(dir.path(), &keys);
    for f in ["cert.pem", "key.pem", "ca.pem"] {
        assert!(keys.join(f).is_file(), "{f} was not made");
    }

    let (out, json) = verify(&keys, &film);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["verdict"], "trusted", "{json}");
    assert!(
        json["digital_source_type"]
            .as_str()
            .unwrap()
            .ends_with("trainedAlgorithmicMedia"),
        "{json}"
    );
    let record = &json["provenance"];
    assert!(record["made_by"].as_str().unwrap().starts_with("benjamin "));
    assert_eq!(record["title"], "Test: A \"Quoted\" Title, 100% Real");
    // Every source of the edit list once, with its licence, attribution and hash.
    let sources = record["sources"].as_array().unwrap();
    let names: Vec<&str> = sources
        .iter()
        .map(|s| s["file"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["clip.mp4", "still.png"]);
    for s in sources {
        assert_eq!(s["licence"], "CC0");
        assert_eq!(s["attribution"], "benjamin tests");
        let file = dir.path().join("media").join(s["file"].as_str().unwrap());
        assert_eq!(s["hash"], benjamin::fsutil::hash_file(&file).unwrap());
    }
    // Ordinary MP4 tags too.
    benjamin::media::ffmpeg::init().unwrap();
    let input = benjamin::media::ffmpeg::format::input(&film).unwrap();
    let tags = input.metadata();
    assert_eq!(tags.get("title"), record["title"].as_str());
    let comment = tags.get("comment").unwrap_or_default();
    assert!(
        comment.contains("made by benjamin") && comment.contains("AI-generated"),
        "{comment}"
    );
    // The same record beside the film, for tools without C2PA.
    let beside: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("film.provenance.json")).unwrap())
            .unwrap();
    assert_eq!(&beside, record);

    // Another machine's key: the signature is valid but not trusted here.
    let (out, json) = verify(&dir.path().join("other-keys"), &film);
    assert!(out.status.success());
    assert_eq!(json["verdict"], "untrusted", "{json}");
}

/// The offset of the first `mdat` box's payload of an MP4.
fn mdat_payload(bytes: &[u8]) -> usize {
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if &bytes[at + 4..at + 8] == b"mdat" {
            return at + 8;
        }
        assert!(size >= 8, "a box of size {size}");
        at += size;
    }
    panic!("no mdat box");
}

/// The MP4 without its top-level `uuid` boxes (where C2PA keeps the manifest).
fn strip_manifest(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let size = if size == 0 { bytes.len() - at } else { size };
        if &bytes[at + 4..at + 8] != b"uuid" {
            out.extend_from_slice(&bytes[at..at + size]);
        }
        at += size;
    }
    out
}

#[test]
fn a_changed_byte_or_a_stripped_manifest_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let film = signed_film(dir.path(), &keys);
    let bytes = std::fs::read(&film).unwrap();

    let mut altered = bytes.clone();
    let at = mdat_payload(&altered) + 1000;
    altered[at] ^= 0x55;
    let altered_path = dir.path().join("altered.mp4");
    std::fs::write(&altered_path, &altered).unwrap();
    let (out, json) = verify(&keys, &altered_path);
    assert!(!out.status.success());
    assert_eq!(json["verdict"], "invalid", "{json}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("altered after it was signed"), "{err}");

    let stripped_path = dir.path().join("stripped.mp4");
    std::fs::write(&stripped_path, strip_manifest(&bytes)).unwrap();
    let (out, json) = verify(&keys, &stripped_path);
    assert!(!out.status.success());
    assert_eq!(json["verdict"], "missing", "{json}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Content Credentials"), "{err}");
}
