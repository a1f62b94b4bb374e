//! The faces benchmarks' Rust side (benches/faces_vs_pytorch.sh drives it):
//!
//!   faces_bench detect IMAGE...                       faces and seconds per image (JSON)
//!   faces_bench frames VIDEO OUTDIR N                 N evenly spaced frames as PNG
//!   faces_bench export VIDEO OUTDIR SIZE              the largest face of every frame, aligned (PNG)
//!   faces_bench train A_DIR B_DIR SECONDS SIZE WIDTH LATENT BATCH [HELDOUT]
//!                                                     trains two identities; steps/s and SSIM of
//!                                                     A's held-out faces rebuilt by A's decoder
//!   faces_bench synth OUTDIR N SIZE                  N aligned drawn faces (no real person)
//!   faces_bench convert VIDEO SECONDS SIZE            conversion frames per second
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use benjamin::faces::align::{alignment, warp};
use benjamin::faces::convert::{swap_frame, Replacement};
use benjamin::faces::model::ModelConfig;
use benjamin::faces::train::{from_tensor, to_tensor, FaceSet, TrainOptions, Trainer};
use benjamin::progress::Progress;
use benjamin::vision::detect::for_each_frame;
use benjamin::vision::image::{ssim, Planar};
use benjamin::vision::mtcnn::Mtcnn;

fn pngs(dir: &Path) -> Result<Vec<Planar>> {
    let files = benjamin::faces::actors::list_images(dir)?;
    files
        .iter()
        .map(|f| Ok(Planar::from_rgb(&image::open(f)?.to_rgb8())))
        .collect()
}

fn main() -> Result<()> {
    benjamin::nn::configure_threads(false);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dev = benjamin::nn::device();
    match args.first().map(String::as_str) {
        Some("detect") => {
            let det = Mtcnn::embedded(&dev)?;
            let mut out = Vec::new();
            for path in &args[1..] {
                let img = Planar::from_rgb(&image::open(path)?.to_rgb8());
                det.detect(&img)?; // warm-up
                let t = Instant::now();
                let faces = det.detect(&img)?;
                out.push(serde_json::json!({"path": path, "seconds": t.elapsed().as_secs_f64(), "faces": faces}));
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"images": out}))?
            );
        }
        Some("frames") => {
            let (video, dir, n) = (
                Path::new(&args[1]),
                PathBuf::from(&args[2]),
                args[3].parse::<usize>()?,
            );
            std::fs::create_dir_all(&dir)?;
            let info = benjamin::media::source::probe(video)?;
            let step = info.duration / n as f64;
            for k in 0..n {
                let t = (k as f64 + 0.5) * step;
                for_each_frame(video, t, 1, 1.0, |_, img| {
                    img.save(dir.join(format!("frame{:03}_{:06.2}.png", k, t)))?;
                    Ok(())
                })?;
            }
        }
        Some("export") => {
            let (video, dir, size) = (
                Path::new(&args[1]),
                PathBuf::from(&args[2]),
                args[3].parse::<usize>()?,
            );
            std::fs::create_dir_all(&dir)?;
            let det = Mtcnn::embedded(&dev)?;
            let info = benjamin::media::source::probe(video)?;
            let fps = 3.0;
            let count = (info.duration * fps) as usize;
            let mut n = 0;
            for_each_frame(video, 0.0, count, fps, |k, img| {
                let p = Planar::from_rgb(img);
                if let Some(d) = det
                    .detect(&p)?
                    .into_iter()
                    .filter(|d| d.score > 0.95 && d.height() > 40.0)
                    .max_by(|a, b| a.height().total_cmp(&b.height()))
                {
                    warp(&p, &alignment(&d.landmarks, size), size)
                        .to_rgb()
                        .save(dir.join(format!("{k:05}.png")))?;
                    n += 1;
                }
                Ok(())
            })?;
            eprintln!("{n} faces from {count} frames");
        }
        Some("train") => {
            let a = pngs(Path::new(&args[1]))?;
            let b = pngs(Path::new(&args[2]))?;
            let seconds: f64 = args[3].parse()?;
            let (size, width, latent, batch): (usize, usize, usize, usize) = (
                args[4].parse()?,
                args[5].parse()?,
                args[6].parse()?,
                args[7].parse()?,
            );
            let held: usize = args
                .get(8)
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or(a.len() / 5);
            // The last `held` faces of A (the end of the video) are never trained on.
            let (train_a, test_a) = a.split_at(a.len() - held);
            let cfg = ModelConfig {
                resolution: size,
                width,
                latent,
                identities: vec!["a".into(), "b".into()],
            };
            let mut t = Trainer::open(&cfg, None, &dev)?;
            let sets = vec![
                FaceSet {
                    name: "a".into(),
                    faces: train_a.to_vec(),
                },
                FaceSet {
                    name: "b".into(),
                    faces: b,
                },
            ];
            let opts = TrainOptions {
                batch,
                ..Default::default()
            };
            let report = t.train(
                &sets,
                &opts,
                Instant::now() + Duration::from_secs_f64(seconds),
                &Progress::hidden(),
            )?;
            let mut total = 0.0;
            for f in test_a {
                let x = to_tensor(&[f], &dev)?;
                // The decoder's own painting, not the masked composite (which could copy the input).
                let (face, _mask) = t.model.forward(&x, 0)?;
                total += ssim(&from_tensor(&face, 0)?, f);
            }
            let out = serde_json::json!({
                "framework": "benjamin (candle)", "steps": report.steps, "seconds": report.seconds,
                "steps_per_second": report.steps_per_second, "parameters": report.parameters,
                "heldout_faces": test_a.len(), "heldout_ssim": total / test_a.len().max(1) as f32,
                "reconstruction": report.reconstruction,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Some("synth") => {
            let (dir, n, size) = (
                PathBuf::from(&args[1]),
                args[2].parse::<usize>()?,
                args[3].parse::<usize>()?,
            );
            std::fs::create_dir_all(&dir)?;
            let faces =
                benjamin::faces::synth::aligned_faces(&benjamin::faces::synth::Look::B, n, size, 7);
            for (i, f) in faces.iter().enumerate() {
                f.to_rgb().save(dir.join(format!("{i:05}.png")))?;
            }
        }
        Some("convert") => {
            let video = Path::new(&args[1]);
            let seconds: f64 = args[2].parse()?;
            let size: usize = args[3].parse()?;
            let cfg = ModelConfig {
                resolution: size,
                width: 32,
                latent: 256,
                identities: vec!["a".into(), "b".into()],
            };
            let t = Trainer::open(&cfg, None, &dev)?;
            let det = Mtcnn::embedded(&dev)?;
            let info = benjamin::media::source::probe(video)?;
            let count = (seconds * info.frame_rate) as usize;
            let (mut det_s, mut swap_s, mut faces) = (0.0, 0.0, 0);
            let started = Instant::now();
            for_each_frame(video, 60.0, count, info.frame_rate, |_, img| {
                let mut p = Planar::from_rgb(img);
                let t0 = Instant::now();
                let found = det.detect(&p)?;
                det_s += t0.elapsed().as_secs_f64();
                let reps: Vec<Replacement> = found
                    .iter()
                    .map(|d| Replacement {
                        landmarks: d.landmarks,
                        identity: 1,
                    })
                    .collect();
                faces += reps.len();
                let t1 = Instant::now();
                swap_frame(&mut p, &reps, &t.model)?;
                swap_s += t1.elapsed().as_secs_f64();
                Ok(())
            })
            .context("converting")?;
            let all = started.elapsed().as_secs_f64();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "frames": count, "faces": faces, "size": [info.width, info.height],
                    "frames_per_second": count as f64 / all, "detect_seconds": det_s, "swap_seconds": swap_s,
                    "swap_frames_per_second": count as f64 / swap_s, "resolution": size,
                }))?
            );
        }
        _ => anyhow::bail!("usage: see the top of examples/faces_bench.rs"),
    }
    Ok(())
}
