//! One pass over a source at low resolution: the per-frame measurements that the shot
//! detector and the shot statistics need, and a few small pictures to pick thumbnails from.

use std::path::Path;

use anyhow::{anyhow, Context, Result};

use crate::media::ffmpeg::{self, decoder, format, frame, media, software::scaling};

/// Width of the pictures the analysis works on: plenty to see a cut, cheap to compare.
pub const ANALYSIS_WIDTH: u32 = 128;
/// Frames between the two pictures compared to find a dissolve.
pub const DISSOLVE_LAG: usize = 12;
/// At most this many pictures are kept as thumbnail candidates, whatever the length.
const MAX_KEPT: usize = 600;

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

/// An HSV picture at analysis size.
struct Hsv {
    h: Vec<u8>,
    s: Vec<u8>,
    v: Vec<u8>,
    y: Vec<u8>,
}

impl Hsv {
    fn from_rgb(rgb: &[u8]) -> Hsv {
        let n = rgb.len() / 3;
        let (mut h, mut s, mut v, mut y) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for px in rgb.chunks_exact(3) {
            let (r, g, b) = (px[0] as i32, px[1] as i32, px[2] as i32);
            let max = r.max(g).max(b);
            let min = r.min(g).min(b);
            let delta = max - min;
            let sat = if max == 0 { 0 } else { 255 * delta / max };
            let hue = if delta == 0 {
                0
            } else if max == r {
                (30 * (g - b) / delta).rem_euclid(180)
            } else if max == g {
                60 + 30 * (b - r) / delta
            } else {
                120 + 30 * (r - g) / delta
            };
            h.push(hue as u8);
            s.push(sat as u8);
            v.push(max as u8);
            y.push(((77 * r + 150 * g + 29 * b) >> 8) as u8);
        }
        Hsv { h, s, v, y }
    }

    /// Mean of the three channel differences, as PySceneDetect's content value.
    fn content_delta(&self, other: &Hsv) -> f32 {
        let n = self.h.len().max(1) as f32;
        let sum = |a: &[u8], b: &[u8]| -> f32 {
            a.iter()
                .zip(b)
                .map(|(x, y)| x.abs_diff(*y) as u32)
                .sum::<u32>() as f32
                / n
        };
        (sum(&self.h, &other.h) + sum(&self.s, &other.s) + sum(&self.v, &other.v)) / 3.0
    }

    fn luma_delta(&self, other: &Hsv) -> f32 {
        let n = self.y.len().max(1) as f32;
        self.y
            .iter()
            .zip(&other.y)
            .map(|(a, b)| a.abs_diff(*b) as u32)
            .sum::<u32>() as f32
            / n
    }

    fn stats(&self) -> (f32, f32, f32, [f32; 12]) {
        let n = self.y.len().max(1) as f64;
        let mean = self.y.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = self
            .y
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let sat = self.s.iter().map(|&v| v as f64).sum::<f64>() / n;
        let mut hue = [0f32; 12];
        for (h, s) in self.h.iter().zip(&self.s) {
            hue[(*h as usize / 15).min(11)] += *s as f32;
        }
        let total: f32 = hue.iter().sum::<f32>().max(1.0);
        hue.iter_mut().for_each(|v| *v /= total);
        (mean as f32, var.sqrt() as f32, sat as f32, hue)
    }
}

/// Decodes every frame of `path`, scaled down to [`ANALYSIS_WIDTH`], and measures it.
/// `on_frame` is called with the number of frames done (for progress) and may stop the scan
/// by returning an error (Ctrl-C).
pub fn scan(path: &Path, mut on_frame: impl FnMut(usize) -> Result<()>) -> Result<Scan> {
    crate::media::init();
    let mut input =
        format::input(path).map_err(|e| anyhow!("FFmpeg cannot read {}: {e}", path.display()))?;
    let stream = input
        .streams()
        .best(media::Type::Video)
        .with_context(|| format!("{} has no pictures (no video stream)", path.display()))?;
    let index = stream.index();
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
    let mut decoder = crate::media::source::video_decoder(stream.parameters(), path, true)?;
    let (width, height) = (decoder.width(), decoder.height());
    if width == 0 || height == 0 {
        anyhow::bail!(
            "{} has pictures of no size; it may be damaged",
            path.display()
        );
    }
    let aw = ANALYSIS_WIDTH.min(width).max(2) & !1;
    let ah = ((height as u64 * aw as u64 / width as u64) as u32).max(2) & !1;
    let expected = (duration * frame_rate).ceil().max(1.0) as usize;
    let stride = expected.div_ceil(MAX_KEPT).max(1);

    let mut state = ScanState {
        frames: Vec::with_capacity(expected),
        pictures: Vec::new(),
        history: std::collections::VecDeque::new(),
        stride,
    };
    let mut scaler: Option<scaling::Context> = None;
    let mut decoded = frame::Video::empty();
    let mut rgb = frame::Video::empty();
    let mut receive = |decoder: &mut decoder::Video, state: &mut ScanState| -> Result<()> {
        while decoder.receive_frame(&mut decoded).is_ok() {
            // (Re)built for the first picture and whenever the size or format changes mid-stream.
            let fits = scaler.as_ref().is_some_and(|sc| {
                let i = sc.input();
                (i.format, i.width, i.height)
                    == (decoded.format(), decoded.width(), decoded.height())
            });
            if !fits {
                scaler = Some(
                    scaling::Context::get(
                        decoded.format(),
                        decoded.width(),
                        decoded.height(),
                        format::Pixel::RGB24,
                        aw,
                        ah,
                        scaling::Flags::FAST_BILINEAR,
                    )
                    .map_err(|e| anyhow!("cannot scale the pictures of {}: {e}", path.display()))?,
                );
            }
            let sc = scaler.as_mut().expect("built above");
            sc.run(&decoded, &mut rgb)
                .map_err(|e| anyhow!("cannot scale a picture of {}: {e}", path.display()))?;
            let ts = decoded.timestamp().unwrap_or(start);
            let time = (ts - start) as f64 * time_base;
            state.push(time, &rgb, aw, ah);
            on_frame(state.frames.len())?;
        }
        Ok(())
    };
    for (s, packet) in input.packets() {
        if s.index() != index {
            continue;
        }
        // A damaged packet is skipped; the decoder recovers at the next keyframe.
        let _ = decoder.send_packet(&packet);
        receive(&mut decoder, &mut state)?;
    }
    let _ = decoder.send_eof();
    receive(&mut decoder, &mut state)?;
    if state.frames.is_empty() {
        anyhow::bail!(
            "{} yielded no picture; it may be damaged or truncated",
            path.display()
        );
    }
    Ok(Scan {
        frames: state.frames,
        pictures: state.pictures,
        frame_rate,
        width,
        height,
    })
}

struct ScanState {
    frames: Vec<FrameStats>,
    pictures: Vec<Picture>,
    /// The last DISSOLVE_LAG + 1 pictures, newest last.
    history: std::collections::VecDeque<Hsv>,
    stride: usize,
}

impl ScanState {
    fn push(&mut self, time: f64, rgb: &frame::Video, w: u32, h: u32) {
        let row = w as usize * 3;
        let stride = rgb.stride(0);
        let data = rgb.data(0);
        let mut packed = Vec::with_capacity(row * h as usize);
        for y in 0..h as usize {
            packed.extend_from_slice(&data[y * stride..y * stride + row]);
        }
        let hsv = Hsv::from_rgb(&packed);
        let (luma, contrast, saturation, hue) = hsv.stats();
        let (content, motion) = match self.history.back() {
            Some(prev) => (hsv.content_delta(prev), hsv.luma_delta(prev)),
            None => (0.0, 0.0),
        };
        let lagged = if self.history.len() >= DISSOLVE_LAG {
            hsv.content_delta(&self.history[self.history.len() - DISSOLVE_LAG])
        } else {
            0.0
        };
        let index = self.frames.len();
        self.frames.push(FrameStats {
            time,
            content,
            lagged,
            motion,
            luma,
            contrast,
            saturation,
            hue,
        });
        if index % self.stride == 0 {
            self.pictures.push(Picture {
                frame: index,
                width: w,
                height: h,
                rgb: packed,
            });
        }
        self.history.push_back(hsv);
        if self.history.len() > DISSOLVE_LAG {
            self.history.pop_front();
        }
    }
}
