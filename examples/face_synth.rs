//! Writes drawn faces (no real person) to a folder: `cargo run --example face_synth -- DIR`.
use benjamin::faces::synth::{face_picture, Look, Pose};

fn main() -> anyhow::Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or("face-synth".into()));
    std::fs::create_dir_all(&dir)?;
    for (i, (look, size, angle)) in [
        (Look::A, 80.0, 0.0),
        (Look::B, 60.0, 0.15),
        (Look::A, 40.0, -0.1),
    ]
    .into_iter()
    .enumerate()
    {
        let pose = Pose {
            cx: 80.0,
            cy: 70.0,
            size,
            angle,
            mouth_open: 0.3,
        };
        face_picture(160, 140, &look, &pose).save(dir.join(format!("face{i}.png")))?;
    }
    // The MTCNN test fixture: two faces on one picture (tests/fixtures/mtcnn_input.png).
    let mut img = benjamin::faces::synth::background(200, 150, [120.0, 100.0, 90.0]);
    for (look, pose) in [
        (
            Look::A,
            Pose {
                cx: 60.0,
                cy: 70.0,
                size: 70.0,
                angle: 0.05,
                mouth_open: 0.2,
            },
        ),
        (
            Look::B,
            Pose {
                cx: 150.0,
                cy: 80.0,
                size: 46.0,
                angle: -0.2,
                mouth_open: 0.6,
            },
        ),
    ] {
        benjamin::faces::synth::draw_face(&mut img, &look, &pose);
    }
    img.save(dir.join("mtcnn_input.png"))?;
    Ok(())
}
