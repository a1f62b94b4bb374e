//! MTCNN (Zhang et al. 2016): a cascade of three networks that finds faces and five landmarks.
//!
//! P-Net scans an image pyramid for candidate boxes, R-Net refines them on 24x24 crops, O-Net
//! scores them on 48x48 crops and places the landmarks (left eye, right eye, nose, left and
//! right mouth corners, as seen in the picture). Non-maximum suppression and box regression
//! follow the paper and facenet-pytorch's `detect_face` step for step, so that the same
//! weights give the same faces (checked against a recorded reference in the tests).

use std::collections::HashMap;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::image::Planar;

/// The converted facenet-pytorch weights (MIT; see models/mtcnn/README.md).
pub const WEIGHTS: &[u8] = include_bytes!("../../models/mtcnn/mtcnn.safetensors");

/// A face: its box (x1, y1, x2, y2 in pixels), the O-Net score and five landmarks (x, y).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub bbox: [f32; 4],
    pub score: f32,
    /// Left eye, right eye, nose, left mouth corner, right mouth corner (as seen).
    pub landmarks: [[f32; 2]; 5],
}

impl Detection {
    pub fn width(&self) -> f32 {
        self.bbox[2] - self.bbox[0]
    }
    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }
}

struct PRelu(Tensor);

impl PRelu {
    fn new(vb: &VarBuilder, name: &str, c: usize) -> candle_core::Result<Self> {
        Ok(PRelu(vb.get(c, &format!("{name}.weight"))?))
    }
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let c = self.0.dim(0)?;
        let shape: Vec<usize> = (0..x.rank()).map(|i| if i == 1 { c } else { 1 }).collect();
        let w = self.0.reshape(shape)?;
        let neg = x.minimum(0f32)?.broadcast_mul(&w)?;
        x.relu()? + neg
    }
}

fn conv(vb: &VarBuilder, name: &str, i: usize, o: usize, k: usize) -> candle_core::Result<Conv2d> {
    candle_nn::conv2d(i, o, k, Conv2dConfig::default(), vb.pp(name))
}

fn linear(vb: &VarBuilder, name: &str, i: usize, o: usize) -> candle_core::Result<Linear> {
    candle_nn::linear(i, o, vb.pp(name))
}

/// Max pooling with PyTorch's `ceil_mode=True` (a partial last window counts).
fn max_pool_ceil(x: &Tensor, k: usize, s: usize) -> candle_core::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let out = |len: usize| (len.saturating_sub(k)).div_ceil(s) + 1;
    let (ph, pw) = ((out(h) - 1) * s + k - h, (out(w) - 1) * s + k - w);
    let mut x = x.clone();
    if pw > 0 {
        let pad = Tensor::full(f32::NEG_INFINITY, (n, c, h, pw), x.device())?;
        x = Tensor::cat(&[&x, &pad], 3)?;
    }
    if ph > 0 {
        let pad = Tensor::full(f32::NEG_INFINITY, (n, c, ph, w + pw), x.device())?;
        x = Tensor::cat(&[&x, &pad], 2)?;
    }
    x.max_pool2d_with_stride(k, s)
}

/// (N, C, H, W) -> (N, W*H*C) in PyTorch's `permute(0, 3, 2, 1)` order.
fn flatten_transposed(x: &Tensor) -> candle_core::Result<Tensor> {
    let n = x.dim(0)?;
    x.permute((0, 3, 2, 1))?.contiguous()?.reshape((n, ()))
}

struct PNet {
    c1: Conv2d,
    p1: PRelu,
    c2: Conv2d,
    p2: PRelu,
    c3: Conv2d,
    p3: PRelu,
    c41: Conv2d,
    c42: Conv2d,
}

impl PNet {
    fn new(vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(PNet {
            c1: conv(&vb, "conv1", 3, 10, 3)?,
            p1: PRelu::new(&vb, "prelu1", 10)?,
            c2: conv(&vb, "conv2", 10, 16, 3)?,
            p2: PRelu::new(&vb, "prelu2", 16)?,
            c3: conv(&vb, "conv3", 16, 32, 3)?,
            p3: PRelu::new(&vb, "prelu3", 32)?,
            c41: conv(&vb, "conv4_1", 32, 2, 1)?,
            c42: conv(&vb, "conv4_2", 32, 4, 1)?,
        })
    }
    /// Box regression (N, 4, h, w) and face probability (N, h, w).
    fn forward(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let x = self.p1.forward(&self.c1.forward(x)?)?;
        let x = max_pool_ceil(&x, 2, 2)?;
        let x = self.p2.forward(&self.c2.forward(&x)?)?;
        let x = self.p3.forward(&self.c3.forward(&x)?)?;
        let a = candle_nn::ops::softmax(&self.c41.forward(&x)?, 1)?;
        Ok((self.c42.forward(&x)?, a.narrow(1, 1, 1)?.squeeze(1)?))
    }
}

struct RNet {
    c1: Conv2d,
    p1: PRelu,
    c2: Conv2d,
    p2: PRelu,
    c3: Conv2d,
    p3: PRelu,
    d4: Linear,
    p4: PRelu,
    d51: Linear,
    d52: Linear,
}

impl RNet {
    fn new(vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(RNet {
            c1: conv(&vb, "conv1", 3, 28, 3)?,
            p1: PRelu::new(&vb, "prelu1", 28)?,
            c2: conv(&vb, "conv2", 28, 48, 3)?,
            p2: PRelu::new(&vb, "prelu2", 48)?,
            c3: conv(&vb, "conv3", 48, 64, 2)?,
            p3: PRelu::new(&vb, "prelu3", 64)?,
            d4: linear(&vb, "dense4", 576, 128)?,
            p4: PRelu::new(&vb, "prelu4", 128)?,
            d51: linear(&vb, "dense5_1", 128, 2)?,
            d52: linear(&vb, "dense5_2", 128, 4)?,
        })
    }
    /// Box regression (N, 4) and face probability (N).
    fn forward(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let x = self.p1.forward(&self.c1.forward(x)?)?;
        let x = max_pool_ceil(&x, 3, 2)?;
        let x = self.p2.forward(&self.c2.forward(&x)?)?;
        let x = max_pool_ceil(&x, 3, 2)?;
        let x = self.p3.forward(&self.c3.forward(&x)?)?;
        let x = self
            .p4
            .forward(&self.d4.forward(&flatten_transposed(&x)?)?)?;
        let a = candle_nn::ops::softmax(&self.d51.forward(&x)?, D::Minus1)?;
        Ok((self.d52.forward(&x)?, a.narrow(1, 1, 1)?.squeeze(1)?))
    }
}

struct ONet {
    c1: Conv2d,
    p1: PRelu,
    c2: Conv2d,
    p2: PRelu,
    c3: Conv2d,
    p3: PRelu,
    c4: Conv2d,
    p4: PRelu,
    d5: Linear,
    p5: PRelu,
    d61: Linear,
    d62: Linear,
    d63: Linear,
}

impl ONet {
    fn new(vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(ONet {
            c1: conv(&vb, "conv1", 3, 32, 3)?,
            p1: PRelu::new(&vb, "prelu1", 32)?,
            c2: conv(&vb, "conv2", 32, 64, 3)?,
            p2: PRelu::new(&vb, "prelu2", 64)?,
            c3: conv(&vb, "conv3", 64, 64, 3)?,
            p3: PRelu::new(&vb, "prelu3", 64)?,
            c4: conv(&vb, "conv4", 64, 128, 2)?,
            p4: PRelu::new(&vb, "prelu4", 128)?,
            d5: linear(&vb, "dense5", 1152, 256)?,
            p5: PRelu::new(&vb, "prelu5", 256)?,
            d61: linear(&vb, "dense6_1", 256, 2)?,
            d62: linear(&vb, "dense6_2", 256, 4)?,
            d63: linear(&vb, "dense6_3", 256, 10)?,
        })
    }
    /// Box regression (N, 4), landmarks (N, 10: five x then five y) and face probability (N).
    fn forward(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let x = self.p1.forward(&self.c1.forward(x)?)?;
        let x = max_pool_ceil(&x, 3, 2)?;
        let x = self.p2.forward(&self.c2.forward(&x)?)?;
        let x = max_pool_ceil(&x, 3, 2)?;
        let x = self.p3.forward(&self.c3.forward(&x)?)?;
        let x = max_pool_ceil(&x, 2, 2)?;
        let x = self.p4.forward(&self.c4.forward(&x)?)?;
        let x = self
            .p5
            .forward(&self.d5.forward(&flatten_transposed(&x)?)?)?;
        let a = candle_nn::ops::softmax(&self.d61.forward(&x)?, D::Minus1)?;
        Ok((
            self.d62.forward(&x)?,
            self.d63.forward(&x)?,
            a.narrow(1, 1, 1)?.squeeze(1)?,
        ))
    }
}

/// The detector with its settings (facenet-pytorch's defaults).
pub struct Mtcnn {
    pnet: PNet,
    rnet: RNet,
    onet: ONet,
    device: Device,
    /// Smallest face, in pixels.
    pub min_size: f32,
    /// Score thresholds of P-Net, R-Net and O-Net.
    pub thresholds: [f32; 3],
    /// Scale step of the image pyramid.
    pub factor: f32,
}

/// A candidate box: x1, y1, x2, y2, score, and the regression offsets.
#[derive(Debug, Clone, Copy)]
struct Cand {
    b: [f32; 4],
    score: f32,
    reg: [f32; 4],
}

impl Mtcnn {
    /// The detector with the weights built into benjamin, on `device`.
    pub fn embedded(device: &Device) -> Result<Self> {
        let tensors = candle_core::safetensors::load_buffer(WEIGHTS, &Device::Cpu)?;
        Self::from_tensors(&tensors, device)
    }

    pub fn from_tensors(tensors: &HashMap<String, Tensor>, device: &Device) -> Result<Self> {
        let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, device);
        Ok(Mtcnn {
            pnet: PNet::new(vb.pp("pnet")).context("P-Net weights")?,
            rnet: RNet::new(vb.pp("rnet")).context("R-Net weights")?,
            onet: ONet::new(vb.pp("onet")).context("O-Net weights")?,
            device: device.clone(),
            min_size: 20.0,
            thresholds: [0.6, 0.7, 0.7],
            factor: 0.709,
        })
    }

    /// The pyramid's scales for a picture of `w` x `h`.
    pub fn scales(&self, w: usize, h: usize) -> Vec<f32> {
        let m = 12.0 / self.min_size;
        let mut minl = w.min(h) as f32 * m;
        let mut s = m;
        let mut out = Vec::new();
        while minl >= 12.0 {
            out.push(s);
            s *= self.factor;
            minl *= self.factor;
        }
        out
    }

    /// P-Net's outputs on the whole picture at one scale: (regression, probability) maps.
    pub fn pnet_maps(&self, img: &Planar, scale: f32) -> Result<(Tensor, Tensor)> {
        let (h, w) = (img.height, img.width);
        let hs = (h as f32 * scale + 1.0) as usize;
        let ws = (w as f32 * scale + 1.0) as usize;
        let data = area_resize(img, 0, 0, w, h, hs, ws);
        let x = Tensor::from_vec(data, (1, 3, hs, ws), &self.device)?;
        let (reg, prob) = self.pnet.forward(&x)?;
        Ok((reg.squeeze(0)?, prob.squeeze(0)?))
    }

    /// P-Net's (regression (N, 4, h, w), probability (N, h, w)) on normalised pictures.
    pub fn pnet_forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok(self.pnet.forward(x)?)
    }

    /// R-Net's (regression, probability) on 24x24 crops, and O-Net's (regression, landmarks,
    /// probability) on 48x48 crops, each (N, 3, S, S) normalised as [`area_resize`] makes them.
    pub fn rnet_forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok(self.rnet.forward(x)?)
    }
    pub fn onet_forward(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        Ok(self.onet.forward(x)?)
    }

    pub fn detect_rgb(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        self.detect(&Planar::from_rgb(img))
    }

    /// Every face in the picture (0-255 RGB), strongest first.
    pub fn detect(&self, img: &Planar) -> Result<Vec<Detection>> {
        let (w, h) = (img.width, img.height);
        // Stage 1: P-Net over the pyramid.
        let mut cands: Vec<Cand> = Vec::new();
        for scale in self.scales(w, h) {
            let (reg, prob) = self.pnet_maps(img, scale)?;
            let prob = prob.to_vec2::<f32>()?;
            let reg = reg.to_vec3::<f32>()?;
            let mut at_scale = Vec::new();
            for (y, row) in prob.iter().enumerate() {
                for (x, &p) in row.iter().enumerate() {
                    if p >= self.thresholds[0] {
                        let (bx, by) = (x as f32, y as f32);
                        at_scale.push(Cand {
                            b: [
                                ((2.0 * bx + 1.0) / scale).floor(),
                                ((2.0 * by + 1.0) / scale).floor(),
                                ((2.0 * bx + 12.0) / scale).floor(),
                                ((2.0 * by + 12.0) / scale).floor(),
                            ],
                            score: p,
                            reg: [reg[0][y][x], reg[1][y][x], reg[2][y][x], reg[3][y][x]],
                        });
                    }
                }
            }
            let keep = nms(&at_scale, 0.5, false);
            cands.extend(keep.into_iter().map(|i| at_scale[i]));
        }
        let keep = nms(&cands, 0.7, false);
        let mut boxes: Vec<Cand> = keep
            .into_iter()
            .map(|i| {
                let c = cands[i];
                let (rw, rh) = (c.b[2] - c.b[0], c.b[3] - c.b[1]);
                let mut b = Cand {
                    b: [
                        c.b[0] + c.reg[0] * rw,
                        c.b[1] + c.reg[1] * rh,
                        c.b[2] + c.reg[2] * rw,
                        c.b[3] + c.reg[3] * rh,
                    ],
                    score: c.score,
                    reg: [0.0; 4],
                };
                rerec(&mut b.b);
                b
            })
            .collect();
        if boxes.is_empty() {
            return Ok(Vec::new());
        }

        // Stage 2: R-Net on 24x24 crops.
        let (boxes2, x) = self.crops(img, &boxes, 24)?;
        boxes = boxes2;
        let (reg, prob) = self.rnet.forward(&x)?;
        let (reg, prob) = (reg.to_vec2::<f32>()?, prob.to_vec1::<f32>()?);
        let mut pass: Vec<Cand> = Vec::new();
        for (i, b) in boxes.iter().enumerate() {
            if prob[i] > self.thresholds[1] {
                pass.push(Cand {
                    b: b.b,
                    score: prob[i],
                    reg: [reg[i][0], reg[i][1], reg[i][2], reg[i][3]],
                });
            }
        }
        let keep = nms(&pass, 0.7, false);
        boxes = keep
            .into_iter()
            .map(|i| {
                let mut c = pass[i];
                bbreg(&mut c.b, &c.reg);
                rerec(&mut c.b);
                c
            })
            .collect();
        if boxes.is_empty() {
            return Ok(Vec::new());
        }

        // Stage 3: O-Net on 48x48 crops, with landmarks.
        let (boxes3, x) = self.crops(img, &boxes, 48)?;
        boxes = boxes3;
        let (reg, marks, prob) = self.onet.forward(&x)?;
        let (reg, marks, prob) = (
            reg.to_vec2::<f32>()?,
            marks.to_vec2::<f32>()?,
            prob.to_vec1::<f32>()?,
        );
        let mut found = Vec::new();
        let mut finals = Vec::new();
        for (i, b) in boxes.iter().enumerate() {
            if prob[i] <= self.thresholds[2] {
                continue;
            }
            let bw = b.b[2] - b.b[0] + 1.0;
            let bh = b.b[3] - b.b[1] + 1.0;
            let mut landmarks = [[0f32; 2]; 5];
            for (k, l) in landmarks.iter_mut().enumerate() {
                *l = [
                    bw * marks[i][k] + b.b[0] - 1.0,
                    bh * marks[i][k + 5] + b.b[1] - 1.0,
                ];
            }
            let mut bb = b.b;
            bbreg(&mut bb, &[reg[i][0], reg[i][1], reg[i][2], reg[i][3]]);
            finals.push(Cand {
                b: bb,
                score: prob[i],
                reg: [0.0; 4],
            });
            found.push(Detection {
                bbox: bb,
                score: prob[i],
                landmarks,
            });
        }
        let keep = nms(&finals, 0.7, true);
        Ok(keep.into_iter().map(|i| found[i].clone()).collect())
    }

    /// The crops of `boxes` (clipped as facenet-pytorch's `pad` clips them) resized to `size`;
    /// boxes whose crop is empty are dropped.
    fn crops(&self, img: &Planar, boxes: &[Cand], size: usize) -> Result<(Vec<Cand>, Tensor)> {
        let (w, h) = (img.width as i64, img.height as i64);
        let mut kept = Vec::new();
        let mut data = Vec::new();
        for b in boxes {
            let x = (b.b[0].trunc() as i64).max(1);
            let y = (b.b[1].trunc() as i64).max(1);
            let ex = (b.b[2].trunc() as i64).min(w);
            let ey = (b.b[3].trunc() as i64).min(h);
            if ey > y - 1 && ex > x - 1 && x - 1 < w && y - 1 < h {
                data.extend(area_resize(
                    img,
                    (x - 1) as usize,
                    (y - 1) as usize,
                    ex as usize,
                    ey as usize,
                    size,
                    size,
                ));
                kept.push(*b);
            }
        }
        let n = kept.len();
        Ok((
            kept,
            Tensor::from_vec(data, (n, 3, size, size), &self.device)?,
        ))
    }
}

fn rerec(b: &mut [f32; 4]) {
    let h = b[3] - b[1];
    let w = b[2] - b[0];
    let l = w.max(h);
    b[0] = b[0] + w * 0.5 - l * 0.5;
    b[1] = b[1] + h * 0.5 - l * 0.5;
    b[2] = b[0] + l;
    b[3] = b[1] + l;
}

fn bbreg(b: &mut [f32; 4], reg: &[f32; 4]) {
    let w = b[2] - b[0] + 1.0;
    let h = b[3] - b[1] + 1.0;
    *b = [
        b[0] + reg[0] * w,
        b[1] + reg[1] * h,
        b[2] + reg[2] * w,
        b[3] + reg[3] * h,
    ];
}

/// Greedy non-maximum suppression: indices kept, strongest first. `min_mode` is facenet's
/// final "Min" overlap with +1 pixel areas; otherwise torchvision's IoU.
fn nms(c: &[Cand], threshold: f32, min_mode: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..c.len()).collect();
    order.sort_by(|&a, &b| c[b].score.total_cmp(&c[a].score));
    let one = if min_mode { 1.0 } else { 0.0 };
    let area = |b: &[f32; 4]| (b[2] - b[0] + one) * (b[3] - b[1] + one);
    let mut suppressed = vec![false; c.len()];
    let mut keep = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        for &j in &order[k + 1..] {
            if suppressed[j] {
                continue;
            }
            let (a, b) = (&c[i].b, &c[j].b);
            let iw = (a[2].min(b[2]) - a[0].max(b[0]) + one).max(0.0);
            let ih = (a[3].min(b[3]) - a[1].max(b[1]) + one).max(0.0);
            let inter = iw * ih;
            let o = if min_mode {
                inter / area(a).min(area(b))
            } else {
                inter / (area(a) + area(b) - inter)
            };
            if o > threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// PyTorch's `interpolate(mode="area")` (adaptive average pooling) of the region
/// [x0, x1) x [y0, y1) of a 0-255 RGB picture to `oh` x `ow`, normalised to about [-1, 1]
/// as MTCNN expects, channels first.
pub fn area_resize(
    img: &Planar,
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
    oh: usize,
    ow: usize,
) -> Vec<f32> {
    let (iw, ih) = (x1 - x0, y1 - y0);
    let window = |i: usize, inp: usize, out: usize| (i * inp / out, ((i + 1) * inp).div_ceil(out));
    // Columns first: (ih rows) x (ow) x 3.
    let mut cols = vec![0f32; ih * ow * 3];
    for y in 0..ih {
        let row = (y0 + y) * img.width;
        for ox in 0..ow {
            let (a, b) = window(ox, iw, ow);
            let mut s = [0f32; 3];
            for x in a..b {
                let p = (row + x0 + x) * 3;
                s[0] += img.data[p];
                s[1] += img.data[p + 1];
                s[2] += img.data[p + 2];
            }
            let n = (b - a) as f32;
            for c in 0..3 {
                cols[(y * ow + ox) * 3 + c] = s[c] / n;
            }
        }
    }
    let mut out = vec![0f32; 3 * oh * ow];
    for oy in 0..oh {
        let (a, b) = window(oy, ih, oh);
        let n = (b - a) as f32;
        for ox in 0..ow {
            for c in 0..3 {
                let mut s = 0f32;
                for y in a..b {
                    s += cols[(y * ow + ox) * 3 + c];
                }
                out[(c * oh + oy) * ow + ox] = (s / n - 127.5) * 0.0078125;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
