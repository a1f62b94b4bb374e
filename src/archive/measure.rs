//! The measurements behind a scan: a small HSV copy of each decoded picture, and the per-frame
//! statistics built from them, with frames that were not decoded filled in from their neighbours.

use std::collections::VecDeque;
use std::path::Path;

use anyhow::{anyhow, Result};

use super::scan::{FrameStats, Picture, ANALYSIS_WIDTH, DISSOLVE_LAG};
use crate::media::ffmpeg::{format, frame, software::scaling};

/// A picture at analysis size: HSV as OpenCV counts it (hue 0-179), luma, and the RGB it came
/// from (kept for thumbnails).
#[derive(Clone)]
pub(super) struct Small {
    h: Vec<u8>,
    s: Vec<u8>,
    v: Vec<u8>,
    y: Vec<u8>,
    rgb: Vec<u8>,
    /// Mean luma, 0-255.
    pub(super) luma: f32,
}

impl Small {
    fn from_rgb(rgb: Vec<u8>) -> Small {
        let n = rgb.len() / 3;
        let (mut h, mut s, mut v, mut y) = (vec![0u8; n], vec![0u8; n], vec![0u8; n], vec![0u8; n]);
        let t = tables();
        let mut luma_sum = 0u32;
        let out = h.iter_mut().zip(&mut s).zip(v.iter_mut().zip(&mut y));
        for (px, ((h, s), (v, y))) in rgb.chunks_exact(3).zip(out) {
            let (r, g, b) = (px[0], px[1], px[2]);
            let max = r.max(g).max(b);
            let min = r.min(g).min(b);
            let delta = (max - min) as usize;
            let hue = if delta == 0 {
                0
            } else if max == r {
                let q = t.hue[delta * 511 + (g as usize + 255 - b as usize)] as i32;
                q.rem_euclid(180)
            } else if max == g {
                60 + t.hue[delta * 511 + (b as usize + 255 - r as usize)] as i32
            } else {
                120 + t.hue[delta * 511 + (r as usize + 255 - g as usize)] as i32
            };
            let luma = ((77 * r as u32 + 150 * g as u32 + 29 * b as u32) >> 8) as u8;
            *h = hue as u8;
            *s = t.sat[delta * 256 + max as usize];
            *v = max;
            *y = luma;
            luma_sum += luma as u32;
        }
        Small {
            h,
            s,
            v,
            y,
            rgb,
            luma: luma_sum as f32 / n.max(1) as f32,
        }
    }

    /// Mean of the three channel differences, as PySceneDetect's content value.
    pub(super) fn content_delta(&self, other: &Small) -> f32 {
        let sum = sum_abs_diff(&self.h, &other.h)
            + sum_abs_diff(&self.s, &other.s)
            + sum_abs_diff(&self.v, &other.v);
        sum as f32 / (3 * self.h.len().max(1)) as f32
    }

    fn luma_delta(&self, other: &Small) -> f32 {
        sum_abs_diff(&self.y, &other.y) as f32 / self.y.len().max(1) as f32
    }

    /// Same picture, bit for bit (the decoders agree).
    pub(super) fn same(&self, other: &Small) -> bool {
        self.rgb == other.rgb
    }

    fn stats(&self) -> (f32, f32, f32, [f32; 12]) {
        let n = self.y.len().max(1) as f64;
        // Integer sums: exact, and one pass instead of a mean then a variance.
        let (sum, squares) = self.y.iter().fold((0u64, 0u64), |(a, b), &v| {
            (a + v as u64, b + (v as u64) * (v as u64))
        });
        let mean = sum as f64 / n;
        let var = (squares as f64 / n - mean * mean).max(0.0);
        let sat = self.s.iter().map(|&v| v as u64).sum::<u64>() as f64 / n;
        let mut hue = [0u32; 12];
        for (h, s) in self.h.iter().zip(&self.s) {
            hue[(*h as usize / 15).min(11)] += *s as u32;
        }
        let total = hue.iter().sum::<u32>().max(1) as f32;
        (
            mean as f32,
            var.sqrt() as f32,
            sat as f32,
            hue.map(|v| v as f32 / total),
        )
    }
}

/// The divisions of the HSV conversion, done once: 30 * diff / delta for the hue and
/// 255 * delta / max for the saturation (integer division, as before).
struct Tables {
    /// Index delta * 511 + diff + 255.
    hue: Vec<i8>,
    /// Index delta * 256 + max.
    sat: Vec<u8>,
}

fn tables() -> &'static Tables {
    static TABLES: std::sync::OnceLock<Tables> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut hue = vec![0i8; 256 * 511];
        let mut sat = vec![0u8; 256 * 256];
        for delta in 1..256i32 {
            for diff in -255..=255i32 {
                hue[(delta * 511 + diff + 255) as usize] = (30 * diff / delta) as i8;
            }
            for max in delta..256 {
                sat[(delta * 256 + max) as usize] = (255 * delta / max) as u8;
            }
        }
        Tables { hue, sat }
    })
}

fn sum_abs_diff(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(x, y)| x.abs_diff(*y) as u32).sum()
}

/// Scales decoded pictures down to analysis size.
pub(super) struct Shrinker {
    scaler: Option<scaling::Context>,
    out: frame::Video,
    width: u32,
    height: u32,
}

impl Shrinker {
    /// For a source of `width` x `height`.
    pub(super) fn new(width: u32, height: u32) -> Shrinker {
        let w = ANALYSIS_WIDTH.min(width).max(2) & !1;
        let h = ((height as u64 * w as u64 / width.max(1) as u64) as u32).max(2) & !1;
        Shrinker {
            scaler: None,
            out: frame::Video::empty(),
            width: w,
            height: h,
        }
    }

    pub(super) fn shrink(&mut self, decoded: &frame::Video, path: &Path) -> Result<Small> {
        // (Re)built for the first picture and whenever the size or format changes mid-stream.
        let fits = self.scaler.as_ref().is_some_and(|sc| {
            let i = sc.input();
            (i.format, i.width, i.height) == (decoded.format(), decoded.width(), decoded.height())
        });
        if !fits {
            self.scaler = Some(
                scaling::Context::get(
                    decoded.format(),
                    decoded.width(),
                    decoded.height(),
                    format::Pixel::RGB24,
                    self.width,
                    self.height,
                    scaling::Flags::FAST_BILINEAR,
                )
                .map_err(|e| anyhow!("cannot scale the pictures of {}: {e}", path.display()))?,
            );
        }
        let sc = self.scaler.as_mut().expect("built above");
        sc.run(decoded, &mut self.out)
            .map_err(|e| anyhow!("cannot scale a picture of {}: {e}", path.display()))?;
        let row = self.width as usize * 3;
        let stride = self.out.stride(0);
        let data = self.out.data(0);
        let mut packed = Vec::with_capacity(row * self.height as usize);
        for y in 0..self.height as usize {
            packed.extend_from_slice(&data[y * stride..y * stride + row]);
        }
        Ok(Small::from_rgb(packed))
    }
}

/// Builds the per-frame statistics in display order. Every frame is either measured from its
/// picture or, when it was not decoded, filled in from the measured frames either side: its
/// looks interpolated, the difference across the gap shared out evenly.
pub(super) struct Emitter {
    pub(super) frames: Vec<FrameStats>,
    pub(super) pictures: Vec<Picture>,
    /// Measured frames back to just before DISSOLVE_LAG frames ago, newest last.
    history: VecDeque<(usize, Small)>,
    stride: usize,
    next_picture: usize,
    width: u32,
    height: u32,
}

impl Emitter {
    /// `expected` frames, of which about `max_kept` pictures are kept for thumbnails.
    pub(super) fn new(expected: usize, max_kept: usize, shrinker: &Shrinker) -> Emitter {
        Emitter {
            frames: Vec::with_capacity(expected),
            pictures: Vec::new(),
            history: VecDeque::new(),
            stride: expected.div_ceil(max_kept).max(1),
            next_picture: 0,
            width: shrinker.width,
            height: shrinker.height,
        }
    }

    /// The frame index the next frame will have.
    pub(super) fn len(&self) -> usize {
        self.frames.len()
    }

    /// A frame that was not decoded; filled in when the next measured frame comes.
    pub(super) fn skipped(&mut self, time: f64) {
        self.frames.push(FrameStats {
            time,
            ..Default::default()
        });
    }

    /// A decoded frame.
    pub(super) fn measured(&mut self, time: f64, small: Small) {
        let t = self.frames.len();
        let (luma, contrast, saturation, hue) = small.stats();
        let lagged = t
            .checked_sub(DISSOLVE_LAG)
            .and_then(|back| self.history.iter().min_by_key(|(i, _)| i.abs_diff(back)))
            .map_or(0.0, |(_, old)| small.content_delta(old));
        let mut f = FrameStats {
            time,
            content: 0.0,
            lagged,
            motion: 0.0,
            luma,
            contrast,
            saturation,
            hue,
        };
        match self.history.back() {
            Some((a, prev)) => {
                let a = *a;
                let k = (t - a) as f32;
                f.content = small.content_delta(prev) / k;
                f.motion = small.luma_delta(prev) / k;
                let fa = self.frames[a];
                for s in a + 1..t {
                    let w = (s - a) as f32 / k;
                    let g = &mut self.frames[s];
                    let lerp = |x: f32, y: f32| x + (y - x) * w;
                    g.content = f.content;
                    g.motion = f.motion;
                    g.lagged = lerp(fa.lagged, f.lagged);
                    g.luma = lerp(fa.luma, f.luma);
                    g.contrast = lerp(fa.contrast, f.contrast);
                    g.saturation = lerp(fa.saturation, f.saturation);
                    for (b, (x, y)) in g.hue.iter_mut().zip(fa.hue.iter().zip(&f.hue)) {
                        *b = lerp(*x, *y);
                    }
                }
            }
            // Frames before the first decoded one look like it.
            None => {
                for g in &mut self.frames {
                    *g = FrameStats { time: g.time, ..f };
                }
            }
        }
        self.frames.push(f);
        if t >= self.next_picture {
            self.pictures.push(Picture {
                frame: t,
                width: self.width,
                height: self.height,
                rgb: small.rgb.clone(),
            });
            self.next_picture = (t / self.stride + 1) * self.stride;
        }
        self.history.push_back((t, small));
        // An entry is no longer the nearest to any later frame's lag once the next one is
        // at or before this frame's lag.
        while self.history.len() >= 2 && self.history[1].0 + DISSOLVE_LAG <= t {
            self.history.pop_front();
        }
    }

    /// The statistics and pictures; frames after the last decoded one look like it.
    pub(super) fn finish(mut self, path: &Path) -> Result<(Vec<FrameStats>, Vec<Picture>)> {
        let Some(&(last, _)) = self.history.back() else {
            anyhow::bail!(
                "{} yielded no picture; it may be damaged or truncated",
                path.display()
            );
        };
        let fl = self.frames[last];
        for g in &mut self.frames[last + 1..] {
            *g = FrameStats {
                time: g.time,
                content: 0.0,
                motion: 0.0,
                ..fl
            };
        }
        Ok((self.frames, self.pictures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_give_the_divisions_they_replace() {
        let mut rgb = Vec::new();
        for r in (0..256).step_by(5) {
            for g in (0..256).step_by(7) {
                for b in (0..256).step_by(3) {
                    rgb.extend([r as u8, g as u8, b as u8]);
                }
            }
        }
        let small = Small::from_rgb(rgb.clone());
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            let (r, g, b) = (px[0] as i32, px[1] as i32, px[2] as i32);
            let (max, min) = (r.max(g).max(b), r.min(g).min(b));
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
            assert_eq!((small.h[i], small.s[i]), (hue as u8, sat as u8), "{px:?}");
        }
    }
}
