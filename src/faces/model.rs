//! The swap model, the classic deepfake design with faceswap-GAN's additions: one encoder
//! shared by every identity, one decoder per identity that paints the face and a mask, and a
//! PatchGAN discriminator per identity for the adversarial loss.
//!
//! Every op is a candle op on the model's `Device` (no fused candle-nn kernel without a
//! backward pass: activations are written out), so the `cuda` feature needs no change here.

use anyhow::Result;
use candle_core::{Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

/// Shape of a swap model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Side of the aligned face square, in pixels (a power of two, 16 or more).
    pub resolution: usize,
    /// Channels of the first encoder layer (doubled at each step down).
    pub width: usize,
    /// Size of the bottleneck vector.
    pub latent: usize,
    /// The identities, one decoder each (actors, and the faces found in the shots).
    pub identities: Vec<String>,
}

impl ModelConfig {
    /// Steps down from the picture to the 4x4 bottleneck map.
    pub fn downs(&self) -> usize {
        (self.resolution / 4).trailing_zeros() as usize
    }

    fn top(&self) -> usize {
        self.width << (self.downs() - 1)
    }
}

/// Leaky ReLU (slope 0.1) from differentiable ops.
pub fn leaky(x: &Tensor) -> candle_core::Result<Tensor> {
    x.maximum(&(x * 0.1)?)
}

/// The logistic function from differentiable ops.
pub fn sigmoid(x: &Tensor) -> candle_core::Result<Tensor> {
    (x.neg()?.exp()? + 1.0)?.recip()
}

/// (N, 4C, H, W) -> (N, C, 2H, 2W).
pub fn pixel_shuffle(x: &Tensor) -> candle_core::Result<Tensor> {
    let (n, c4, h, w) = x.dims4()?;
    let c = c4 / 4;
    x.reshape((n, c, 2, 2, h, w))?
        .permute((0, 1, 4, 2, 5, 3))?
        .contiguous()?
        .reshape((n, c, 2 * h, 2 * w))
}

/// im2col: (N, C, H, W) -> (N, C*k*k, OH*OW), the patches a convolution multiplies by its
/// weights; its backward is col2im (a scatter-add). Used on the CPU only.
#[derive(Clone, Copy)]
struct Im2Col {
    k: usize,
    stride: usize,
    pad: usize,
}

impl Im2Col {
    fn out_size(&self, h: usize) -> usize {
        (h + 2 * self.pad - self.k) / self.stride + 1
    }
    /// Calls `f(col_index, input_index)` for every patch element inside the picture.
    #[inline]
    fn each(&self, c: usize, h: usize, w: usize, mut f: impl FnMut(usize, usize)) {
        let (k, s, p) = (self.k, self.stride, self.pad);
        let (oh, ow) = (self.out_size(h), self.out_size(w));
        let l = oh * ow;
        for ci in 0..c {
            for ki in 0..k {
                for kj in 0..k {
                    let row = (ci * k + ki) * k + kj;
                    for oy in 0..oh {
                        let y = (oy * s + ki) as isize - p as isize;
                        if y < 0 || y >= h as isize {
                            continue;
                        }
                        for ox in 0..ow {
                            let x = (ox * s + kj) as isize - p as isize;
                            if x < 0 || x >= w as isize {
                                continue;
                            }
                            f(
                                row * l + oy * ow + ox,
                                (ci * h + y as usize) * w + x as usize,
                            );
                        }
                    }
                }
            }
        }
    }
}

impl candle_core::CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("im2col needs a contiguous input".into()))?;
        let src = &storage.as_slice::<f32>()?[start..end];
        let (rows, l) = (c * self.k * self.k, self.out_size(h) * self.out_size(w));
        let mut out = vec![0f32; n * rows * l];
        for b in 0..n {
            let (inp, dst) = (
                &src[b * c * h * w..],
                &mut out[b * rows * l..(b + 1) * rows * l],
            );
            self.each(c, h, w, |o, i| dst[o] = inp[i]);
        }
        Ok((candle_core::CpuStorage::F32(out), (n, rows, l).into()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (_, c, h, w) = arg.dims4()?;
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&Col2Im {
            im: *self,
            c,
            h,
            w,
        })?))
    }
}

/// The adjoint of [`Im2Col`]: patches summed back onto the picture.
struct Col2Im {
    im: Im2Col,
    c: usize,
    h: usize,
    w: usize,
}

impl candle_core::CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let (n, rows, l) = layout.shape().dims3()?;
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("col2im needs a contiguous input".into()))?;
        let src = &storage.as_slice::<f32>()?[start..end];
        let (c, h, w) = (self.c, self.h, self.w);
        let mut out = vec![0f32; n * c * h * w];
        for b in 0..n {
            let (cols, dst) = (
                &src[b * rows * l..],
                &mut out[b * c * h * w..(b + 1) * c * h * w],
            );
            self.im.each(c, h, w, |o, i| dst[i] += cols[o]);
        }
        Ok((candle_core::CpuStorage::F32(out), (n, c, h, w).into()))
    }
}

/// A 2-D convolution. On the CPU it is im2col + matrix product, whose backward pass is
/// matrix products and a scatter-add: candle 0.11's own CPU `conv2d` takes its input gradient
/// through a direct-loop `conv_transpose2d`, several times slower for these layers. On other
/// devices it is candle's `conv2d`. Same weights (shape, names, initialisation) as
/// `candle_nn::conv2d`.
pub struct Conv {
    weight: Tensor,
    bias: Tensor,
    im: Im2Col,
}

impl Conv {
    pub fn new(
        i: usize,
        o: usize,
        k: usize,
        stride: usize,
        pad: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let weight = vb.get_with_hints(
            (o, i, k, k),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        let bound = 1.0 / ((i * k * k) as f64).sqrt();
        let bias = vb.get_with_hints(
            o,
            "bias",
            candle_nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        Ok(Conv {
            weight,
            bias,
            im: Im2Col { k, stride, pad },
        })
    }

    /// The same convolution through candle's `conv2d`.
    pub fn forward_candle(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let o = self.weight.dim(0)?;
        x.conv2d(&self.weight, self.im.pad, self.im.stride, 1, 1)?
            .broadcast_add(&self.bias.reshape((1, o, 1, 1))?)
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
            return self.forward_candle(x);
        }
        let (n, c, h, w) = x.dims4()?;
        let o = self.weight.dim(0)?;
        let (oh, ow) = (self.im.out_size(h), self.im.out_size(w));
        let cols = x.contiguous()?.apply_op1(self.im)?;
        let wm = self.weight.reshape((o, c * self.im.k * self.im.k))?;
        let y = crate::nn::weights_times_columns(&wm, &cols)?;
        y.reshape((n, o, oh, ow))?
            .broadcast_add(&self.bias.reshape((1, o, 1, 1))?)
    }
}

fn conv(
    i: usize,
    o: usize,
    k: usize,
    stride: usize,
    pad: usize,
    vb: VarBuilder,
) -> candle_core::Result<Conv> {
    Conv::new(i, o, k, stride, pad, vb)
}

/// A 3x3 convolution to four times the channels, then a pixel shuffle: twice the size.
struct Upscale(Conv);

impl Upscale {
    fn new(i: usize, o: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Upscale(conv(i, o * 4, 3, 1, 1, vb)?))
    }
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        pixel_shuffle(&leaky(&self.0.forward(x)?)?)
    }
}

pub struct Encoder {
    convs: Vec<Conv>,
    dense1: Linear,
    dense2: Linear,
    up: Upscale,
    top: usize,
}

impl Encoder {
    fn new(cfg: &ModelConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let mut convs = Vec::new();
        let mut c = 3;
        for i in 0..cfg.downs() {
            let o = cfg.width << i;
            convs.push(conv(c, o, 5, 2, 2, vb.pp(format!("conv{i}")))?);
            c = o;
        }
        let top = cfg.top();
        Ok(Encoder {
            convs,
            dense1: candle_nn::linear(top * 16, cfg.latent, vb.pp("dense1"))?,
            dense2: candle_nn::linear(cfg.latent, top * 16, vb.pp("dense2"))?,
            up: Upscale::new(top, top / 2, vb.pp("up"))?,
            top,
        })
    }

    /// Faces (N, 3, R, R) in 0-1 -> codes (N, top/2, 8, 8).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = ((x * 2.0)? - 1.0)?;
        for c in &self.convs {
            x = leaky(&c.forward(&x)?)?;
        }
        let n = x.dim(0)?;
        let z = self.dense1.forward(&x.flatten_from(1)?)?;
        let x = self.dense2.forward(&z)?.reshape((n, self.top, 4, 4))?;
        self.up.forward(&x)
    }
}

pub struct Decoder {
    ups: Vec<Upscale>,
    rgb: Conv,
    mask: Conv,
}

impl Decoder {
    fn new(cfg: &ModelConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let mut ups = Vec::new();
        let mut c = cfg.top() / 2;
        // From 8x8 up to the resolution.
        for i in 0..cfg.downs() - 1 {
            let o = (c / 2).max(cfg.width / 2).max(4);
            ups.push(Upscale::new(c, o, vb.pp(format!("up{i}")))?);
            c = o;
        }
        Ok(Decoder {
            ups,
            rgb: conv(c, 3, 5, 1, 2, vb.pp("rgb"))?,
            mask: conv(c, 1, 5, 1, 2, vb.pp("mask"))?,
        })
    }

    /// Codes -> (face (N, 3, R, R) in 0-1, mask (N, 1, R, R) in 0-1).
    pub fn forward(&self, code: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let mut x = code.clone();
        for u in &self.ups {
            x = u.forward(&x)?;
        }
        Ok((
            sigmoid(&self.rgb.forward(&x)?)?,
            sigmoid(&self.mask.forward(&x)?)?,
        ))
    }
}

/// The generator: the shared encoder and a decoder per identity.
pub struct SwapModel {
    pub config: ModelConfig,
    pub encoder: Encoder,
    pub decoders: Vec<Decoder>,
    pub varmap: VarMap,
    pub device: Device,
}

impl SwapModel {
    pub fn new(config: &ModelConfig, device: &Device) -> Result<Self> {
        anyhow::ensure!(
            config.resolution >= 16 && config.resolution.is_power_of_two(),
            "the face resolution must be a power of two, 16 or more (not {})",
            config.resolution
        );
        anyhow::ensure!(
            !config.identities.is_empty(),
            "a swap model needs identities"
        );
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, candle_core::DType::F32, device);
        let encoder = Encoder::new(config, vb.pp("enc"))?;
        let decoders = (0..config.identities.len())
            .map(|i| Decoder::new(config, vb.pp(format!("dec{i}"))))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(SwapModel {
            config: config.clone(),
            encoder,
            decoders,
            varmap,
            device: device.clone(),
        })
    }

    pub fn identity(&self, name: &str) -> Option<usize> {
        self.config.identities.iter().position(|n| n == name)
    }

    /// Faces through the encoder and identity `id`'s decoder: (face, mask).
    pub fn forward(&self, x: &Tensor, id: usize) -> candle_core::Result<(Tensor, Tensor)> {
        self.decoders[id].forward(&self.encoder.forward(x)?)
    }

    pub fn parameter_count(&self) -> usize {
        self.varmap.all_vars().iter().map(|v| v.elem_count()).sum()
    }
}

/// A PatchGAN discriminator: a real-or-fake logit for each patch of the face.
pub struct PatchGan {
    convs: Vec<Conv>,
    out: Conv,
}

impl PatchGan {
    fn new(cfg: &ModelConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let mut convs = Vec::new();
        let mut c = 3;
        for i in 0..3 {
            let o = cfg.width << i;
            convs.push(conv(c, o, 4, 2, 1, vb.pp(format!("conv{i}")))?);
            c = o;
        }
        Ok(PatchGan {
            convs,
            out: conv(c, 1, 3, 1, 1, vb.pp("out"))?,
        })
    }

    /// Faces (N, 3, R, R) in 0-1 -> logits (N, 1, R/8, R/8).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = ((x * 2.0)? - 1.0)?;
        for c in &self.convs {
            x = leaky(&c.forward(&x)?)?;
        }
        self.out.forward(&x)
    }
}

/// One discriminator per identity, in their own variables (trained by their own optimiser).
pub struct Discriminators {
    pub nets: Vec<PatchGan>,
    pub varmap: VarMap,
}

impl Discriminators {
    pub fn new(config: &ModelConfig, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, candle_core::DType::F32, device);
        let nets = (0..config.identities.len())
            .map(|i| PatchGan::new(config, vb.pp(format!("disc{i}"))))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Discriminators { nets, varmap })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(r: usize) -> ModelConfig {
        ModelConfig {
            resolution: r,
            width: 8,
            latent: 32,
            identities: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn shapes_follow_the_resolution() {
        for r in [16, 32, 64] {
            let m = SwapModel::new(&cfg(r), &Device::Cpu).unwrap();
            let x = Tensor::rand(0f32, 1.0, (2, 3, r, r), &Device::Cpu).unwrap();
            let (face, mask) = m.forward(&x, 1).unwrap();
            assert_eq!(face.dims(), &[2, 3, r, r]);
            assert_eq!(mask.dims(), &[2, 1, r, r]);
            let d = Discriminators::new(&cfg(r), &Device::Cpu).unwrap();
            assert_eq!(d.nets[0].forward(&x).unwrap().dims(), &[2, 1, r / 8, r / 8]);
        }
    }

    #[test]
    fn pixel_shuffle_places_channels_as_pytorch_does() {
        // PyTorch: out[n, c, 2h + i, 2w + j] = in[n, 4c + 2i + j, h, w].
        let x = Tensor::arange(0f32, 16.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 4, 2, 2))
            .unwrap();
        let y = pixel_shuffle(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(
            y,
            vec![0., 4., 1., 5., 8., 12., 9., 13., 2., 6., 3., 7., 10., 14., 11., 15.]
        );
    }

    #[test]
    fn im2col_convolution_equals_candles_conv2d_forward_and_backward() {
        let dev = Device::Cpu;
        for (k, stride, pad, h) in [
            (5, 2, 2, 16),
            (4, 2, 1, 16),
            (3, 1, 1, 8),
            (5, 1, 2, 6),
            (3, 2, 1, 9),
        ] {
            let varmap = VarMap::new();
            let vb = VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &dev);
            let c = Conv::new(3, 5, k, stride, pad, vb).unwrap();
            let x = candle_core::Var::from_tensor(
                &Tensor::randn(0f32, 1.0, (2, 3, h, h), &dev).unwrap(),
            )
            .unwrap();
            let ours = c.forward(x.as_tensor()).unwrap();
            let theirs = c.forward_candle(x.as_tensor()).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            let diff = |a: &Tensor, b: &Tensor| {
                (a - b)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
            };
            assert!(diff(&ours, &theirs) < 1e-4, "k{k} s{stride} p{pad}");
            let g1 = ours.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = theirs.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            for t in [&c.weight, &c.bias, x.as_tensor()] {
                let d = diff(g1.get(t).unwrap(), g2.get(t).unwrap());
                assert!(d < 1e-3, "gradient k{k} s{stride} p{pad}: {d}");
            }
        }
    }

    #[test]
    fn gradients_reach_every_generator_weight() {
        let m = SwapModel::new(&cfg(16), &Device::Cpu).unwrap();
        let x = Tensor::rand(0f32, 1.0, (2, 3, 16, 16), &Device::Cpu).unwrap();
        let (face, mask) = m.forward(&x, 0).unwrap();
        let loss = (face.sum_all().unwrap() + mask.sum_all().unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        for (name, var) in m.varmap.data().lock().unwrap().iter() {
            if name.starts_with("dec1") {
                continue;
            }
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(norm > 0.0, "zero gradient for {name}");
        }
    }
}
