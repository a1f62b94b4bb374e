//! Generates the small media that examples/demo/edl.json cuts:
//!
//!     cargo run --release --example demo_media
//!     target/release/benjamin cut --edl examples/demo/edl.json --out examples/demo/film.mp4
//!
//! Everything is made here (test patterns, a still, tones), so it is free of any licence.

use std::path::Path;

use anyhow::Result;
use benjamin::media::synth::{write_still, write_tone, write_video, Segment};

fn main() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/media");
    std::fs::create_dir_all(&dir)?;
    // Two clips with hard cuts at known frames, at sizes and rates unlike the film's.
    write_video(
        &dir.join("street.mp4"),
        640,
        480,
        30,
        &[
            Segment {
                frames: 60,
                rgb: [40, 60, 120],
            },
            Segment {
                frames: 60,
                rgb: [160, 90, 40],
            },
            Segment {
                frames: 60,
                rgb: [30, 120, 60],
            },
        ],
    )?;
    write_video(
        &dir.join("harbour.mp4"),
        480,
        640,
        25,
        &[
            Segment {
                frames: 75,
                rgb: [90, 90, 110],
            },
            Segment {
                frames: 50,
                rgb: [200, 180, 60],
            },
        ],
    )?;
    write_still(&dir.join("moon.png"), 800, 600, [20, 30, 70])?;
    // Two lines of "dialogue" and a music bed, as tones.
    write_tone(&dir.join("line1.wav"), 1.6, 330.0, 0.6, 22_050)?;
    write_tone(&dir.join("line2.wav"), 1.2, 440.0, 0.6, 22_050)?;
    write_tone(&dir.join("score.wav"), 9.0, 110.0, 0.3, 44_100)?;
    println!("wrote demo media to {}", dir.display());
    Ok(())
}
