//! Causal self-attention as one CPU kernel with its backward pass: from the packed query, key
//! and value projections `[batch * time, 3 * width]` straight to the heads' outputs
//! `[batch * time, width]`. The composed form splits heads with narrow, transpose and copy,
//! and every one of those ops costs a zeroed gradient buffer and an add on the way back; here
//! each head's products read the packed rows in place through strides.

use candle_core::{bail, CpuStorage, Layout, Result, Shape, Tensor};

use super::fused::{on_cpu, simd, values, Fused, Input, Kernel};
use super::gemm::{gemm, View};

/// Whether [`causal_attention`] can run on `qkv` (else compose it from candle's ops).
pub fn fused_attention_available(qkv: &Tensor) -> bool {
    on_cpu(qkv) && qkv.rank() == 2
}

/// Multi-head causal attention over packed projections `[b * t, 3c]`, rows batch-major
/// (queries, keys, values, each `heads` heads of `c / heads`), scaled by 1/sqrt(head width).
/// CPU only: see [`fused_attention_available`].
pub fn causal_attention(qkv: &Tensor, heads: usize, time: usize) -> Result<Tensor> {
    let (rows, c3) = qkv.dims2()?;
    if c3 % (3 * heads) != 0 || time == 0 || rows % time != 0 {
        bail!(
            "attention: {rows}x{c3} does not split into sequences of {time} and 3 x {heads} heads"
        );
    }
    qkv.contiguous()?
        .apply_op1(Fused(Attention { heads, time }))
}

#[derive(Clone, Copy)]
struct Attention {
    heads: usize,
    time: usize,
}

/// Where one (batch row, head) finds its queries, keys and values in the packed input.
struct Head {
    q: View,
    k: View,
    v: View,
    /// Its columns in the `[b, t, c]` output.
    out: View,
}

impl Attention {
    fn dims(&self, l: &Layout) -> Result<(usize, usize, usize, usize)> {
        let (rows, c3) = l.shape().dims2()?;
        let c = c3 / 3;
        Ok((rows / self.time, self.time, c, c / self.heads))
    }

    fn head(&self, (t, c, d): (usize, usize, usize), bi: usize, h: usize) -> Head {
        let base = bi * t * 3 * c + h * d;
        Head {
            q: View::rows(base, 3 * c),
            k: View::rows(base + c, 3 * c),
            v: View::rows(base + 2 * c, 3 * c),
            out: View::rows(bi * t * c + h * d, c),
        }
    }

    /// The head's attention probabilities `[t, t]` into `p`.
    fn probabilities(&self, qkv: &[f32], head: &Head, t: usize, d: usize, p: &mut [f32]) {
        let scale = 1.0 / (d as f32).sqrt();
        gemm(
            (t, t, d),
            p,
            View::rows(0, t),
            false,
            qkv,
            head.q,
            qkv,
            head.k.transposed(),
            scale,
        );
        for (i, row) in p.chunks_exact_mut(t).enumerate() {
            let (seen, hidden) = row.split_at_mut(i + 1);
            super::fused::softmax_in_place(seen);
            hidden.fill(0.0);
        }
    }
}

impl Kernel<1> for Attention {
    const NAME: &'static str = "fused-causal-attention";

    fn forward(&self, [(s, l)]: [Input<'_>; 1]) -> Result<(CpuStorage, Shape)> {
        let qkv = values::<f32>(s, l)?;
        let (b, t, c, d) = self.dims(l)?;
        let mut y = vec![0f32; b * t * c];
        let mut p = vec![0f32; t * t];
        simd(|| {
            for bi in 0..b {
                for h in 0..self.heads {
                    let head = self.head((t, c, d), bi, h);
                    self.probabilities(qkv, &head, t, d, &mut p);
                    gemm(
                        (t, d, t),
                        &mut y,
                        head.out,
                        false,
                        &p,
                        View::rows(0, t),
                        qkv,
                        head.v,
                        1.0,
                    );
                }
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((b * t, c))))
    }

    fn backward(
        &self,
        [qkv]: [&Tensor; 1],
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<[Option<Tensor>; 1]> {
        let d = qkv.apply_op2_no_bwd(&grad.contiguous()?, &Fused(AttentionGrad(*self)))?;
        Ok([Some(d)])
    }
}

/// The gradient of [`Attention`] with respect to its packed input, given the output's.
struct AttentionGrad(Attention);

impl Kernel<2> for AttentionGrad {
    const NAME: &'static str = "fused-causal-attention-grad";

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let (qkv, dy) = (values::<f32>(s1, l1)?, values::<f32>(s2, l2)?);
        let att = &self.0;
        let (b, t, c, d) = att.dims(l1)?;
        let scale = 1.0 / (d as f32).sqrt();
        let mut dqkv = vec![0f32; qkv.len()];
        let (mut p, mut ds) = (vec![0f32; t * t], vec![0f32; t * t]);
        let square = View::rows(0, t);
        simd(|| {
            for bi in 0..b {
                for h in 0..att.heads {
                    let head = att.head((t, c, d), bi, h);
                    att.probabilities(qkv, &head, t, d, &mut p);
                    // dV = P^T dY; dP = dY V^T.
                    gemm(
                        (t, d, t),
                        &mut dqkv,
                        head.v,
                        false,
                        &p,
                        square.transposed(),
                        dy,
                        head.out,
                        1.0,
                    );
                    gemm(
                        (t, t, d),
                        &mut ds,
                        square,
                        false,
                        dy,
                        head.out,
                        qkv,
                        head.v.transposed(),
                        1.0,
                    );
                    // Through the softmax (and the scale): dS = scale * P (dP - sum(dP P)).
                    for (p, ds) in p.chunks_exact(t).zip(ds.chunks_exact_mut(t)) {
                        let dot = super::fused::dot(p, ds);
                        for (g, &p) in ds.iter_mut().zip(p) {
                            *g = scale * p * (*g - dot);
                        }
                    }
                    // dQ = dS K; dK = dS^T Q.
                    gemm(
                        (t, d, t),
                        &mut dqkv,
                        head.q,
                        false,
                        &ds,
                        square,
                        qkv,
                        head.k,
                        1.0,
                    );
                    gemm(
                        (t, d, t),
                        &mut dqkv,
                        head.k,
                        false,
                        &ds,
                        square.transposed(),
                        qkv,
                        head.q,
                        1.0,
                    );
                }
            }
        });
        Ok((CpuStorage::F32(dqkv), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The same attention from candle's ops: split heads, masked softmax, merge.
    fn composed(qkv: &Tensor, heads: usize) -> Result<Tensor> {
        let (b, t, c3) = qkv.dims3()?;
        let (c, d) = (c3 / 3, c3 / 3 / heads);
        let split = |i: usize| {
            qkv.narrow(2, i * c, c)?
                .reshape((b, t, heads, d))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let att =
            super::super::fused::causal_softmax(&q.matmul(&k.t()?)?, 1.0 / (d as f64).sqrt())?;
        att.matmul(&v)?.transpose(1, 2)?.reshape((b, t, c))
    }

    #[test]
    fn matches_the_composed_attention_with_its_gradient() -> Result<()> {
        let qkv = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 5, 24), &Device::Cpu)?)?;
        let a = causal_attention(&qkv.reshape((10, 24))?, 2, 5)?.reshape((2, 5, 8))?;
        let r = composed(&qkv, 2)?;
        let diff = (&a - &r)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "outputs differ by {diff}");
        let w = Tensor::randn(0f32, 1.0, a.shape(), &Device::Cpu)?;
        let ga = (a * &w)?.sum_all()?.backward()?;
        let gr = (r * &w)?.sum_all()?.backward()?;
        let (ga, gr) = (ga.get(&qkv).unwrap(), gr.get(&qkv).unwrap());
        let diff = (ga - gr)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "gradients differ by {diff}");
        Ok(())
    }

    #[test]
    fn a_query_never_sees_later_positions() -> Result<()> {
        let a = Tensor::randn(0f32, 1.0, (6, 12), &Device::Cpu)?;
        let tail = Tensor::randn(0f32, 1.0, (3, 12), &Device::Cpu)?;
        let b = Tensor::cat(&[&a.narrow(0, 0, 3)?, &tail], 0)?;
        let (ya, yb) = (causal_attention(&a, 2, 6)?, causal_attention(&b, 2, 6)?);
        let diff = (ya.narrow(0, 0, 3)? - yb.narrow(0, 0, 3)?)?
            .abs()?
            .max_all()?;
        assert_eq!(diff.to_scalar::<f32>()?, 0.0);
        Ok(())
    }
}
