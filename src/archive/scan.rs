//! What one pass over a source at low resolution yields: the per-frame measurements that the
//! shot detector and the shot statistics need, and a few small pictures to pick thumbnails
//! from; and how a source is opened for it. The passes themselves (`scan`, `scan_exact`)
//! are in [`super::chunks`], so this vocabulary imports none of its users.
//!
//! Decoding is most of the cost, so the scan first tries [`super::sparse`]: it leaves out
//! the pictures nothing else is predicted from (most B-frames) and goes back for them only
//! where the detector could place a boundary, in chunks scanned side by side on the cores
//! ([`super::chunks`]). Sources it cannot serve are decoded in full.

use std::path::Path;

use anyhow::{anyhow, Context, Result};

use crate::media::ffmpeg::{self, decoder, format, media};

/// Width of the pictures the analysis works on: plenty to see a cut, cheap to compare.
pub const ANALYSIS_WIDTH: u32 = 128;
/// Frames between the two pictures compared to find a dissolve.
pub const DISSOLVE_LAG: usize = 12;
/// At most this many pictures are kept as thumbnail candidates, whatever the length.
pub(super) const MAX_KEPT: usize = 600;

/// What one frame looks like, and how it differs from the frames before it. Differences are
/// on a 0-255 scale, HSV as OpenCV counts it (hue 0-179), like PySceneDetect's.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FrameStats {
    /// Seconds from the start of the source.
    pub time: f64,
    /// Mean of |dH|, |dS|, |dV| against the previous frame (0 for the first).
    pub content: f32,
    /// The same against the frame [`DISSOLVE_LAG`] frames back (0 before it).
    pub lagged: f32,
    /// Mean |dY| against the previous frame: how much moves.
    pub motion: f32,
    /// Mean luma, 0-255.
    pub luma: f32,
    /// Standard deviation of luma: the contrast.
    pub contrast: f32,
    /// Mean saturation, 0-255.
    pub saturation: f32,
    /// Saturation-weighted hue histogram in 12 bins of 30 degrees.
    pub hue: [f32; 12],
}

/// A small RGB picture kept from the scan.
#[derive(Debug, Clone)]
pub struct Picture {
    pub frame: usize,
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// The scan of one source.
#[derive(Debug, Clone)]
pub struct Scan {
    pub frames: Vec<FrameStats>,
    /// Evenly spread pictures (every `stride` frames) for thumbnails.
    pub pictures: Vec<Picture>,
    pub frame_rate: f64,
    pub width: u32,
    pub height: u32,
}

impl Scan {
    /// The kept picture nearest to `frame`.
    pub fn picture_near(&self, frame: usize) -> Option<&Picture> {
        self.pictures.iter().min_by_key(|p| p.frame.abs_diff(frame))
    }
}

/// The facts about a source's video stream that a scan needs.
pub(super) struct StreamInfo {
    pub index: usize,
    /// Seconds per timestamp unit.
    pub time_base: f64,
    /// Timestamp of the first frame.
    pub start: i64,
    pub frame_rate: f64,
    pub width: u32,
    pub height: u32,
    /// Frames the stream should hold, for sizing and progress.
    pub expected: usize,
}

/// Opens `path` and a decoder (without the deblocking filter, on `threads` threads, 0 for
/// as many as suit the cores) for its best video stream.
pub(super) fn open(
    path: &Path,
    threads: usize,
) -> Result<(format::context::Input, StreamInfo, decoder::Video)> {
    crate::media::init();
    let input =
        format::input(path).map_err(|e| anyhow!("FFmpeg cannot read {}: {e}", path.display()))?;
    let stream = input
        .streams()
        .best(media::Type::Video)
        .with_context(|| format!("{} has no pictures (no video stream)", path.display()))?;
    let tb = stream.time_base();
    let time_base = tb.numerator() as f64 / tb.denominator().max(1) as f64;
    let start = if stream.start_time() == ffmpeg::ffi::AV_NOPTS_VALUE {
        0
    } else {
        stream.start_time()
    };
    let rate = stream.avg_frame_rate();
    let frame_rate = if rate.denominator() > 0 && rate.numerator() > 0 {
        rate.numerator() as f64 / rate.denominator() as f64
    } else {
        25.0
    };
    let duration = if stream.duration() > 0 {
        stream.duration() as f64 * time_base
    } else {
        input.duration().max(0) as f64 / ffmpeg::ffi::AV_TIME_BASE as f64
    };
    let decoder = crate::media::source::video_decoder(stream.parameters(), path, true, threads)?;
    let (width, height) = (decoder.width(), decoder.height());
    if width == 0 || height == 0 {
        anyhow::bail!(
            "{} has pictures of no size; it may be damaged",
            path.display()
        );
    }
    let info = StreamInfo {
        index: stream.index(),
        time_base,
        start,
        frame_rate,
        width,
        height,
        expected: (duration * frame_rate).ceil().max(1.0) as usize,
    };
    Ok((input, info, decoder))
}
