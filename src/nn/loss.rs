//! Cross-entropy as one fused CPU kernel with its backward pass: the log-sum-exp and the
//! softmax of a row in one pass each, where candle composes them from several ops.

use candle_core::{bail, CpuStorage, DType, Result, Shape, Tensor};

use super::fused::{exp, fused_here, lane_max, lane_sum, simd, values, Fused, Input, Kernel};
#[cfg(feature = "cuda")]
use {super::cuda::CudaInput, candle_core::CudaStorage};

/// Mean cross-entropy of `logits` `[n, classes]` against class ids `targets` `[n]` (u32).
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if fused_here(logits) && targets.dtype() == DType::U32 {
        logits
            .contiguous()?
            .apply_op2(&targets.contiguous()?, Fused(CrossEntropy))
    } else {
        candle_nn::loss::cross_entropy(logits, targets)
    }
}

struct CrossEntropy;

/// The row's log-sum-exp and, when `probs` is given, its softmax.
#[inline(always)]
fn log_sum_exp(row: &[f32], probs: Option<&mut [f32]>) -> f32 {
    let max = lane_max(row);
    let sum = match probs {
        Some(p) => {
            for (p, &v) in p.iter_mut().zip(row) {
                *p = exp(v - max);
            }
            let sum = lane_sum(p, |v| v);
            let inv = 1.0 / sum;
            p.iter_mut().for_each(|p| *p *= inv);
            sum
        }
        None => lane_sum(row, |v| exp(v - max)),
    };
    max + sum.ln()
}

fn check_targets(targets: &[u32], rows: usize, classes: usize) -> Result<()> {
    if targets.len() != rows {
        bail!(
            "cross entropy: {rows} rows of logits but {} targets",
            targets.len()
        );
    }
    if let Some(t) = targets.iter().find(|&&t| t as usize >= classes) {
        bail!("cross entropy: target {t} is not one of the {classes} classes");
    }
    Ok(())
}

impl Kernel<2> for CrossEntropy {
    const NAME: &'static str = "fused-cross-entropy";

    #[cfg(feature = "cuda")]
    fn cuda(&self, [x, t]: [CudaInput<'_>; 2]) -> Result<(CudaStorage, Shape)> {
        super::cuda::cross_entropy(x, t)
    }

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let (x, targets) = (values::<f32>(s1, l1)?, values::<u32>(s2, l2)?);
        let (rows, classes) = l1.shape().dims2()?;
        check_targets(targets, rows, classes)?;
        let total = simd(|| {
            x.chunks_exact(classes)
                .zip(targets)
                .map(|(row, &t)| (log_sum_exp(row, None) - row[t as usize]) as f64)
                .sum::<f64>()
        });
        let mean = (total / rows.max(1) as f64) as f32;
        Ok((CpuStorage::F32(vec![mean]), Shape::from(())))
    }

    fn backward(
        &self,
        [logits, targets]: [&Tensor; 2],
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<[Option<Tensor>; 2]> {
        let d = logits.apply_op2_no_bwd(targets, &Fused(CrossEntropyGrad))?;
        Ok([Some(d.broadcast_mul(grad)?), None])
    }
}

/// `(softmax(logits) - onehot(target)) / n`.
struct CrossEntropyGrad;

impl Kernel<2> for CrossEntropyGrad {
    const NAME: &'static str = "fused-cross-entropy-grad";

    #[cfg(feature = "cuda")]
    fn cuda(&self, [x, t]: [CudaInput<'_>; 2]) -> Result<(CudaStorage, Shape)> {
        super::cuda::cross_entropy_grad(x, t)
    }

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let (x, targets) = (values::<f32>(s1, l1)?, values::<u32>(s2, l2)?);
        let (rows, classes) = l1.shape().dims2()?;
        check_targets(targets, rows, classes)?;
        let mut d = vec![0f32; x.len()];
        let inv = 1.0 / rows.max(1) as f32;
        simd(|| {
            for ((row, d), &t) in x
                .chunks_exact(classes)
                .zip(d.chunks_exact_mut(classes))
                .zip(targets)
            {
                log_sum_exp(row, Some(d));
                d[t as usize] -= 1.0;
                d.iter_mut().for_each(|v| *v *= inv);
            }
        });
        Ok((CpuStorage::F32(d), l1.shape().clone()))
    }
}

/// The least-squares GAN loss `mean((x - target)^2)` of a discriminator's logits, as one
/// kernel each way (candle composes it from four ops and their gradients).
pub fn least_squares(x: &Tensor, target: f32) -> Result<Tensor> {
    if fused_here(x) {
        x.contiguous()?.apply_op1(Fused(LeastSquares { target }))
    } else {
        (x - target as f64)?.sqr()?.mean_all()
    }
}

struct LeastSquares {
    target: f32,
}

impl Kernel<1> for LeastSquares {
    const NAME: &'static str = "fused-least-squares";

    #[cfg(feature = "cuda")]
    fn cuda(&self, [x]: [CudaInput<'_>; 1]) -> Result<(CudaStorage, Shape)> {
        super::cuda::least_squares(self.target, x)
    }

    fn forward(&self, [(s, l)]: [Input<'_>; 1]) -> Result<(CpuStorage, Shape)> {
        let x = values::<f32>(s, l)?;
        let t = self.target;
        let total: f64 = x.iter().map(|&v| ((v - t) * (v - t)) as f64).sum();
        let mean = (total / x.len().max(1) as f64) as f32;
        Ok((CpuStorage::F32(vec![mean]), Shape::from(())))
    }

    fn backward(
        &self,
        [x]: [&Tensor; 1],
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<[Option<Tensor>; 1]> {
        let target = self.target;
        let d = x.apply_op1_no_bwd(&Fused(LeastSquaresGrad { target }))?;
        Ok([Some(d.broadcast_mul(grad)?)])
    }
}

/// `2 (x - target) / n`.
struct LeastSquaresGrad {
    target: f32,
}

impl Kernel<1> for LeastSquaresGrad {
    const NAME: &'static str = "fused-least-squares-grad";

    #[cfg(feature = "cuda")]
    fn cuda(&self, [x]: [CudaInput<'_>; 1]) -> Result<(CudaStorage, Shape)> {
        super::cuda::least_squares_grad(self.target, x)
    }

    fn forward(&self, [(s, l)]: [Input<'_>; 1]) -> Result<(CpuStorage, Shape)> {
        let x = values::<f32>(s, l)?;
        let k = 2.0 / x.len().max(1) as f32;
        let d = x.iter().map(|&v| k * (v - self.target)).collect();
        Ok((CpuStorage::F32(d), l.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::fused::tests::agree;
    use candle_core::Device;

    #[test]
    fn cross_entropy_matches_candle() -> Result<()> {
        let targets = Tensor::new(&[3u32, 0, 9, 4], &Device::Cpu)?;
        agree(
            |x| cross_entropy(x, &targets),
            |x| candle_nn::loss::cross_entropy(x, &targets),
            &[4, 10],
        )?;
        let bad = Tensor::new(&[3u32, 0, 10, 4], &Device::Cpu)?;
        let x = Tensor::zeros((4, 10), DType::F32, &Device::Cpu)?;
        assert!(cross_entropy(&x, &bad).is_err());
        Ok(())
    }

    #[test]
    fn least_squares_matches_candle() -> Result<()> {
        for target in [0.0, 1.0] {
            agree(
                |x| least_squares(x, target),
                |x| (x - target as f64)?.sqr()?.mean_all(),
                &[3, 1, 4, 5],
            )?;
        }
        Ok(())
    }
}
