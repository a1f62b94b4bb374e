//! Layer normalisation that trains, as one CPU kernel forward and one backward (which gives
//! the input's, the weight's and the bias's gradients in a single pass).

use candle_core::{bail, CpuStorage, Result, Shape, Tensor};

use super::fused::{dot, fused_here, lane_sum, simd, values, Fused, Input, Kernel};
#[cfg(feature = "cuda")]
use {super::cuda::CudaInput, candle_core::CudaStorage};

/// Layer normalisation that trains. candle-nn's own `LayerNorm` runs a fused kernel that
/// records no backward pass (`apply_op*_no_bwd`): gradients silently stop there. This one's
/// kernel has its backward pass ([`normalize`]).
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

pub fn layer_norm(size: usize, vb: candle_nn::VarBuilder) -> candle_core::Result<LayerNorm> {
    Ok(LayerNorm {
        weight: vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?,
        bias: vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?,
        eps: 1e-5,
    })
}

impl candle_core::Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        normalize(x, &self.weight, &self.bias, self.eps)
    }
}

/// Layer normalisation over the last dimension, with weight and bias.
pub fn normalize(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
    if fused_here(x) {
        x.contiguous()?
            .apply_op3(weight, bias, Fused(Normalize { eps }))
    } else {
        candle_nn::ops::layer_norm_slow(x, weight, bias, eps)
    }
}

struct Normalize {
    eps: f32,
}

/// Mean and 1/standard deviation of a row.
#[inline(always)]
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = lane_sum(row, |v| v) / n;
    let var = lane_sum(row, |v| (v - mean) * (v - mean)) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl Kernel<3> for Normalize {
    const NAME: &'static str = "fused-layer-norm";

    #[cfg(feature = "cuda")]
    fn cuda(&self, [x, w, b]: [CudaInput<'_>; 3]) -> Result<(CudaStorage, Shape)> {
        super::cuda::layer_norm(self.eps, x, w, b)
    }

    fn forward(
        &self,
        [(s1, l1), (s2, l2), (s3, l3)]: [Input<'_>; 3],
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (
            values::<f32>(s1, l1)?,
            values::<f32>(s2, l2)?,
            values::<f32>(s3, l3)?,
        );
        let c = w.len();
        if c == 0 || x.len() % c != 0 || b.len() != c {
            bail!(
                "layer norm: {} values do not split into rows of {c}",
                x.len()
            );
        }
        let mut y = vec![0f32; x.len()];
        simd(|| {
            for (row, out) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
                let (mean, rstd) = moments(row, self.eps);
                for (((o, &v), &w), &b) in out.iter_mut().zip(row).zip(w).zip(b) {
                    *o = (v - mean) * rstd * w + b;
                }
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn backward(
        &self,
        [x, w, _]: [&Tensor; 3],
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<[Option<Tensor>; 3]> {
        let c = w.elem_count();
        let rows = x.elem_count() / c;
        // One pass gives all three: dx in the first rows, then dweight and dbias.
        let all = x.apply_op3_no_bwd(
            w,
            &grad.contiguous()?,
            &Fused(LayerNormGrad { eps: self.eps }),
        )?;
        let dx = all.narrow(0, 0, rows)?.reshape(x.shape())?;
        Ok([Some(dx), Some(all.get(rows)?), Some(all.get(rows + 1)?)])
    }
}

struct LayerNormGrad {
    eps: f32,
}

impl Kernel<3> for LayerNormGrad {
    const NAME: &'static str = "fused-layer-norm-grad";

    #[cfg(feature = "cuda")]
    fn cuda(&self, [x, w, g]: [CudaInput<'_>; 3]) -> Result<(CudaStorage, Shape)> {
        super::cuda::layer_norm_grad(self.eps, x, w, g)
    }

    fn forward(
        &self,
        [(s1, l1), (s2, l2), (s3, l3)]: [Input<'_>; 3],
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, g) = (
            values::<f32>(s1, l1)?,
            values::<f32>(s2, l2)?,
            values::<f32>(s3, l3)?,
        );
        let c = w.len();
        let rows = x.len() / c;
        let mut out = vec![0f32; x.len() + 2 * c];
        simd(|| {
            let (dx, dwb) = out.split_at_mut(x.len());
            let (dw, db) = dwb.split_at_mut(c);
            let (mut xhat, mut gw) = (vec![0f32; c], vec![0f32; c]);
            for ((row, g), dx) in x
                .chunks_exact(c)
                .zip(g.chunks_exact(c))
                .zip(dx.chunks_exact_mut(c))
            {
                let (mean, rstd) = moments(row, self.eps);
                for i in 0..c {
                    xhat[i] = (row[i] - mean) * rstd;
                    gw[i] = g[i] * w[i];
                }
                let mean_gw = lane_sum(&gw, |v| v) / c as f32;
                let mean_gwx = dot(&gw, &xhat) / c as f32;
                for i in 0..c {
                    dx[i] = rstd * (gw[i] - mean_gw - xhat[i] * mean_gwx);
                    dw[i] += g[i] * xhat[i];
                    db[i] += g[i];
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((rows + 2, c))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::fused::tests::agree;
    use candle_core::{Device, Var};

    #[test]
    fn layer_norm_matches_candle_with_all_gradients() -> Result<()> {
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.5, 7, &Device::Cpu)?)?;
        let b = Var::from_tensor(&Tensor::randn(0f32, 0.5, 7, &Device::Cpu)?)?;
        agree(
            |x| normalize(x, &w, &b, 1e-5),
            |x| candle_nn::ops::layer_norm_slow(x, &w, &b, 1e-5),
            &[4, 3, 7],
        )?;
        let x = Tensor::randn(0f32, 1.0, (6, 7), &Device::Cpu)?;
        let g = Tensor::randn(0f32, 1.0, (6, 7), &Device::Cpu)?;
        let ga = (normalize(&x, &w, &b, 1e-5)? * &g)?.sum_all()?.backward()?;
        let gb = (candle_nn::ops::layer_norm_slow(&x, &w, &b, 1e-5)? * &g)?
            .sum_all()?
            .backward()?;
        for v in [&w, &b] {
            let (a, b) = (
                ga.get(v.as_tensor()).unwrap(),
                gb.get(v.as_tensor()).unwrap(),
            );
            let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-4, "parameter gradients differ by {diff}");
        }
        Ok(())
    }
}
