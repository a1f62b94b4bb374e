//! Pictures for the face work: FFmpeg frames to RGB and back, and bilinear sampling.

use anyhow::{anyhow, Result};
use image::RgbImage;

use crate::media::ffmpeg::{format, frame, software::scaling};

/// Converts decoded frames of any pixel format to RGB (and RGB back to 4:2:0 for the encoder),
/// keeping a scaler per shape.
#[derive(Default)]
pub struct RgbConverter {
    to_rgb: Option<(format::Pixel, u32, u32, scaling::Context)>,
    to_yuv: Option<(u32, u32, scaling::Context)>,
}

impl RgbConverter {
    pub fn to_rgb(&mut self, f: &frame::Video) -> Result<RgbImage> {
        let (w, h, fmt) = (f.width(), f.height(), f.format());
        let fresh = !matches!(&self.to_rgb, Some((p, a, b, _)) if *p == fmt && *a == w && *b == h);
        if fresh {
            let ctx = scaling::Context::get(
                fmt,
                w,
                h,
                format::Pixel::RGB24,
                w,
                h,
                scaling::Flags::BILINEAR
                    | scaling::Flags::ACCURATE_RND
                    | scaling::Flags::FULL_CHR_H_INT,
            )
            .map_err(|e| anyhow!("cannot convert {fmt:?} pictures to RGB: {e}"))?;
            self.to_rgb = Some((fmt, w, h, ctx));
        }
        let ctx = &mut self.to_rgb.as_mut().unwrap().3;
        let mut rgb = frame::Video::empty();
        ctx.run(f, &mut rgb)
            .map_err(|e| anyhow!("cannot convert a picture to RGB: {e}"))?;
        let stride = rgb.stride(0);
        let data = rgb.data(0);
        let mut out = Vec::with_capacity((w * h * 3) as usize);
        for row in 0..h as usize {
            out.extend_from_slice(&data[row * stride..row * stride + w as usize * 3]);
        }
        Ok(RgbImage::from_raw(w, h, out).expect("sized buffer"))
    }

    /// A 4:2:0 frame of `img` (its width and height must be even).
    pub fn to_yuv(&mut self, img: &RgbImage) -> Result<frame::Video> {
        let (w, h) = img.dimensions();
        if !matches!(&self.to_yuv, Some((a, b, _)) if *a == w && *b == h) {
            let ctx = scaling::Context::get(
                format::Pixel::RGB24,
                w,
                h,
                format::Pixel::YUV420P,
                w,
                h,
                scaling::Flags::BILINEAR | scaling::Flags::ACCURATE_RND,
            )
            .map_err(|e| anyhow!("cannot convert RGB pictures to 4:2:0: {e}"))?;
            self.to_yuv = Some((w, h, ctx));
        }
        let mut rgb = frame::Video::new(format::Pixel::RGB24, w, h);
        let stride = rgb.stride(0);
        let raw = img.as_raw();
        let data = rgb.data_mut(0);
        for row in 0..h as usize {
            let n = w as usize * 3;
            data[row * stride..row * stride + n].copy_from_slice(&raw[row * n..(row + 1) * n]);
        }
        let mut out = frame::Video::empty();
        self.to_yuv
            .as_mut()
            .unwrap()
            .2
            .run(&rgb, &mut out)
            .map_err(|e| anyhow!("cannot convert a picture to 4:2:0: {e}"))?;
        Ok(out)
    }
}

/// A float picture, channels interleaved (HWC), values 0-255 or 0-1 as the caller decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Planar {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<f32>,
}

impl Planar {
    pub fn new(width: usize, height: usize, channels: usize) -> Self {
        Planar {
            width,
            height,
            channels,
            data: vec![0.0; width * height * channels],
        }
    }

    pub fn from_rgb(img: &RgbImage) -> Self {
        Planar {
            width: img.width() as usize,
            height: img.height() as usize,
            channels: 3,
            data: img.as_raw().iter().map(|&v| v as f32).collect(),
        }
    }

    pub fn to_rgb(&self) -> RgbImage {
        assert_eq!(self.channels, 3);
        RgbImage::from_raw(
            self.width as u32,
            self.height as u32,
            self.data
                .iter()
                .map(|v| v.round().clamp(0.0, 255.0) as u8)
                .collect(),
        )
        .expect("sized buffer")
    }

    #[inline]
    pub fn at(&self, x: usize, y: usize, c: usize) -> f32 {
        self.data[(y * self.width + x) * self.channels + c]
    }

    /// Bilinear sample at (x, y) in pixel-centre coordinates; `None` outside the picture.
    #[inline]
    pub fn sample(&self, x: f32, y: f32, out: &mut [f32]) -> bool {
        if !(x > -1.0 && y > -1.0 && x < self.width as f32 && y < self.height as f32) {
            return false;
        }
        let x0 = x.floor();
        let y0 = y.floor();
        let (fx, fy) = (x - x0, y - y0);
        let clampx = |v: f32| (v.max(0.0) as usize).min(self.width - 1);
        let clampy = |v: f32| (v.max(0.0) as usize).min(self.height - 1);
        let (xa, xb, ya, yb) = (clampx(x0), clampx(x0 + 1.0), clampy(y0), clampy(y0 + 1.0));
        for (c, o) in out.iter_mut().enumerate().take(self.channels) {
            let top = self.at(xa, ya, c) * (1.0 - fx) + self.at(xb, ya, c) * fx;
            let bot = self.at(xa, yb, c) * (1.0 - fx) + self.at(xb, yb, c) * fx;
            *o = top * (1.0 - fy) + bot * fy;
        }
        true
    }
}

/// Structural similarity (Wang et al. 2004) of two same-sized RGB pictures (0-255), on their
/// luma, with the usual 11x11 Gaussian window (sigma 1.5) over the valid region.
pub fn ssim(a: &Planar, b: &Planar) -> f32 {
    let luma = |p: &Planar| -> Vec<f32> {
        p.data
            .chunks_exact(3)
            .map(|c| 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])
            .collect()
    };
    let (x, y) = (luma(a), luma(b));
    let (w, h) = (a.width, a.height);
    let g: Vec<f32> = (-5i32..=5)
        .map(|k| (-(k * k) as f32 / (2.0 * 1.5 * 1.5)).exp())
        .collect();
    let gs: f32 = g.iter().sum();
    let g: Vec<f32> = g.iter().map(|v| v / gs).collect();
    let (c1, c2) = ((0.01f32 * 255.0).powi(2), (0.03f32 * 255.0).powi(2));
    let mut total = 0f64;
    let mut n = 0usize;
    for cy in 5..h.saturating_sub(5) {
        for cx in 5..w.saturating_sub(5) {
            let (mut mx, mut my, mut xx, mut yy, mut xy) = (0f32, 0f32, 0f32, 0f32, 0f32);
            for (j, gy) in g.iter().enumerate() {
                for (i, gx) in g.iter().enumerate() {
                    let k = gy * gx;
                    let p = (cy + j - 5) * w + cx + i - 5;
                    mx += k * x[p];
                    my += k * y[p];
                    xx += k * x[p] * x[p];
                    yy += k * y[p] * y[p];
                    xy += k * x[p] * y[p];
                }
            }
            let (vx, vy, cov) = (xx - mx * mx, yy - my * my, xy - mx * my);
            total += (((2.0 * mx * my + c1) * (2.0 * cov + c2))
                / ((mx * mx + my * my + c1) * (vx + vy + c2))) as f64;
            n += 1;
        }
    }
    (total / n.max(1) as f64) as f32
}
