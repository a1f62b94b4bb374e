//! The swap model, the classic deepfake design with faceswap-GAN's additions: one encoder
//! shared by every identity, one decoder per identity that paints the face and a mask, and a
//! PatchGAN discriminator per identity for the adversarial loss.
//!
//! Every op runs on the model's `Device`: the convolutions are [`crate::nn::conv2d`], one fused
//! op with its own backward pass on the CPU and candle's `conv2d` elsewhere, so the `cuda`
//! feature needs no change here.

use anyhow::Result;
use candle_core::{Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::nn::{conv2d, linear, Activation, ConvSpec, Linear};
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

/// The slope of every leaky ReLU in the swap model and its discriminators.
const LEAKY: Activation = Activation::Leaky(0.1);

/// A 2-D convolution with its bias and activation ([`crate::nn::conv2d`]: one fused op on
/// the CPU, candle's `conv2d` elsewhere). Same weights (shape, names, initialisation) as
/// `candle_nn::conv2d`.
pub struct Conv {
    weight: Tensor,
    bias: Tensor,
    spec: ConvSpec,
}

impl Conv {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        i: usize,
        o: usize,
        k: usize,
        stride: usize,
        pad: usize,
        activation: Activation,
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
        let spec = ConvSpec {
            kernel: k,
            stride,
            pad,
            activation,
            shuffle: false,
        };
        Ok(Conv { weight, bias, spec })
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        conv2d(x, &self.weight, &self.bias, self.spec)
    }
}

/// An upscaler: a 3x3 convolution to four times the channels, then a pixel shuffle, so
/// twice the size (the convolution writes its output pixel-shuffled).
fn upscale(i: usize, o: usize, vb: VarBuilder) -> candle_core::Result<Conv> {
    let mut conv = Conv::new(i, o * 4, 3, 1, 1, LEAKY, vb)?;
    conv.spec.shuffle = true;
    Ok(conv)
}

pub struct Encoder {
    convs: Vec<Conv>,
    dense1: Linear,
    dense2: Linear,
    up: Conv,
    top: usize,
}

impl Encoder {
    fn new(cfg: &ModelConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let mut convs = Vec::new();
        let mut c = 3;
        for i in 0..cfg.downs() {
            let o = cfg.width << i;
            convs.push(Conv::new(c, o, 5, 2, 2, LEAKY, vb.pp(format!("conv{i}")))?);
            c = o;
        }
        let top = cfg.top();
        Ok(Encoder {
            convs,
            dense1: linear(top * 16, cfg.latent, vb.pp("dense1"))?,
            dense2: linear(cfg.latent, top * 16, vb.pp("dense2"))?,
            up: upscale(top, top / 2, vb.pp("up"))?,
            top,
        })
    }

    /// Faces (N, 3, R, R) in 0-1 -> codes (N, top/2, 8, 8).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = ((x * 2.0)? - 1.0)?;
        for c in &self.convs {
            x = c.forward(&x)?;
        }
        let n = x.dim(0)?;
        let z = self.dense1.forward(&x.flatten_from(1)?)?;
        let x = self.dense2.forward(&z)?.reshape((n, self.top, 4, 4))?;
        self.up.forward(&x)
    }
}

pub struct Decoder {
    ups: Vec<Conv>,
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
            ups.push(upscale(c, o, vb.pp(format!("up{i}")))?);
            c = o;
        }
        Ok(Decoder {
            ups,
            rgb: Conv::new(c, 3, 5, 1, 2, Activation::Sigmoid, vb.pp("rgb"))?,
            mask: Conv::new(c, 1, 5, 1, 2, Activation::Sigmoid, vb.pp("mask"))?,
        })
    }

    /// Codes -> (face (N, 3, R, R) in 0-1, mask (N, 1, R, R) in 0-1).
    pub fn forward(&self, code: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let mut x = code.clone();
        for u in &self.ups {
            x = u.forward(&x)?;
        }
        // The face and the mask read the same pictures through the same window: one
        // convolution of four channels makes both in one pass over the columns.
        let weight = Tensor::cat(&[&self.rgb.weight, &self.mask.weight], 0)?;
        let bias = Tensor::cat(&[&self.rgb.bias, &self.mask.bias], 0)?;
        let both = conv2d(&x, &weight, &bias, self.rgb.spec)?;
        Ok((both.narrow(1, 0, 3)?, both.narrow(1, 3, 1)?))
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

    /// Faces of each identity (`xs[id]`, the same number each) through the shared encoder
    /// as one batch, then each through its own decoder: the same sums as [`Self::forward`]
    /// per identity, with half the encoder's calls and one weight gradient for it.
    pub fn forward_each(&self, xs: &[Tensor]) -> candle_core::Result<Vec<(Tensor, Tensor)>> {
        let codes = self.encoder.forward(&Tensor::cat(xs, 0)?)?;
        let mut at = 0;
        let mut out = Vec::with_capacity(xs.len());
        for (id, x) in xs.iter().enumerate() {
            let n = x.dim(0)?;
            out.push(self.decoders[id].forward(&codes.narrow(0, at, n)?)?);
            at += n;
        }
        Ok(out)
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
            convs.push(Conv::new(c, o, 4, 2, 1, LEAKY, vb.pp(format!("conv{i}")))?);
            c = o;
        }
        Ok(PatchGan {
            convs,
            out: Conv::new(c, 1, 3, 1, 1, Activation::Identity, vb.pp("out"))?,
        })
    }

    /// Faces (N, 3, R, R) in 0-1 -> logits (N, 1, R/8, R/8).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = ((x * 2.0)? - 1.0)?;
        for c in &self.convs {
            x = c.forward(&x)?;
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
    fn identities_batched_through_the_encoder_paint_as_one_by_one() {
        let m = SwapModel::new(&cfg(16), &Device::Cpu).unwrap();
        let xs: Vec<Tensor> = (0..2)
            .map(|_| Tensor::rand(0f32, 1.0, (3, 3, 16, 16), &Device::Cpu).unwrap())
            .collect();
        let both = m.forward_each(&xs).unwrap();
        for (id, x) in xs.iter().enumerate() {
            let (face, mask) = m.forward(x, id).unwrap();
            for (a, b) in [(&face, &both[id].0), (&mask, &both[id].1)] {
                let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
                assert!(
                    d.to_scalar::<f32>().unwrap() < 1e-5,
                    "identity {id} differs"
                );
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
