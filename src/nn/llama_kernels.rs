//! Fused CPU kernels for a llama decoder trained through adapters: RMS norm, the SwiGLU gate
//! and rotary positions, each one pass forward and one back. candle has kernels for the first
//! and last without backward passes, so training composed them: a dozen ops and as many
//! zero-filled gradient buffers per call, thirty layers deep. The norm's weight and the
//! rotation tables belong to the frozen base: they get no gradient.

use candle_core::{bail, CpuStorage, Result, Shape, Tensor};

use super::fused::{dot, exp, lane_sum, on_cpu, simd, values, Fused, Input, Kernel};

/// `x / rms(x) * w` over the last dimension, `w` frozen.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    if on_cpu(x) && on_cpu(w) {
        x.contiguous()?.apply_op2(w, Fused(RmsNorm(eps as f32)))
    } else {
        let ms = x.sqr()?.mean_keepdim(candle_core::D::Minus1)?;
        x.broadcast_div(&(ms + eps)?.sqrt()?)?
            .broadcast_mul(&w.detach())
    }
}

struct RmsNorm(f32);

fn inverse_rms(row: &[f32], eps: f32) -> f32 {
    1.0 / (lane_sum(row, |v| v * v) / row.len() as f32 + eps).sqrt()
}

impl Kernel<2> for RmsNorm {
    const NAME: &'static str = "fused-rms-norm";

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let (x, w) = (values::<f32>(s1, l1)?, values::<f32>(s2, l2)?);
        let n = w.len();
        if n == 0 || !x.len().is_multiple_of(n) {
            bail!("rms norm: rows of {:?} against a weight of {n}", l1.dims());
        }
        let mut y = vec![0f32; x.len()];
        simd(|| {
            for (yr, xr) in y.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
                let r = inverse_rms(xr, self.0);
                for ((y, &x), &w) in yr.iter_mut().zip(xr).zip(w) {
                    *y = x * r * w;
                }
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn backward(
        &self,
        [x, w]: [&Tensor; 2],
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<[Option<Tensor>; 2]> {
        if w.is_variable() {
            bail!("rms norm: the weight is frozen here (it gets no gradient)");
        }
        let dx = Tensor::apply_op3_no_bwd(x, w, &grad.contiguous()?, &Fused(RmsNormGrad(self.0)))?;
        Ok([Some(dx), None])
    }
}

/// `dx = r (g w) - r^3 x sum(g w x) / n`, row by row.
struct RmsNormGrad(f32);

impl Kernel<3> for RmsNormGrad {
    const NAME: &'static str = "fused-rms-norm-grad";

    fn forward(
        &self,
        [(s1, l1), (s2, l2), (s3, l3)]: [Input<'_>; 3],
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, g) = (
            values::<f32>(s1, l1)?,
            values::<f32>(s2, l2)?,
            values::<f32>(s3, l3)?,
        );
        let n = w.len();
        let mut dx = vec![0f32; x.len()];
        simd(|| {
            let mut gw = vec![0f32; n];
            for ((dr, xr), gr) in dx
                .chunks_exact_mut(n)
                .zip(x.chunks_exact(n))
                .zip(g.chunks_exact(n))
            {
                let r = inverse_rms(xr, self.0);
                for ((gw, &g), &w) in gw.iter_mut().zip(gr).zip(w) {
                    *gw = g * w;
                }
                let k = r * r * r * dot(&gw, xr) / n as f32;
                for ((d, &gw), &x) in dr.iter_mut().zip(&gw).zip(xr) {
                    *d = r * gw - k * x;
                }
            }
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// `silu(gate) * up`, the SwiGLU of a llama's MLP.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if on_cpu(gate) && on_cpu(up) && gate.dims() == up.dims() {
        gate.contiguous()?
            .apply_op2(&up.contiguous()?, Fused(Swiglu))
    } else {
        gate.silu()? * up
    }
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

struct Swiglu;

impl Kernel<2> for Swiglu {
    const NAME: &'static str = "fused-swiglu";

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let (g, u) = (values::<f32>(s1, l1)?, values::<f32>(s2, l2)?);
        let mut y = vec![0f32; g.len()];
        simd(|| {
            for ((y, &g), &u) in y.iter_mut().zip(g).zip(u) {
                *y = g * sigmoid(g) * u;
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn backward(
        &self,
        [g, u]: [&Tensor; 2],
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<[Option<Tensor>; 2]> {
        let grad = grad.contiguous()?;
        let dg = Tensor::apply_op3_no_bwd(g, u, &grad, &Fused(SwigluGrad::Gate))?;
        let du = Tensor::apply_op3_no_bwd(g, u, &grad, &Fused(SwigluGrad::Up))?;
        Ok([Some(dg), Some(du)])
    }
}

/// The gradient of SwiGLU's gate, or of its other input.
enum SwigluGrad {
    Gate,
    Up,
}

impl Kernel<3> for SwigluGrad {
    const NAME: &'static str = "fused-swiglu-grad";

    fn forward(
        &self,
        [(s1, l1), (s2, l2), (s3, l3)]: [Input<'_>; 3],
    ) -> Result<(CpuStorage, Shape)> {
        let (g, u, d) = (
            values::<f32>(s1, l1)?,
            values::<f32>(s2, l2)?,
            values::<f32>(s3, l3)?,
        );
        let mut out = vec![0f32; g.len()];
        simd(|| match self {
            SwigluGrad::Gate => {
                for (((o, &g), &u), &d) in out.iter_mut().zip(g).zip(u).zip(d) {
                    let s = sigmoid(g);
                    *o = d * u * s * (1.0 + g * (1.0 - s));
                }
            }
            SwigluGrad::Up => {
                for ((o, &g), &d) in out.iter_mut().zip(g).zip(d) {
                    *o = d * g * sigmoid(g);
                }
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Rotary positions on `x` `[.., t, d]` with dimensions paired as (2i, 2i+1), the angles'
/// cosines and sines `[t, d / 2]` frozen.
pub fn rope_interleaved(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if on_cpu(x) && on_cpu(cos) && on_cpu(sin) {
        let (cos, sin) = (cos.contiguous()?, sin.contiguous()?);
        x.contiguous()?
            .apply_op3(&cos, &sin, Fused(Rotate { inverse: false }))
    } else {
        candle_nn::rotary_emb::rope_i(&x.contiguous()?, cos, sin)
    }
}

/// Turns each pair by its angle; the inverse turns back, which is the backward pass.
struct Rotate {
    inverse: bool,
}

impl Kernel<3> for Rotate {
    const NAME: &'static str = "fused-rope";

    fn forward(
        &self,
        [(s1, l1), (s2, l2), (s3, l3)]: [Input<'_>; 3],
    ) -> Result<(CpuStorage, Shape)> {
        let (x, cos, sin) = (
            values::<f32>(s1, l1)?,
            values::<f32>(s2, l2)?,
            values::<f32>(s3, l3)?,
        );
        let dims = l1.dims();
        let (t, d) = match dims {
            [.., t, d] => (*t, *d),
            _ => bail!("rope: {dims:?} has no positions"),
        };
        if cos.len() != t * d / 2 || sin.len() != cos.len() || !d.is_multiple_of(2) {
            bail!("rope: {dims:?} against tables of {}", cos.len());
        }
        let sign = if self.inverse { -1.0 } else { 1.0 };
        let mut y = vec![0f32; x.len()];
        if y.is_empty() {
            return Ok((CpuStorage::F32(y), l1.shape().clone()));
        }
        simd(|| {
            for (yr, xr) in y.chunks_exact_mut(t * d).zip(x.chunks_exact(t * d)) {
                for p in 0..t {
                    let (c, s) = (
                        &cos[p * d / 2..(p + 1) * d / 2],
                        &sin[p * d / 2..(p + 1) * d / 2],
                    );
                    let (yp, xp) = (&mut yr[p * d..(p + 1) * d], &xr[p * d..(p + 1) * d]);
                    for i in 0..d / 2 {
                        let (x0, x1, s) = (xp[2 * i], xp[2 * i + 1], sign * s[i]);
                        yp[2 * i] = x0 * c[i] - x1 * s;
                        yp[2 * i + 1] = x0 * s + x1 * c[i];
                    }
                }
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn backward(
        &self,
        [_, cos, sin]: [&Tensor; 3],
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<[Option<Tensor>; 3]> {
        let back = Rotate {
            inverse: !self.inverse,
        };
        let dx = Tensor::apply_op3_no_bwd(&grad.contiguous()?, cos, sin, &Fused(back))?;
        Ok([Some(dx), None, None])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// Each kernel against candle's composed ops, values and input gradients.
    #[test]
    fn kernels_match_candles_composed_ops_with_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 5, 8), &dev)?)?;
        let y = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 5, 8), &dev)?)?;
        let w = Tensor::randn(0f32, 1.0, 8, &dev)?;
        let angles = Tensor::randn(0f32, 1.0, (5, 4), &dev)?;
        let (cos, sin) = (angles.cos()?, angles.sin()?);
        let weights = Tensor::randn(0f32, 1.0, (2, 3, 5, 8), &dev)?;
        let composed_rope = |x: &Tensor| -> Result<Tensor> {
            let pairs = x.reshape((2, 3, 5, 4, 2))?;
            let (x0, x1) = (pairs.narrow(4, 0, 1)?, pairs.narrow(4, 1, 1)?);
            let (c, s) = (cos.reshape((1, 1, 5, 4, 1))?, sin.reshape((1, 1, 5, 4, 1))?);
            let y0 = (x0.broadcast_mul(&c)? - x1.broadcast_mul(&s)?)?;
            let y1 = (x0.broadcast_mul(&s)? + x1.broadcast_mul(&c)?)?;
            Tensor::cat(&[y0, y1], 4)?.reshape((2, 3, 5, 8))
        };
        let ms = x.sqr()?.mean_keepdim(candle_core::D::Minus1)?;
        let cases = [
            (
                rms_norm(&x, &w, 1e-5)?,
                x.broadcast_div(&(ms + 1e-5)?.sqrt()?)?.broadcast_mul(&w)?,
            ),
            (swiglu(&x, &y)?, (x.silu()? * y.as_tensor())?),
            (rope_interleaved(&x, &cos, &sin)?, composed_rope(&x)?),
        ];
        for (i, (ours, theirs)) in cases.iter().enumerate() {
            assert!(max_diff(ours, theirs) < 1e-4, "case {i}: values differ");
            let ga = (ours * &weights)?.sum_all()?.backward()?;
            let gb = (theirs * &weights)?.sum_all()?.backward()?;
            for v in [&x, &y] {
                match (ga.get(v), gb.get(v)) {
                    (Some(a), Some(b)) => {
                        assert!(max_diff(a, b) < 1e-4, "case {i}: gradients differ")
                    }
                    (None, None) => {}
                    _ => panic!("case {i}: a gradient is missing"),
                }
            }
        }
        Ok(())
    }
}
