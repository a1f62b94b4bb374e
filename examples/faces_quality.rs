//! How the swap model's held-out SSIM grows with training, and what a face at each SSIM looks
//! like: the evidence behind the faces stage's bar (`faces::budget::GOOD_SSIM`).
//!
//!   cargo run --release --example faces_quality -- OUT_DIR [RESOLUTION]
//!
//! Two drawn identities (no real person), 24 aligned faces each, every eighth held out.
//! Prints steps, seconds and held-out SSIM, and writes OUT_DIR/steps-N.png: the held-out
//! faces (top) over the model's rebuilding of them (bottom).

use std::time::{Duration, Instant};

use anyhow::Result;
use benjamin::faces::budget::{held_out_ssim, hold_out};
use benjamin::faces::model::ModelConfig;
use benjamin::faces::synth::{aligned_faces, Look};
use benjamin::faces::tensors::{from_tensor, to_tensor};
use benjamin::faces::train::{FaceSet, TrainOptions, Trainer};
use benjamin::progress::Progress;
use benjamin::vision::image::Planar;

fn main() -> Result<()> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or("faces-quality".into()));
    let resolution: usize = std::env::args()
        .nth(2)
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(32);
    std::fs::create_dir_all(&out)?;
    let device = benjamin::nn::device();
    let names = vec!["actor".to_string(), "shots".to_string()];
    let config = ModelConfig {
        resolution,
        width: 16,
        latent: 128,
        identities: names.clone(),
    };
    let mut sets: Vec<FaceSet> = [Look::A, Look::B]
        .iter()
        .enumerate()
        .map(|(i, look)| FaceSet {
            name: names[i].clone(),
            faces: aligned_faces(look, 24, resolution, 40 + i as u64),
        })
        .collect();
    let held = hold_out(&mut sets);
    let mut trainer = Trainer::open(&config, None, &device)?;
    let started = Instant::now();
    println!("| steps | seconds | held-out SSIM (actor) |");
    println!("|---|---|---|");
    for steps in [0usize, 30, 100, 300, 1000, 3000, 10000] {
        if steps > 0 {
            let opts = TrainOptions {
                max_steps: Some(steps),
                ..Default::default()
            };
            let far = Instant::now() + Duration::from_secs(3600);
            trainer.train(&sets, &opts, far, &Progress::hidden())?;
        }
        let q = held_out_ssim(&trainer.model, &held, &names[..1])?.unwrap_or(f32::NAN);
        println!(
            "| {steps} | {:.0} | {q:.3} |",
            started.elapsed().as_secs_f64()
        );
        strip(&trainer, &held[0], &out.join(format!("steps-{steps}.png")))?;
    }
    Ok(())
}

/// The held-out faces over their rebuilding, side by side.
fn strip(trainer: &Trainer, held: &FaceSet, path: &std::path::Path) -> Result<()> {
    let r = trainer.model.config.resolution;
    let refs: Vec<&Planar> = held.faces.iter().collect();
    let x = to_tensor(&refs, &trainer.model.device)?;
    let (faces, _) = trainer.model.forward(&x, 0)?;
    let mut img = image::RgbImage::new((r * held.faces.len()) as u32, (2 * r) as u32);
    for (i, original) in held.faces.iter().enumerate() {
        for (row, face) in [original.clone(), from_tensor(&faces, i)?]
            .iter()
            .enumerate()
        {
            let rgb = face.to_rgb();
            image::imageops::overlay(&mut img, &rgb, (i * r) as i64, (row * r) as i64);
        }
    }
    img.save(path)?;
    Ok(())
}
