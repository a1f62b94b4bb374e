//! The faces on a GPU machine, needing no FFmpeg there (benches/gpu_check.sh carries it with
//! PNG faces and frames made on the CPU machine by faces_bench):
//!
//!   faces_gpu train A_DIR B_DIR SECONDS SIZE WIDTH LATENT BATCH [HELDOUT]
//!                                  steps/s and held-out SSIM, as faces_bench train
//!   faces_gpu convert FRAMES_DIR SIZE
//!                                  frames per second of detection + swap on PNG frames
use std::path::Path;

use anyhow::Result;

#[path = "faces_bench/shared.rs"]
mod shared;

fn main() -> Result<()> {
    benjamin::nn::configure_threads(false);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dev = benjamin::nn::device();
    // Its figures are the GPU's: on the CPU they would be read as the GPU's by mistake.
    anyhow::ensure!(
        dev.is_cuda(),
        "faces_gpu found no CUDA GPU (built without --features cuda, or no NVIDIA driver or GPU here)"
    );
    let report = match args.first().map(String::as_str) {
        Some("train") => shared::train(&args[1..], &dev)?,
        Some("convert") if args.len() == 3 => {
            let frames = shared::pngs(Path::new(&args[1]))?;
            let size: usize = args[2].parse()?;
            let [w, h] = frames.first().map_or([0, 0], |f| [f.width, f.height]);
            let mut conversion = shared::Conversion::new(size, &dev)?;
            if let Some(first) = frames.first() {
                conversion.frame(first.clone())?; // warm-up: kernels load on first use
                conversion.restart();
            }
            for f in frames {
                conversion.frame(f)?;
            }
            conversion.report([w, h])
        }
        _ => anyhow::bail!("usage: see the top of examples/faces_gpu.rs"),
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
