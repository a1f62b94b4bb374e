//! Detection over a file: a picture, or the frames of a video.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::image::{Planar, RgbConverter};
use super::mtcnn::{Detection, Mtcnn};
use crate::media::source::VideoSource;
use crate::progress::Progress;

/// The faces of one frame, at `time` seconds into the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameFaces {
    pub time: f64,
    pub faces: Vec<Detection>,
}

/// Calls `each` with every frame of `path` from `start` for `count` frames at `fps` (a still
/// gives one frame), as RGB.
pub fn for_each_frame(
    path: &Path,
    start: f64,
    count: usize,
    fps: f64,
    mut each: impl FnMut(usize, &image::RgbImage) -> Result<()>,
) -> Result<()> {
    let mut src = VideoSource::open(path)?;
    let mut conv = RgbConverter::default();
    let mut k = 0;
    src.sample(start, count, fps, |frame| {
        let img = conv.to_rgb(frame)?;
        each(k, &img)?;
        k += 1;
        Ok(())
    })
}

/// Faces in a picture or in the frames of a video (every frame, or `fps` frames a second).
pub fn detect_file(
    det: &Mtcnn,
    path: &Path,
    fps: Option<f64>,
    progress: &Progress,
) -> Result<Vec<FrameFaces>> {
    let info = crate::media::source::probe(path)?;
    if info.still {
        let img = crate::fsutil::read_rgb_image(path)?;
        return Ok(vec![FrameFaces {
            time: 0.0,
            faces: det.detect(&Planar::from_rgb(&img))?,
        }]);
    }
    let fps = fps
        .unwrap_or(if info.frame_rate > 0.0 {
            info.frame_rate
        } else {
            25.0
        })
        .max(1e-3);
    let count = ((info.duration * fps).floor() as usize).max(1);
    let bar = progress.bar(count as u64, "detecting", "frames");
    let mut out = Vec::with_capacity(count);
    for_each_frame(path, 0.0, count, fps, |k, img| {
        crate::progress::check_interrupted()?;
        out.push(FrameFaces {
            time: k as f64 / fps,
            faces: det.detect(&Planar::from_rgb(img))?,
        });
        bar.inc(1);
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(out)
}
