//! Media that benjamin makes itself: test patterns with cuts at known frames, tones and stills.
//! The tests, the examples and the benchmarks use them; nothing here is shipped in a film.

use std::path::Path;

use anyhow::{Context, Result};

use super::ffmpeg::{format, frame};
use super::mp4::{Mp4Options, Mp4Writer};

/// A run of frames of one colour, with a square that moves across it.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub frames: usize,
    pub rgb: [u8; 3],
}

fn yuv(rgb: [u8; 3]) -> (u8, u8, u8) {
    let [r, g, b] = rgb.map(|c| c as f32);
    let y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b;
    let u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
    let v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
    (y.round() as u8, u.round() as u8, v.round() as u8)
}

/// A 4:2:0 picture: `rgb` background with a light square at horizontal position `square_x`.
pub fn pattern_frame(width: u32, height: u32, rgb: [u8; 3], square_x: u32) -> frame::Video {
    let mut f = frame::Video::new(format::Pixel::YUV420P, width, height);
    let (y, u, v) = yuv(rgb);
    let side = (height / 4).max(2);
    let top = height / 2 - side / 2;
    let (w, h) = (width as usize, height as usize);
    let stride = f.stride(0);
    let luma = f.data_mut(0);
    for row in 0..h {
        for col in 0..w {
            let inside = (col as u32) >= square_x
                && (col as u32) < square_x + side
                && (row as u32) >= top
                && (row as u32) < top + side;
            luma[row * stride + col] = if inside { 235 } else { y };
        }
    }
    for (plane, value) in [(1, u), (2, v)] {
        let stride = f.stride(plane);
        let data = f.data_mut(plane);
        for row in 0..h.div_ceil(2) {
            data[row * stride..row * stride + w.div_ceil(2)].fill(value);
        }
    }
    f
}

/// Writes an H.264 MP4 (no sound) whose segments change colour at known frames: a hard cut
/// between each segment. Returns the frame index where each segment starts.
pub fn write_video(
    path: &Path,
    width: u32,
    height: u32,
    fps: u32,
    segments: &[Segment],
) -> Result<Vec<usize>> {
    let cuts = vec![Join::Cut; segments.len().saturating_sub(1)];
    write_edited_video(path, width, height, fps, segments, &cuts)
}

/// How one segment gives way to the next in [`write_edited_video`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Join {
    Cut,
    /// The last `out` frames fade down, `black` black frames, the first `fade_in` frames of
    /// the next segment fade up.
    Fade {
        out: usize,
        black: usize,
        fade_in: usize,
    },
    /// `frames` frames blend one picture into the next, centred on the join.
    Dissolve(usize),
}

/// `a` blended towards `b` by `t` (0 = a, 1 = b), plane by plane.
fn blend(a: &frame::Video, b: &frame::Video, t: f32) -> frame::Video {
    let mut out = a.clone();
    for plane in 0..3 {
        let (pa, pb) = (a.data(plane), b.data(plane));
        for (i, v) in out.data_mut(plane).iter_mut().enumerate() {
            *v = (pa[i] as f32 * (1.0 - t) + pb[i] as f32 * t).round() as u8;
        }
    }
    out
}

fn black_frame(width: u32, height: u32) -> frame::Video {
    let mut f = frame::Video::new(format::Pixel::YUV420P, width, height);
    for (plane, v) in [(0, 16u8), (1, 128), (2, 128)] {
        f.data_mut(plane).fill(v);
    }
    f
}

/// Like [`write_video`], with fades and dissolves between segments (`joins[i]` between
/// segment i and i + 1). Returns the frame where each segment starts: for a fade, its first
/// frame out of black; for a dissolve, the middle of the blend.
pub fn write_edited_video(
    path: &Path,
    width: u32,
    height: u32,
    fps: u32,
    segments: &[Segment],
    joins: &[Join],
) -> Result<Vec<usize>> {
    write_edited_video_with(path, (width, height, fps), segments, joins, "ultrafast")
}

/// [`write_edited_video`] with another x264 preset: slower ones predict from B-frames, as
/// most real footage does.
pub fn write_edited_video_with(
    path: &Path,
    (width, height, fps): (u32, u32, u32),
    segments: &[Segment],
    joins: &[Join],
    preset: &str,
) -> Result<Vec<usize>> {
    let opts = Mp4Options {
        width,
        height,
        fps,
        preset: preset.into(),
        crf: 18,
    };
    let side = (height / 4).max(2);
    let picture = |seg: &Segment, i: usize| {
        let x = ((i as u32 * 4) % (width - side).max(1)).min(width - side);
        pattern_frame(width, height, seg.rgb, x)
    };
    let black = black_frame(width, height);
    let mut frames: Vec<frame::Video> = Vec::new();
    let mut starts = Vec::new();
    for (k, seg) in segments.iter().enumerate() {
        let into = if k == 0 { Join::Cut } else { joins[k - 1] };
        let out = joins.get(k).copied().unwrap_or(Join::Cut);
        match into {
            Join::Fade { black: n, .. } => frames.extend((0..n).map(|_| black.clone())),
            Join::Dissolve(_) | Join::Cut => {}
        }
        starts.push(frames.len());
        for i in 0..seg.frames {
            let mut f = picture(seg, i);
            if let Join::Fade { fade_in, .. } = into {
                if i < fade_in {
                    // From 30% up: the first frame out of black is clearly not black.
                    f = blend(&black, &f, 0.3 + 0.7 * i as f32 / fade_in as f32);
                }
            }
            if let Join::Fade { out: n, .. } = out {
                if i + n >= seg.frames {
                    let j = i + n - seg.frames + 1;
                    f = blend(&f, &black, 0.7 * j as f32 / n as f32);
                }
            }
            frames.push(f);
        }
        if let Join::Dissolve(n) = into {
            // Blend the frames around the join: the previous segment's tail into this head.
            let join = starts[k];
            let half = n / 2;
            for j in 0..n {
                let at = join - half + j;
                let t = (j + 1) as f32 / (n + 1) as f32;
                let prev = picture(
                    &segments[k - 1],
                    segments[k - 1].frames - half + j.min(half),
                );
                let next = picture(seg, j.saturating_sub(half));
                frames[at] = blend(&prev, &next, t);
            }
        }
    }
    let mut writer = Mp4Writer::create(path, &opts, None, Vec::new())
        .with_context(|| format!("cannot write {}", path.display()))?;
    for f in &mut frames {
        writer.write_frame(f)?;
    }
    writer.finish()?;
    Ok(starts)
}

/// Writes a mono 16-bit WAV sine tone.
pub fn write_tone(path: &Path, seconds: f64, freq: f64, amplitude: f64, rate: u32) -> Result<()> {
    let n = (seconds * rate as f64).round() as usize;
    let tone = (0..n).map(|i| {
        let v = amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin();
        (v * i16::MAX as f64) as i16
    });
    super::audio::write_wav(path, 1, rate, tone)
}

/// Writes a PNG still: a vertical gradient of `rgb` with a light disc in the middle.
pub fn write_still(path: &Path, width: u32, height: u32, rgb: [u8; 3]) -> Result<()> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let (dx, dy) = (
            x as f32 - width as f32 / 2.0,
            y as f32 - height as f32 / 2.0,
        );
        if (dx * dx + dy * dy).sqrt() < height as f32 / 6.0 {
            image::Rgb([230, 230, 230])
        } else {
            let k = 0.5 + 0.5 * y as f32 / height as f32;
            image::Rgb(rgb.map(|c| (c as f32 * k) as u8))
        }
    });
    img.save(path)
        .with_context(|| format!("cannot write {}", path.display()))
}
