//! The archive: shot detection on generated videos with cuts at known frames, ingest of a
//! folder with a damaged file, sidecars, re-adding, removing, and the text index with a tiny
//! BERT saved in all-MiniLM's layout.

mod common;

use std::path::Path;

use benjamin::archive::chunks::{scan, scan_exact, scan_in_chunks};
use benjamin::archive::{
    AddOptions, Archive, DetectorConfig, Method, SentenceEmbedder, ShotDetector,
};
use benjamin::media::synth::{
    write_edited_video, write_edited_video_with, write_still, write_video, Join, Segment,
};
use benjamin::progress::Progress;

const COLOURS: [[u8; 3]; 6] = [
    [200, 40, 40],
    [30, 160, 60],
    [40, 60, 200],
    [220, 200, 60],
    [120, 40, 160],
    [40, 180, 180],
];

fn segments(lengths: &[usize]) -> Vec<Segment> {
    lengths
        .iter()
        .enumerate()
        .map(|(i, &frames)| Segment {
            frames,
            rgb: COLOURS[i % COLOURS.len()],
        })
        .collect()
}

#[test]
fn hard_cuts_and_fades_are_found_at_their_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.mp4");
    let segs = segments(&[40, 23, 61, 30, 45]);
    let joins = [
        Join::Cut,
        Join::Fade {
            out: 6,
            black: 5,
            fade_in: 6,
        },
        Join::Cut,
        Join::Fade {
            out: 4,
            black: 12,
            fade_in: 3,
        },
    ];
    let starts = write_edited_video(&path, 240, 160, 24, &segs, &joins).unwrap();
    let s = scan(&path, &DetectorConfig::default(), |_| Ok(())).unwrap();
    assert_eq!(s.frames.len(), starts[4] + 45);
    for method in [Method::Adaptive, Method::Content] {
        let d = ShotDetector::new(DetectorConfig {
            method,
            ..Default::default()
        });
        assert_eq!(d.cut_frames(&s.frames), starts[1..].to_vec(), "{method:?}");
        let shots = d.shots(&s.frames);
        assert_eq!(shots.len(), 5);
        // No black frame inside a shot.
        for sh in &shots {
            assert!(s.frames[sh.start..sh.end].iter().all(|f| f.luma >= 12.0));
        }
    }
}

#[test]
fn a_dissolve_is_found_within_its_blend() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dissolve.mp4");
    let segs = vec![
        Segment {
            frames: 50,
            rgb: [40, 40, 40],
        },
        Segment {
            frames: 50,
            rgb: [225, 225, 225],
        },
    ];
    let starts = write_edited_video(&path, 240, 160, 24, &segs, &[Join::Dissolve(10)]).unwrap();
    let s = scan(&path, &DetectorConfig::default(), |_| Ok(())).unwrap();
    let cuts = ShotDetector::new(DetectorConfig::default()).cut_frames(&s.frames);
    assert_eq!(cuts.len(), 1, "{cuts:?}");
    assert!(
        cuts[0].abs_diff(starts[1]) <= 5,
        "{cuts:?} vs {}",
        starts[1]
    );
}

#[test]
fn skipping_b_frames_finds_the_same_boundaries_as_decoding_every_frame() {
    // veryfast keeps P-frames independent of B-frames; medium predicts P-frames from them,
    // which the sparse scan must notice.
    let dir = tempfile::tempdir().unwrap();
    let segs = segments(&[40, 33, 61, 30, 45, 52]);
    let joins = [
        Join::Cut,
        Join::Fade {
            out: 6,
            black: 5,
            fade_in: 6,
        },
        Join::Cut,
        Join::Dissolve(12),
        Join::Cut,
    ];
    for preset in ["veryfast", "medium"] {
        let path = dir.path().join(format!("{preset}.mp4"));
        let starts = write_edited_video_with(&path, (240, 160, 24), &segs, &joins, preset).unwrap();
        let sparse = scan(&path, &DetectorConfig::default(), |_| Ok(())).unwrap();
        let exact = scan_exact(&path, |_| Ok(())).unwrap();
        assert_eq!(sparse.frames.len(), exact.frames.len(), "{preset}");
        for (a, b) in sparse.frames.iter().zip(&exact.frames) {
            assert_eq!(a.time, b.time, "{preset}");
        }
        let d = ShotDetector::new(DetectorConfig::default());
        let cuts = d.cut_frames(&sparse.frames);
        assert_eq!(cuts, d.cut_frames(&exact.frames), "{preset}");
        // Cut into chunks scanned side by side, the scan has the same frames and cuts.
        for chunks in [1, 2, 5] {
            let chunked =
                scan_in_chunks(&path, &DetectorConfig::default(), Some(chunks), |_| Ok(()))
                    .unwrap();
            let times = |s: &benjamin::archive::scan::Scan| -> Vec<f64> {
                s.frames.iter().map(|f| f.time).collect()
            };
            assert_eq!(times(&chunked), times(&exact), "{preset}, {chunks} chunks");
            assert_eq!(
                d.cut_frames(&chunked.frames),
                cuts,
                "{preset}, {chunks} chunks"
            );
        }
        assert_eq!(cuts.len(), 5, "{preset}: {cuts:?}");
        for (k, (&found, &truth)) in cuts.iter().zip(&starts[1..]).enumerate() {
            // Hard cuts and the end of a fade are exact; a dissolve's middle is a guess.
            let slack = if k == 3 { 3 } else { 0 };
            assert!(
                found.abs_diff(truth) <= slack,
                "{preset}: {cuts:?} vs {starts:?}"
            );
        }
    }
}

fn clip(path: &Path, lengths: &[usize]) {
    write_video(path, 160, 120, 24, &segments(lengths)).unwrap();
}

#[test]
fn a_folder_is_ingested_with_a_damaged_file_skipped_and_readding_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(media.join("sub")).unwrap();
    clip(&media.join("harbour.mp4"), &[30, 40, 30]);
    std::fs::write(
        media.join("harbour.json"),
        r#"{"description": "Night rain over the harbour", "licence": "CC0", "attribution": "Test Footage Co."}"#,
    )
    .unwrap();
    write_still(&media.join("sub/sky.png"), 160, 90, [30, 60, 200]).unwrap();
    std::fs::write(media.join("broken.mp4"), b"this is not a video at all").unwrap();
    let pose = benjamin::faces::synth::Pose {
        cx: 160.0,
        cy: 120.0,
        size: 110.0,
        angle: 0.0,
        mouth_open: 0.2,
    };
    benjamin::faces::synth::face_picture(320, 240, &benjamin::faces::synth::Look::A, &pose)
        .save(media.join("sub/portrait.png"))
        .unwrap();
    std::fs::write(media.join("notes.txt"), b"not media").unwrap();

    let archive_dir = dir.path().join("archive");
    let mut a = Archive::open(&archive_dir).unwrap();
    let opts = AddOptions {
        keywords_only: true,
        ..Default::default()
    };
    let report = a
        .add(std::slice::from_ref(&media), &opts, &Progress::hidden())
        .unwrap();
    assert_eq!(report.added.len(), 3, "{report:?}");
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].0.ends_with("broken.mp4"));
    assert!(
        report.failed[0].1.contains("broken.mp4"),
        "{}",
        report.failed[0].1
    );

    let sources = a.sources().unwrap();
    let harbour = sources
        .iter()
        .find(|s| s.path.ends_with("harbour.mp4"))
        .unwrap();
    assert_eq!(harbour.shots.len(), 3);
    assert_eq!(harbour.licence.as_deref(), Some("CC0"));
    assert!(harbour.shots[0].text.contains("harbour"));
    assert!((harbour.shots[1].start - 30.0 / 24.0).abs() < 1e-6);
    assert!(harbour
        .shots
        .iter()
        .all(|s| archive_dir.join(&s.thumbnail).is_file()));
    // Bright yellow against dark purple: the measurements tell them apart.
    assert!(harbour.shots[1].luma > harbour.shots[0].luma);
    assert!(harbour.shots.iter().all(|s| s.colour));
    let sky = sources
        .iter()
        .find(|s| s.path.ends_with("sky.png"))
        .unwrap();
    assert!(sky.still);
    assert_eq!(sky.shots.len(), 1);

    let again = a
        .add(std::slice::from_ref(&media), &opts, &Progress::hidden())
        .unwrap();
    assert!(again.added.is_empty());
    assert_eq!(again.unchanged.len(), 3);

    // An ingest interrupted after the first source left only its record: the next add
    // does the rest and nothing twice.
    std::fs::remove_file(archive_dir.join(format!("sources/{}.json", sky.id))).unwrap();
    let resumed = a
        .add(std::slice::from_ref(&media), &opts, &Progress::hidden())
        .unwrap();
    assert_eq!(resumed.added.len(), 1);
    assert!(resumed.added[0].ends_with("sky.png"));
    assert_eq!(resumed.unchanged.len(), 2);

    let (hits, _) = a.search("rain in the harbour", 3).unwrap();
    assert!(hits[0].path.ends_with("harbour.mp4"));
    assert!(hits[0].score > 0.0);

    let removed = a.remove(&[harbour.id[..8].to_string()]).unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(a.sources().unwrap().len(), 2);
    assert!(!archive_dir.join(&harbour.shots[0].thumbnail).exists());
}

/// A BERT with random weights, in all-MiniLM-L6-v2's file layout.
fn tiny_bert(dir: &Path) {
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};
    use candle_transformers::models::bert::{BertModel, Config};
    std::fs::create_dir_all(dir).unwrap();
    let words = [
        "rain", "harbour", "night", "ship", "dock", "sun", "meadow", "flower", "city", "car",
        "the", "a", "over", "in", "on",
    ];
    let mut vocab = serde_json::Map::new();
    for (i, t) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        .iter()
        .chain(words.iter())
        .enumerate()
    {
        vocab.insert(t.to_string(), i.into());
    }
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let config = serde_json::json!({
        "vocab_size": vocab.len(), "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 32, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "max_position_embeddings": 64, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "model_type": "bert"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let cfg: Config = serde_json::from_value(config).unwrap();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    BertModel::load(vb, &cfg).unwrap();
    varmap.save(dir.join("model.safetensors")).unwrap();
}

#[test]
fn a_tiny_bert_in_minilm_layout_loads_and_embeds_to_unit_vectors() {
    let dir = tempfile::tempdir().unwrap();
    tiny_bert(&dir.path().join("bert"));
    let e = SentenceEmbedder::load(&dir.path().join("bert")).unwrap();
    assert_eq!(e.id.dim, 16);
    let texts = vec![
        "rain over the harbour".to_string(),
        "a sun meadow".to_string(),
    ];
    let v = e.embed(&texts).unwrap();
    assert_eq!(v.len(), 2);
    for x in &v {
        let norm: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    assert_ne!(v[0], v[1]);
    // Same text, same vector, alone or in a batch.
    let alone = e.embed(&texts[..1]).unwrap().remove(0);
    assert!(alone.iter().zip(&v[0]).all(|(a, b)| (a - b).abs() < 1e-5));
}

#[test]
fn a_truncated_model_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bert = dir.path().join("bert");
    tiny_bert(&bert);
    let bytes = std::fs::read(bert.join("model.safetensors")).unwrap();
    std::fs::write(bert.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let err = format!("{:#}", SentenceEmbedder::load(&bert).err().unwrap());
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn the_index_round_trips_through_the_command_line_with_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let bert = dir.path().join("bert");
    tiny_bert(&bert);
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    clip(&media.join("docks.mp4"), &[30, 30]);
    std::fs::write(
        media.join("docks.txt"),
        "Licence: CC0\nrain over the harbour at night\n",
    )
    .unwrap();
    clip(&media.join("field.mp4"), &[40]);
    std::fs::write(media.join("field.txt"), "Licence: CC0\na sun meadow\n").unwrap();
    let archive = dir.path().join("archive");
    let bin = env!("CARGO_BIN_EXE_benjamin");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(args)
            .env("BENJAMIN_MINILM", &bert)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let a = archive.to_str().unwrap();
    run(&["archive", "add", media.to_str().unwrap(), "--archive", a]);
    let info = std::fs::read_to_string(archive.join("archive.json")).unwrap();
    assert!(info.contains("\"dim\": 16"), "{info}");
    let found: serde_json::Value = serde_json::from_str(&run(&[
        "--json",
        "archive",
        "search",
        "rain over the harbour at night",
        "--archive",
        a,
    ]))
    .unwrap();
    assert_eq!(found["matching"], "embeddings");
    let hits = found["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 3);
    // The exact sidecar text embeds to the same vector: similarity 1.
    assert!(hits[0]["path"].as_str().unwrap().ends_with("docks.mp4"));
    assert!((hits[0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-3);
    let listed: serde_json::Value =
        serde_json::from_str(&run(&["--json", "archive", "list", "--archive", a])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(
        listed[0]["shots"][0]["embedding"].as_array().unwrap().len(),
        16
    );
}
