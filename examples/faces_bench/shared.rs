//! What `faces_bench` and `faces_gpu` share: training two identities, and converting frames
//! (detection and swap), each timed. Neither touches FFmpeg, so `faces_gpu` links none.
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use benjamin::faces::convert::{swap_frame, Replacement};
use benjamin::faces::model::ModelConfig;
use benjamin::faces::tensors::{from_tensor, to_tensor};
use benjamin::faces::train::{FaceSet, TrainOptions, Trainer};
use benjamin::progress::Progress;
use benjamin::vision::image::{ssim, Planar};
use benjamin::vision::mtcnn::Mtcnn;
use candle_core::Device;

/// The PNG images of `dir`, in name order.
pub fn pngs(dir: &Path) -> Result<Vec<Planar>> {
    let files = benjamin::faces::actors::list_images(dir)?;
    files
        .iter()
        .map(|f| {
            let img = image::open(f).with_context(|| format!("cannot read {}", f.display()))?;
            Ok(Planar::from_rgb(&img.to_rgb8()))
        })
        .collect()
}

/// `A_DIR B_DIR SECONDS SIZE WIDTH LATENT BATCH [HELDOUT]`: trains two identities for
/// SECONDS; steps/s and the SSIM of A's held-out faces (the last HELDOUT, by default a fifth)
/// rebuilt by A's decoder.
pub fn train(args: &[String], dev: &Device) -> Result<serde_json::Value> {
    let [a, b, seconds, size, width, latent, batch, ..] = args else {
        anyhow::bail!("train needs A_DIR B_DIR SECONDS SIZE WIDTH LATENT BATCH [HELDOUT]");
    };
    let (a, b) = (pngs(Path::new(a))?, pngs(Path::new(b))?);
    let seconds: f64 = seconds.parse()?;
    let (size, width, latent, batch): (usize, usize, usize, usize) = (
        size.parse()?,
        width.parse()?,
        latent.parse()?,
        batch.parse()?,
    );
    let held: usize = args
        .get(7)
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
    let mut t = Trainer::open(&cfg, None, dev)?;
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
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let report = t.train(&sets, &opts, deadline, &Progress::hidden())?;
    let mut total = 0.0;
    for f in test_a {
        let x = to_tensor(&[f], dev)?;
        // The decoder's own painting, not the masked composite (which could copy the input).
        let (face, _mask) = t.model.forward(&x, 0)?;
        total += ssim(&from_tensor(&face, 0)?, f);
    }
    Ok(serde_json::json!({
        "framework": format!("benjamin (candle) on {dev:?}"), "steps": report.steps,
        "seconds": report.seconds, "steps_per_second": report.steps_per_second,
        "parameters": report.parameters, "heldout_faces": test_a.len(),
        "heldout_ssim": total / test_a.len().max(1) as f32, "reconstruction": report.reconstruction,
    }))
}

/// Detection and swap frame after frame, with an untrained model of `size` (the time is the
/// same whatever its weights).
pub struct Conversion {
    detector: Mtcnn,
    trainer: Trainer,
    size: usize,
    frames: usize,
    faces: usize,
    detect_s: f64,
    swap_s: f64,
    started: Instant,
}

impl Conversion {
    pub fn new(size: usize, dev: &Device) -> Result<Conversion> {
        let cfg = ModelConfig {
            resolution: size,
            width: 32,
            latent: 256,
            identities: vec!["a".into(), "b".into()],
        };
        Ok(Conversion {
            detector: Mtcnn::embedded(dev)?,
            trainer: Trainer::open(&cfg, None, dev)?,
            size,
            frames: 0,
            faces: 0,
            detect_s: 0.0,
            swap_s: 0.0,
            started: Instant::now(),
        })
    }

    pub fn frame(&mut self, mut frame: Planar) -> Result<()> {
        let t0 = Instant::now();
        let found = self.detector.detect(&frame)?;
        self.detect_s += t0.elapsed().as_secs_f64();
        let swaps: Vec<Replacement> = found
            .iter()
            .map(|d| Replacement {
                landmarks: d.landmarks,
                identity: 1,
            })
            .collect();
        self.faces += swaps.len();
        let t1 = Instant::now();
        swap_frame(&mut frame, &swaps, &self.trainer.model)?;
        self.swap_s += t1.elapsed().as_secs_f64();
        self.frames += 1;
        Ok(())
    }

    /// Forgets the frames so far (a warm-up's) and starts the clock again.
    #[allow(dead_code)] // faces_gpu's; faces_bench times its decoding too
    pub fn restart(&mut self) {
        (self.frames, self.faces, self.detect_s, self.swap_s) = (0, 0, 0.0, 0.0);
        self.started = Instant::now();
    }

    /// Frames per second over everything since [`Conversion::new`] (decoding included where
    /// the caller decodes), and of the swap alone.
    pub fn report(&self, frame_size: [usize; 2]) -> serde_json::Value {
        let all = self.started.elapsed().as_secs_f64();
        serde_json::json!({
            "frames": self.frames, "faces": self.faces, "size": frame_size,
            "frames_per_second": self.frames as f64 / all, "detect_seconds": self.detect_s,
            "swap_seconds": self.swap_s, "swap_frames_per_second": self.frames as f64 / self.swap_s,
            "resolution": self.size,
        })
    }
}
