//! The element-wise and row-wise kernels: GELU, the bias add and its column sum, the causal
//! softmax, each with its backward pass, and with its CUDA form in `crate::nn::cuda`.

use candle_core::{bail, CpuStorage, Result, Shape, Tensor, D};

use super::{dot, exp, fused_here, lane_max, lane_sum, simd, values, Fused, Input, Kernel};
#[cfg(feature = "cuda")]
use {crate::nn::cuda::CudaInput, candle_core::CudaStorage};

#[inline(always)]
fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

const GELU_K: f32 = 0.797_884_6; // sqrt(2 / pi)
const GELU_C: f32 = 0.044_715;

/// GELU with the tanh approximation (GPT-2's), like candle's `gelu`.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if fused_here(x) {
        x.contiguous()?.apply_op1(Fused(Gelu))
    } else {
        x.gelu()
    }
}

struct Gelu;

impl Kernel<1> for Gelu {
    const NAME: &'static str = "fused-gelu";

    #[cfg(feature = "cuda")]
    fn cuda(&self, [a]: [CudaInput<'_>; 1]) -> Result<(CudaStorage, Shape)> {
        crate::nn::cuda::gelu(a)
    }

    fn forward(&self, [(s, l)]: [Input<'_>; 1]) -> Result<(CpuStorage, Shape)> {
        let x = values::<f32>(s, l)?;
        let mut y = vec![0f32; x.len()];
        simd(|| {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = 0.5 * x * (1.0 + tanh(GELU_K * (x + GELU_C * x * x * x)));
            }
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn backward(
        &self,
        [x]: [&Tensor; 1],
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<[Option<Tensor>; 1]> {
        Ok([Some(
            x.apply_op2_no_bwd(&grad.contiguous()?, &Fused(GeluGrad))?,
        )])
    }
}

/// `grad * gelu'(x)`.
struct GeluGrad;

impl Kernel<2> for GeluGrad {
    const NAME: &'static str = "fused-gelu-grad";

    #[cfg(feature = "cuda")]
    fn cuda(&self, [a, b]: [CudaInput<'_>; 2]) -> Result<(CudaStorage, Shape)> {
        crate::nn::cuda::gelu_grad(a, b)
    }

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (values::<f32>(s1, l1)?, values::<f32>(s2, l2)?);
        let mut dx = vec![0f32; x.len()];
        simd(|| {
            for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(g) {
                let x2 = x * x;
                let t = tanh(GELU_K * x * (1.0 + GELU_C * x2));
                let d =
                    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_C * x2);
                *dx = g * d;
            }
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// `x [rows, n] + bias [n]` on every row. candle's broadcast add sums the bias gradient with
/// a generic strided reduction; this one sums rows with vector adds.
pub fn add_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if fused_here(x) && x.rank() == 2 {
        x.contiguous()?
            .apply_op2(&bias.contiguous()?, Fused(AddBias))
    } else {
        x.broadcast_add(bias)
    }
}

struct AddBias;

impl Kernel<2> for AddBias {
    const NAME: &'static str = "fused-add-bias";

    #[cfg(feature = "cuda")]
    fn cuda(&self, [a, b]: [CudaInput<'_>; 2]) -> Result<(CudaStorage, Shape)> {
        crate::nn::cuda::add_bias(a, b)
    }

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let (x, b) = (values::<f32>(s1, l1)?, values::<f32>(s2, l2)?);
        let (_, n) = l1.shape().dims2()?;
        if b.len() != n {
            bail!("add_bias: rows of {n} but a bias of {}", b.len());
        }
        let mut y = x.to_vec();
        simd(|| {
            for row in y.chunks_exact_mut(n) {
                row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn backward(&self, _: [&Tensor; 2], _: &Tensor, grad: &Tensor) -> Result<[Option<Tensor>; 2]> {
        let db = grad.contiguous()?.apply_op1_no_bwd(&Fused(ColumnSum))?;
        Ok([Some(grad.clone()), Some(db)])
    }
}

/// Sum of the rows of `[rows, n]`.
pub(in crate::nn) struct ColumnSum;

impl Kernel<1> for ColumnSum {
    const NAME: &'static str = "fused-column-sum";

    #[cfg(feature = "cuda")]
    fn cuda(&self, [a]: [CudaInput<'_>; 1]) -> Result<(CudaStorage, Shape)> {
        crate::nn::cuda::column_sum(a)
    }

    fn forward(&self, [(s, l)]: [Input<'_>; 1]) -> Result<(CpuStorage, Shape)> {
        let x = values::<f32>(s, l)?;
        let (_, n) = l.shape().dims2()?;
        let mut sum = vec![0f32; n];
        simd(|| {
            for row in x.chunks_exact(n) {
                sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
        });
        Ok((CpuStorage::F32(sum), Shape::from(n)))
    }
}

/// Softmax over the last dimension of attention scores `[.., t, keys]`, scaled by `scale` and
/// causal: query `i` sits at position `keys - t + i` and sees the keys up to it (the others
/// get probability 0).
pub fn causal_softmax(scores: &Tensor, scale: f64) -> Result<Tensor> {
    if fused_here(scores) {
        let op = CausalSoftmax {
            scale: scale as f32,
        };
        return scores.contiguous()?.apply_op1(Fused(op));
    }
    let (t, keys) = (scores.dim(D::Minus2)?, scores.dim(D::Minus1)?);
    let past = keys - t;
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..keys).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    let mask = Tensor::from_vec(mask, (t, keys), scores.device())?.to_dtype(scores.dtype())?;
    candle_nn::ops::softmax(&(scores * scale)?.broadcast_add(&mask)?, D::Minus1)
}

/// Softmax of a row, in place.
#[inline(always)]
pub(in crate::nn) fn softmax_in_place(row: &mut [f32]) {
    let max = lane_max(row);
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let inv = 1.0 / lane_sum(row, |v| v);
    row.iter_mut().for_each(|v| *v *= inv);
}

struct CausalSoftmax {
    scale: f32,
}

impl Kernel<1> for CausalSoftmax {
    const NAME: &'static str = "fused-causal-softmax";

    #[cfg(feature = "cuda")]
    fn cuda(&self, [a]: [CudaInput<'_>; 1]) -> Result<(CudaStorage, Shape)> {
        crate::nn::cuda::causal_softmax(self.scale, a)
    }

    fn forward(&self, [(s, l)]: [Input<'_>; 1]) -> Result<(CpuStorage, Shape)> {
        let x = values::<f32>(s, l)?;
        let dims = l.dims();
        let (t, keys) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        let past = keys - t;
        let mut p = vec![0f32; x.len()];
        simd(|| {
            for (r, (row, out)) in x
                .chunks_exact(keys)
                .zip(p.chunks_exact_mut(keys))
                .enumerate()
            {
                let seen = past + r % t + 1;
                for (o, &v) in out[..seen].iter_mut().zip(&row[..seen]) {
                    *o = v * self.scale;
                }
                softmax_in_place(&mut out[..seen]);
            }
        });
        Ok((CpuStorage::F32(p), l.shape().clone()))
    }

    fn backward(&self, _: [&Tensor; 1], p: &Tensor, grad: &Tensor) -> Result<[Option<Tensor>; 1]> {
        let grad = grad.contiguous()?;
        Ok([Some(p.apply_op2_no_bwd(
            &grad,
            &Fused(SoftmaxGrad { scale: self.scale }),
        )?)])
    }
}

/// `scale * p * (grad - sum(grad * p))` row by row: the softmax's backward pass.
struct SoftmaxGrad {
    scale: f32,
}

impl Kernel<2> for SoftmaxGrad {
    const NAME: &'static str = "fused-softmax-grad";

    #[cfg(feature = "cuda")]
    fn cuda(&self, [a, b]: [CudaInput<'_>; 2]) -> Result<(CudaStorage, Shape)> {
        crate::nn::cuda::softmax_grad(self.scale, a, b)
    }

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let (p, g) = (values::<f32>(s1, l1)?, values::<f32>(s2, l2)?);
        let keys = *l1.dims().last().unwrap_or(&1);
        let mut dx = vec![0f32; p.len()];
        simd(|| {
            for ((p, g), dx) in p
                .chunks_exact(keys)
                .zip(g.chunks_exact(keys))
                .zip(dx.chunks_exact_mut(keys))
            {
                let dot = dot(p, g);
                for ((d, &p), &g) in dx.iter_mut().zip(p).zip(g) {
                    *d = self.scale * p * (g - dot);
                }
            }
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::fused::tests::agree;
    use candle_core::{Device, Var};

    #[test]
    fn add_bias_matches_a_broadcast_add_with_both_gradients() -> Result<()> {
        let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, 9, &Device::Cpu)?)?;
        agree(|x| add_bias(x, &b), |x| x.broadcast_add(&b), &[5, 9])?;
        let x = Tensor::randn(0f32, 1.0, (5, 9), &Device::Cpu)?;
        let g = Tensor::randn(0f32, 1.0, (5, 9), &Device::Cpu)?;
        let ga = (add_bias(&x, &b)? * &g)?.sum_all()?.backward()?;
        let gb = (x.broadcast_add(&b)? * &g)?.sum_all()?.backward()?;
        let (a, r) = (
            ga.get(b.as_tensor()).unwrap(),
            gb.get(b.as_tensor()).unwrap(),
        );
        let diff = (a - r)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "bias gradients differ by {diff}");
        Ok(())
    }

    #[test]
    fn gelu_matches_candle() -> Result<()> {
        agree(gelu, |x| x.gelu(), &[3, 50])
    }

    #[test]
    fn causal_softmax_matches_a_masked_softmax() -> Result<()> {
        let masked = |x: &Tensor| {
            let (t, keys) = (x.dim(D::Minus2)?, x.dim(D::Minus1)?);
            let mask: Vec<f32> = (0..t)
                .flat_map(|i| (0..keys).map(move |j| if j > keys - t + i { -1e9 } else { 0.0 }))
                .collect();
            let mask = Tensor::from_vec(mask, (t, keys), x.device())?;
            candle_nn::ops::softmax(&(x * 0.3)?.broadcast_add(&mask)?, D::Minus1)
        };
        agree(|x| causal_softmax(x, 0.3), masked, &[2, 3, 5, 5])?;
        // Fewer queries than keys: the queries come after a cached past.
        agree(|x| causal_softmax(x, 0.3), masked, &[2, 3, 5])
    }
}
