//! Slow camera moves over a still (zooms and pans, the "Ken Burns" effect): a still becomes
//! several clips of footage with motion, each credited like the still it came from.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use super::sidecar;
use crate::fsutil::{self, AtomicFile};
use crate::media::ffmpeg::{format, frame, software::scaling};
use crate::media::mp4::{Mp4Options, Mp4Writer};

/// A camera move over the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Move {
    ZoomIn,
    ZoomOut,
    PanLeft,
    PanRight,
}

impl Move {
    pub const ALL: [Move; 4] = [Move::ZoomIn, Move::ZoomOut, Move::PanLeft, Move::PanRight];

    fn name(self) -> &'static str {
        match self {
            Move::ZoomIn => "zoom-in",
            Move::ZoomOut => "zoom-out",
            Move::PanLeft => "pan-left",
            Move::PanRight => "pan-right",
        }
    }

    /// The crop (centre x, centre y, scale of the largest frame-shaped crop) at `t` in 0..1.
    fn crop_at(self, t: f32) -> (f32, f32, f32) {
        // Ease in and out, like a camera operator.
        let e = 0.5 - 0.5 * (std::f32::consts::PI * t).cos();
        match self {
            Move::ZoomIn => (0.5, 0.5, 1.0 - 0.25 * e),
            Move::ZoomOut => (0.5, 0.5, 0.75 + 0.25 * e),
            Move::PanLeft => (0.6 - 0.2 * e, 0.5, 0.8),
            Move::PanRight => (0.4 + 0.2 * e, 0.5, 0.8),
        }
    }
}

/// Bilinear sample of an RGB image at (x, y) in pixels.
fn sample(img: &image::RgbImage, x: f32, y: f32) -> [u8; 3] {
    let (w, h) = (img.width() as i32, img.height() as i32);
    let (x0, y0) = (x.floor() as i32, y.floor() as i32);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let px = |xx: i32, yy: i32| {
        img.get_pixel(xx.clamp(0, w - 1) as u32, yy.clamp(0, h - 1) as u32)
            .0
    };
    let (a, b, c, d) = (
        px(x0, y0),
        px(x0 + 1, y0),
        px(x0, y0 + 1),
        px(x0 + 1, y0 + 1),
    );
    let mut out = [0u8; 3];
    for i in 0..3 {
        let top = a[i] as f32 * (1.0 - fx) + b[i] as f32 * fx;
        let bottom = c[i] as f32 * (1.0 - fx) + d[i] as f32 * fx;
        out[i] = (top * (1.0 - fy) + bottom * fy).round() as u8;
    }
    out
}

/// Renders `seconds` of `motion` over `still` into an H.264 MP4 of `width` x `height`.
pub fn animate(
    still: &Path,
    out: &Path,
    motion: Move,
    seconds: f64,
    (width, height, fps): (u32, u32, u32),
) -> Result<()> {
    let img = crate::fsutil::read_rgb_image(still)?;
    let (iw, ih) = (img.width() as f32, img.height() as f32);
    // The largest crop of the frame's shape that fits in the picture.
    let aspect = width as f32 / height as f32;
    let (full_w, full_h) = if iw / ih > aspect {
        (ih * aspect, ih)
    } else {
        (iw, iw / aspect)
    };
    let file = AtomicFile::new(out)?;
    let opts = Mp4Options {
        width,
        height,
        fps,
        preset: "veryfast".into(),
        crf: 20,
    };
    let mut writer = Mp4Writer::create(file.path(), &opts, None, Vec::new())?;
    let mut to_yuv = scaling::Context::get(
        format::Pixel::RGB24,
        width,
        height,
        format::Pixel::YUV420P,
        width,
        height,
        scaling::Flags::BILINEAR,
    )
    .map_err(|e| anyhow!("cannot convert pictures to YUV: {e}"))?;
    let frames = (seconds * fps as f64).round().max(1.0) as usize;
    let mut rgb = frame::Video::new(format::Pixel::RGB24, width, height);
    let mut yuv = frame::Video::empty();
    for k in 0..frames {
        crate::progress::check_interrupted()?;
        let (cx, cy, scale) = motion.crop_at(k as f32 / (frames.max(2) - 1) as f32);
        let (cw, ch) = (full_w * scale, full_h * scale);
        // Keep the crop inside the picture.
        let x0 = (cx * iw - cw / 2.0).clamp(0.0, iw - cw);
        let y0 = (cy * ih - ch / 2.0).clamp(0.0, ih - ch);
        let stride = rgb.stride(0);
        let data = rgb.data_mut(0);
        for y in 0..height as usize {
            let sy = y0 + (y as f32 + 0.5) * ch / height as f32 - 0.5;
            for x in 0..width as usize {
                let sx = x0 + (x as f32 + 0.5) * cw / width as f32 - 0.5;
                data[y * stride + 3 * x..y * stride + 3 * x + 3]
                    .copy_from_slice(&sample(&img, sx, sy));
            }
        }
        to_yuv
            .run(&rgb, &mut yuv)
            .map_err(|e| anyhow!("cannot convert a picture to YUV: {e}"))?;
        writer.write_frame(&mut yuv)?;
    }
    writer.finish()?;
    file.commit()
}

/// Animates each still with every move into `out_dir` (`<stem>-<move>.mp4`), each clip with
/// a JSON sidecar carrying the still's description, licence and attribution. Clips already
/// there are kept. Returns the clips.
pub fn animate_stills(
    stills: &[PathBuf],
    out_dir: &Path,
    seconds: f64,
    size: (u32, u32, u32),
    progress: &crate::progress::Progress,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let bar = progress.bar(
        (stills.len() * Move::ALL.len()) as u64,
        "animating",
        "clips",
    );
    let mut clips = Vec::new();
    for still in stills {
        let side = sidecar::read(still)?;
        let stem = still
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        for motion in Move::ALL {
            let clip = out_dir.join(format!("{stem}-{}.mp4", motion.name()));
            if !clip.is_file() {
                animate(still, &clip, motion, seconds, size)?;
            }
            let json = serde_json::json!({
                "title": side.title,
                "description": side.description,
                "tags": side.tags,
                "licence": side.licence,
                "attribution": side.attribution,
            });
            let text = serde_json::to_string_pretty(&json)?;
            let path = clip.with_extension("json");
            // Unchanged sidecars keep their timestamps, so re-adding finds nothing new.
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                fsutil::write_atomic(&path, text.as_bytes())?;
            }
            clips.push(clip);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(clips)
}
