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
use std::time::Instant;

use anyhow::{Context, Result};
use benjamin::faces::align::{alignment, warp};
use benjamin::vision::detect::for_each_frame;
use benjamin::vision::image::Planar;
use benjamin::vision::mtcnn::Mtcnn;

mod shared;

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
            let report = shared::train(&args[1..], &dev)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
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
            let mut conversion = shared::Conversion::new(size, &dev)?;
            let info = benjamin::media::source::probe(video)?;
            let count = (seconds * info.frame_rate) as usize;
            for_each_frame(video, 60.0, count, info.frame_rate, |_, img| {
                conversion.frame(Planar::from_rgb(img))
            })
            .context("converting")?;
            let report = conversion.report([info.width as usize, info.height as usize]);
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        _ => anyhow::bail!("usage: see the top of examples/faces_bench.rs"),
    }
    Ok(())
}
