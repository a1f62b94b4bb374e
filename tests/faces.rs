//! The faces: actors and consent, MTCNN against a recorded reference, alignment, the swap
//! model, conversion and the stage. Everything here makes its own pictures; no real face.

mod common;

use std::path::Path;
use std::process::Command;

use benjamin::faces::actors;
use benjamin::progress::Progress;

fn bin() -> Command {
    common::benjamin()
}

use common::CONSENT;

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
    assert!(
        text.contains("Ana Lima") && text.contains("consent valid"),
        "{text}"
    );
    let actor = actors::find(&actors_dir, "ana lima").unwrap();
    assert_eq!(actor.photos().unwrap().len(), 3);
    actor.consent().unwrap();

    // The record removed by hand: the actor is refused with a clear error.
    std::fs::remove_file(actor.consent_path()).unwrap();
    let err = format!("{:#}", actor.consent().unwrap_err());
    assert!(
        err.contains("no consent record") && err.contains("Ana Lima"),
        "{err}"
    );

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
        false,
        &Progress::hidden(),
    )
    .unwrap();
    let photos = actor.photos().unwrap();
    assert_eq!(photos.len(), 4, "{photos:?}");
    // Another name with the same folder, or the same name again, never replaces the actor
    // unless asked to.
    for clash in ["Ana Lima", "ANA LIMA!"] {
        let err = actors::add(
            &dir.path().join("actors"),
            clash,
            &video,
            &consent,
            false,
            &Progress::hidden(),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("--replace"), "{err:#}");
    }
    assert_eq!(actor.photos().unwrap().len(), 4);
    assert!(actor.dir.join("consent.toml").is_file());
    let img = image::open(&photos[0]).unwrap();
    assert_eq!((img.width(), img.height()), (64, 48));
}

mod mtcnn {
    use benjamin::vision::image::Planar;
    use benjamin::vision::mtcnn::Mtcnn;
    use candle_core::{Device, Tensor};

    fn fixture() -> serde_json::Value {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mtcnn_reference.json"),
        )
        .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    use std::path::Path;

    fn floats(v: &serde_json::Value) -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    }

    fn close(ours: &[f32], theirs: &[f32], tol: f32, what: &str) {
        assert_eq!(ours.len(), theirs.len(), "{what}: lengths differ");
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            assert!((a - b).abs() <= tol, "{what}[{i}]: {a} vs PyTorch {b}");
        }
    }

    /// The input the fixture script feeds the networks: sin(0.37 x + 0.23 y + 1.1 c + phase) * 0.8 + 0.05 n.
    fn pattern(n: usize, h: usize, w: usize, phase: f32) -> Tensor {
        let mut v = Vec::with_capacity(n * 3 * h * w);
        for k in 0..n {
            for c in 0..3 {
                for y in 0..h {
                    for x in 0..w {
                        v.push(
                            (0.37 * x as f32 + 0.23 * y as f32 + 1.1 * c as f32 + phase).sin()
                                * 0.8
                                + 0.05 * k as f32,
                        );
                    }
                }
            }
        }
        Tensor::from_vec(v, (n, 3, h, w), &Device::Cpu).unwrap()
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// The three networks give PyTorch's outputs (recorded by benches/faces_mtcnn_pytorch.py --raw).
    #[test]
    fn networks_match_the_pytorch_reference() {
        let raw = &fixture()["raw"];
        let det = Mtcnn::embedded(&Device::Cpu).unwrap();
        let (reg, prob) = det.pnet_forward(&pattern(1, 30, 36, 0.0)).unwrap();
        close(&flat(&reg), &floats(&raw["pnet_reg"]), 1e-4, "pnet reg");
        close(&flat(&prob), &floats(&raw["pnet_prob"]), 1e-5, "pnet prob");
        let (reg, prob) = det.rnet_forward(&pattern(2, 24, 24, 0.5)).unwrap();
        close(&flat(&reg), &floats(&raw["rnet_reg"]), 1e-4, "rnet reg");
        close(&flat(&prob), &floats(&raw["rnet_prob"]), 1e-5, "rnet prob");
        let (reg, marks, prob) = det.onet_forward(&pattern(2, 48, 48, 1.0)).unwrap();
        close(&flat(&reg), &floats(&raw["onet_reg"]), 1e-4, "onet reg");
        close(
            &flat(&marks),
            &floats(&raw["onet_marks"]),
            1e-4,
            "onet marks",
        );
        close(&flat(&prob), &floats(&raw["onet_prob"]), 1e-5, "onet prob");
    }

    /// The whole cascade finds the drawn faces where facenet-pytorch's MTCNN finds them.
    #[test]
    fn detection_matches_the_pytorch_reference() {
        let fx = fixture();
        let want = fx["images"][0]["faces"].as_array().unwrap();
        let img = image::open(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mtcnn_input.png"),
        )
        .unwrap()
        .to_rgb8();
        let det = Mtcnn::embedded(&Device::Cpu).unwrap();
        let mut got = det.detect(&Planar::from_rgb(&img)).unwrap();
        assert_eq!(got.len(), want.len(), "{got:?}");
        assert_eq!(got.len(), 2);
        got.sort_by(|a, b| b.score.total_cmp(&a.score));
        for (g, w) in got.iter().zip(want) {
            close(&g.bbox, &floats(&w["bbox"]), 0.05, "box");
            close(
                &[g.score],
                &[w["score"].as_f64().unwrap() as f32],
                1e-4,
                "score",
            );
            let marks: Vec<f32> = g.landmarks.iter().flatten().copied().collect();
            let theirs: Vec<f32> = w["landmarks"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(floats)
                .collect();
            close(&marks, &theirs, 0.05, "landmarks");
        }
    }

    /// A picture without a face yields nothing.
    #[test]
    fn no_face_no_detection() {
        let img = benjamin::faces::synth::background(160, 120, [100.0, 120.0, 90.0]);
        let det = Mtcnn::embedded(&Device::Cpu).unwrap();
        assert!(det.detect(&Planar::from_rgb(&img)).unwrap().is_empty());
    }
}

mod align {
    use benjamin::faces::align::{alignment, paste, template, umeyama, warp, Affine};
    use benjamin::faces::synth::{face_picture, landmarks, Look, Pose};
    use benjamin::vision::image::Planar;

    /// Umeyama recovers a known similarity from the landmarks it moved, and its inverse undoes it.
    #[test]
    fn alignment_round_trips_a_known_similarity() {
        let t = template(64);
        let known = Affine::similarity(2.7, 0.45, 130.0, 42.0);
        let moved: Vec<[f32; 2]> = t.iter().map(|p| known.apply(*p)).collect();
        let est = umeyama(&moved, &t);
        let back = est.compose(&known);
        for (a, b) in back.0.iter().zip([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]) {
            assert!((a - b).abs() < 1e-4, "{back:?}");
        }
        let est_known = umeyama(&t, &moved);
        for (a, b) in est_known.0.iter().zip(known.0) {
            assert!(
                (a - b).abs() < 1e-3 * b.abs().max(1.0),
                "{est_known:?} vs {known:?}"
            );
        }
        // Noise on the landmarks moves the estimate only a little.
        let noisy: Vec<[f32; 2]> = moved
            .iter()
            .enumerate()
            .map(|(i, p)| {
                [
                    p[0] + [0.5, -0.3, 0.2, -0.4, 0.1][i],
                    p[1] + [-0.2, 0.4, -0.5, 0.3, 0.0][i],
                ]
            })
            .collect();
        let est = umeyama(&noisy, &t);
        assert!((est.scale() - 1.0 / 2.7).abs() < 0.01, "{}", est.scale());
    }

    /// A drawn face warped into the square and back lands on itself.
    #[test]
    fn warp_and_paste_round_trip_a_face() {
        let pose = Pose {
            cx: 90.0,
            cy: 75.0,
            size: 70.0,
            angle: 0.3,
            mouth_open: 0.2,
        };
        let img = Planar::from_rgb(&face_picture(180, 150, &Look::A, &pose));
        let m = alignment(&landmarks(&Look::A, &pose), 64);
        let square = warp(&img, &m, 64);
        // The eyes of the aligned face sit on the template's eyes: a dark iris within a pixel or two.
        let t = template(64);
        for eye in [t[0], t[1]] {
            let (ex, ey) = (eye[0].round() as usize, eye[1].round() as usize);
            let darkest = (ey - 2..=ey + 2)
                .flat_map(|y| (ex - 2..=ex + 2).map(move |x| (x, y)))
                .map(|(x, y)| square.at(x, y, 0))
                .fold(f32::MAX, f32::min);
            assert!(darkest < 90.0, "no iris at the template's eye: {darkest}");
        }
        // Pasting the square back with a full mask changes the face region only a little.
        let mut back = img.clone();
        let mut mask = Planar::new(64, 64, 1);
        mask.data.iter_mut().for_each(|v| *v = 1.0);
        paste(&mut back, &square, &mask, &m);
        let (mut err, mut n) = (0f32, 0);
        for y in 60..90 {
            for x in 75..105 {
                for c in 0..3 {
                    err += (back.at(x, y, c) - img.at(x, y, c)).abs();
                    n += 1;
                }
            }
        }
        assert!(err / (n as f32) < 6.0, "mean error {}", err / n as f32);
        // Far from the face nothing changed at all.
        assert_eq!(back.at(2, 2, 0), img.at(2, 2, 0));
    }
}

mod swap {
    use benjamin::faces::model::ModelConfig;
    use benjamin::faces::synth::{aligned_faces, Look};
    use benjamin::faces::train::{FaceSet, TrainOptions, Trainer};
    use benjamin::progress::Progress;
    use candle_core::Device;
    use std::time::{Duration, Instant};

    fn sets(r: usize) -> Vec<FaceSet> {
        vec![
            FaceSet {
                name: "a".into(),
                faces: aligned_faces(&Look::A, 24, r, 1),
            },
            FaceSet {
                name: "b".into(),
                faces: aligned_faces(&Look::B, 24, r, 2),
            },
        ]
    }

    fn config(r: usize) -> ModelConfig {
        ModelConfig {
            resolution: r,
            width: 8,
            latent: 32,
            identities: vec!["a".into(), "b".into()],
        }
    }

    /// A tiny model's reconstruction loss falls on drawn faces.
    #[test]
    fn a_tiny_swap_model_learns_drawn_faces() {
        let sets = sets(16);
        let mut t = Trainer::open(&config(16), None, &Device::Cpu).unwrap();
        let opts = TrainOptions {
            batch: 6,
            lr: 1e-3,
            max_steps: Some(150),
            ..Default::default()
        };
        let far = Instant::now() + Duration::from_secs(3600);
        let report = t.train(&sets, &opts, far, &Progress::hidden()).unwrap();
        assert_eq!(report.steps, 150);
        let h = &report.history;
        let first = h[..3].iter().map(|p| p.1).sum::<f32>() / 3.0;
        let last = h[h.len() - 3..].iter().map(|p| p.1).sum::<f32>() / 3.0;
        assert!(last < first * 0.7, "loss {first} -> {last}: {h:?}");
        assert!(report.reconstruction.iter().all(|r| r.is_finite()));
    }

    /// Training stopped and started again continues from the saved step and weights.
    #[test]
    fn training_resumes_from_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let sets = sets(16);
        let far = Instant::now() + Duration::from_secs(3600);
        let opts = TrainOptions {
            batch: 2,
            max_steps: Some(3),
            ..Default::default()
        };
        let mut t = Trainer::open(&config(16), Some(dir.path()), &Device::Cpu).unwrap();
        t.train(&sets, &opts, far, &Progress::hidden()).unwrap();
        let saved = benjamin::faces::train::load_model(dir.path(), &Device::Cpu).unwrap();
        let x = benjamin::faces::tensors::to_tensor(&[&sets[0].faces[0]], &Device::Cpu).unwrap();
        let before = t.model.forward(&x, 1).unwrap().0;
        let after = saved.forward(&x, 1).unwrap().0;
        let diff = (before - after)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "{diff}");
        let mut t = Trainer::open(&config(16), Some(dir.path()), &Device::Cpu).unwrap();
        assert_eq!(t.report.steps, 3);
        let opts = TrainOptions {
            max_steps: Some(5),
            ..opts
        };
        let r = t.train(&sets, &opts, far, &Progress::hidden()).unwrap();
        assert_eq!((r.resumed_from, r.steps), (3, 5));
        // Another shape starts afresh.
        let other = ModelConfig {
            width: 4,
            ..config(16)
        };
        assert_eq!(
            Trainer::open(&other, Some(dir.path()), &Device::Cpu)
                .unwrap()
                .report
                .steps,
            0
        );
    }
}

mod conversion {
    use benjamin::faces::convert::{swap_frame, Replacement};
    use benjamin::faces::model::{ModelConfig, SwapModel};
    use benjamin::faces::synth::{background, draw_face, landmarks, Look, Pose};
    use benjamin::vision::image::Planar;
    use candle_core::Device;

    fn model() -> SwapModel {
        let cfg = ModelConfig {
            resolution: 32,
            width: 8,
            latent: 16,
            identities: vec!["a".into(), "b".into()],
        };
        SwapModel::new(&cfg, &Device::Cpu).unwrap()
    }

    /// Frames without a face come out byte for byte as they went in; with a face, only the
    /// face's neighbourhood changes.
    #[test]
    fn conversion_leaves_face_free_frames_byte_identical() {
        let model = model();
        let plain = background(160, 120, [90.0, 60.0, 40.0]);
        let mut frame = Planar::from_rgb(&plain);
        swap_frame(&mut frame, &[], &model).unwrap();
        assert_eq!(frame.to_rgb().as_raw(), plain.as_raw());

        let mut img = background(160, 120, [90.0, 60.0, 40.0]);
        let pose = Pose {
            cx: 110.0,
            cy: 60.0,
            size: 50.0,
            angle: 0.1,
            mouth_open: 0.3,
        };
        draw_face(&mut img, &Look::A, &pose);
        let mut frame = Planar::from_rgb(&img);
        let faces = [Replacement {
            landmarks: landmarks(&Look::A, &pose),
            identity: 1,
        }];
        swap_frame(&mut frame, &faces, &model).unwrap();
        let out = frame.to_rgb();
        let mut changed_near = 0;
        for (x, y, p) in out.enumerate_pixels() {
            let far =
                (x as f32 - pose.cx).abs() > pose.size || (y as f32 - pose.cy).abs() > pose.size;
            if far {
                assert_eq!(
                    p,
                    img.get_pixel(x, y),
                    "pixel {x},{y} far from the face changed"
                );
            } else if p != img.get_pixel(x, y) {
                changed_near += 1;
            }
        }
        assert!(
            changed_near > 300,
            "the face was not replaced ({changed_near} pixels changed)"
        );
        assert_eq!(out.get_pixel(2, 2), img.get_pixel(2, 2));
    }
}

mod import {
    use std::path::Path;

    /// The converter's reader of legacy PyTorch files gathers strided views into row-major order.
    #[test]
    fn legacy_pytorch_files_are_read_with_their_strides() {
        let bytes = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy_state_dict.pt"),
        )
        .unwrap();
        let dict = benjamin::faces::weights::read_legacy_state_dict(&bytes).unwrap();
        let names: Vec<&str> = dict.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["conv.bias", "conv.weight", "scalar"]);
        let w = &dict[1].1;
        assert_eq!(w.dims(), &[4, 2, 3]);
        let want: Vec<f32> = (0..4)
            .flat_map(|k| (0..6).map(move |i| (i * 4 + k) as f32))
            .collect();
        assert_eq!(w.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want);
        assert_eq!(dict[0].1.to_vec1::<f32>().unwrap(), vec![0.5, -1.25]);
        assert_eq!(dict[2].1.dims(), &[] as &[usize]);
        // Anything else is refused with a reason.
        let err = benjamin::faces::weights::read_legacy_state_dict(b"PK\x03\x04rest").unwrap_err();
        assert!(err.to_string().contains("zip"), "{err}");
    }

    /// `faces detect --json` reports the drawn faces of the fixture.
    #[test]
    fn faces_detect_prints_boxes_and_landmarks() {
        let out = super::common::run_ok(
            super::bin()
                .args(["--json", "faces", "detect"])
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mtcnn_input.png")),
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let faces = v["frames"][0]["faces"].as_array().unwrap();
        assert_eq!(faces.len(), 2, "{v}");
        assert_eq!(faces[0]["landmarks"].as_array().unwrap().len(), 5);
    }
}
