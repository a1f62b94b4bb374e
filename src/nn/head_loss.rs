//! A language model's output layer and its cross-entropy as one op, a few rows at a time.
//!
//! Composed, a batch of 1,024 tokens over SmolLM2's 49k-token vocabulary makes 200 MB of
//! logits, then as much again for their gradient and for each copy on the way; every one is
//! a fresh `mmap` whose pages the kernel must clear, a tenth of a fine-tuning step. Here the
//! logits exist [`ROWS`] rows at a time in a buffer the allocator reuses. The loss is linear
//! in the gradient it receives, so the forward pass also works out the inputs' gradients for
//! a gradient of 1 and the backward pass only scales them: no logits are computed twice.

use std::sync::Mutex;

use candle_core::{bail, CpuStorage, Result, Shape, Tensor};
use rayon::prelude::*;

use super::fused::{exp, lane_max, lane_sum, on_cpu, simd, values, Fused, Input, Kernel};
use super::gemm::{gemm, View};

/// Rows of logits held at once: 128 x 49k floats is 25 MB, under glibc's largest mmap
/// threshold, so the buffer comes from (and goes back to) the heap.
const ROWS: usize = 128;

/// Mean cross-entropy of the logits `[h W^T, h E^T]` (the classes of `w`, then those of
/// `extra`) against `targets`, for rows `h` `[n, d]`, `w` `[v, d]` and `extra` `[x, d]`.
/// `w` is frozen: it gets no gradient; `h` and `extra` do.
pub fn head_cross_entropy(
    h: &Tensor,
    w: &Tensor,
    extra: &Tensor,
    targets: &[u32],
) -> Result<Tensor> {
    if !(on_cpu(h) && on_cpu(w) && on_cpu(extra)) {
        let logits = Tensor::cat(&[h.matmul(&w.t()?)?, h.matmul(&extra.t()?)?], 1)?;
        let t = Tensor::new(targets, h.device())?;
        return candle_nn::loss::cross_entropy(&logits, &t);
    }
    let op = HeadLoss {
        targets: targets.to_vec(),
        want_grads: h.track_op() || extra.track_op(),
        grads: Mutex::new(None),
    };
    h.contiguous()?
        .apply_op3(&w.contiguous()?, &extra.contiguous()?, Fused(op))
}

struct HeadLoss {
    targets: Vec<u32>,
    want_grads: bool,
    /// The gradients of `h` and `extra` for an output gradient of 1, from the forward pass.
    grads: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
}

impl Kernel<3> for HeadLoss {
    const NAME: &'static str = "fused-head-cross-entropy";

    fn forward(&self, [hs, ws, es]: [Input<'_>; 3]) -> Result<(CpuStorage, Shape)> {
        let (n, d) = hs.1.shape().dims2()?;
        let (v, x) = (ws.1.shape().dims2()?.0, es.1.shape().dims2()?.0);
        if ws.1.shape().dims2()?.1 != d || es.1.shape().dims2()?.1 != d {
            bail!("head cross entropy: rows of width {d} against weights of another width");
        }
        if self.targets.len() != n {
            bail!(
                "head cross entropy: {n} rows but {} targets",
                self.targets.len()
            );
        }
        if let Some(t) = self.targets.iter().find(|&&t| t as usize >= v + x) {
            bail!(
                "head cross entropy: target {t} is not one of the {} classes",
                v + x
            );
        }
        let (h, w, e) = (
            values::<f32>(hs.0, hs.1)?,
            values(ws.0, ws.1)?,
            values(es.0, es.1)?,
        );
        let classes = v + x;
        let mut logits = vec![0f32; ROWS.min(n) * classes];
        let (mut dh, mut de) = if self.want_grads {
            (vec![0f32; n * d], vec![0f32; x * d])
        } else {
            (Vec::new(), Vec::new())
        };
        let mut total = 0f64;
        let by_row = View::rows(0, d).transposed();
        for start in (0..n).step_by(ROWS) {
            let r = ROWS.min(n - start);
            let rows = View::rows(start * d, d);
            let buf = &mut logits[..r * classes];
            gemm(
                (r, v, d),
                buf,
                View::rows(0, classes),
                false,
                h,
                rows,
                w,
                by_row,
                1.0,
            );
            gemm(
                (r, x, d),
                buf,
                View::rows(v, classes),
                false,
                h,
                rows,
                e,
                by_row,
                1.0,
            );
            let targets = &self.targets[start..start + r];
            total += softmax_rows(buf, classes, targets, self.want_grads, 1.0 / n as f32);
            if self.want_grads {
                // d logits is now in `buf`: dh = dL W + dX E, dE += dX^T h.
                let (to, cols) = (View::rows(start * d, d), View::rows(v, classes));
                gemm(
                    (r, d, v),
                    &mut dh,
                    to,
                    false,
                    buf,
                    View::rows(0, classes),
                    w,
                    View::rows(0, d),
                    1.0,
                );
                gemm(
                    (r, d, x),
                    &mut dh,
                    to,
                    true,
                    buf,
                    cols,
                    e,
                    View::rows(0, d),
                    1.0,
                );
                gemm(
                    (x, d, r),
                    &mut de,
                    View::rows(0, d),
                    true,
                    buf,
                    cols.transposed(),
                    h,
                    rows,
                    1.0,
                );
            }
        }
        if self.want_grads {
            *self.grads.lock().unwrap_or_else(|e| e.into_inner()) = Some((dh, de));
        }
        let mean = (total / n.max(1) as f64) as f32;
        Ok((CpuStorage::F32(vec![mean]), Shape::from(())))
    }

    fn backward(
        &self,
        [h, _, extra]: [&Tensor; 3],
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<[Option<Tensor>; 3]> {
        let taken = self.grads.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some((dh, de)) = taken else {
            bail!("head cross entropy: a second backward pass, or one without a forward pass");
        };
        let g = grad.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        let dh = Tensor::from_vec(dh, h.shape(), h.device())?.affine(g, 0.0)?;
        let de = Tensor::from_vec(de, extra.shape(), extra.device())?.affine(g, 0.0)?;
        Ok([Some(dh), None, Some(de)])
    }
}

/// Each row's `log-sum-exp - logit[target]`, summed; with `grads`, each row becomes its
/// gradient `(softmax - onehot(target)) * scale`. Rows are shared among rayon's threads.
fn softmax_rows(buf: &mut [f32], classes: usize, targets: &[u32], grads: bool, scale: f32) -> f64 {
    buf.par_chunks_mut(classes)
        .zip(targets.par_iter())
        .map(|(row, &t)| {
            simd(|| {
                let target = row[t as usize];
                let max = lane_max(row);
                let sum = if grads {
                    row.iter_mut().for_each(|v| *v = exp(*v - max));
                    lane_sum(row, |v| v)
                } else {
                    lane_sum(row, |v| exp(v - max))
                };
                if grads {
                    let k = scale / sum;
                    row.iter_mut().for_each(|v| *v *= k);
                    row[t as usize] -= scale;
                }
                (max + sum.ln() - target) as f64
            })
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The op gives candle's composed loss and the same gradients for `h` and `extra`, over
    /// more rows than one buffer holds.
    #[test]
    fn matches_the_composed_head_and_loss() -> Result<()> {
        let dev = Device::Cpu;
        let (n, d, v, x) = (ROWS + 37, 24, 50, 3);
        let h = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, d), &dev)?)?;
        let w = Tensor::randn(0f32, 0.5, (v, d), &dev)?;
        let e = Var::from_tensor(&Tensor::randn(0f32, 0.5, (x, d), &dev)?)?;
        let targets: Vec<u32> = (0..n).map(|i| ((i * 7) % (v + x)) as u32).collect();

        let fused = (head_cross_entropy(h.as_tensor(), &w, e.as_tensor(), &targets)? * 3.0)?;
        let logits = Tensor::cat(&[h.matmul(&w.t()?)?, h.matmul(&e.t()?)?], 1)?;
        let t = Tensor::new(targets.as_slice(), &dev)?;
        let composed = (candle_nn::loss::cross_entropy(&logits, &t)? * 3.0)?;
        let diff = (fused.to_scalar::<f32>()? - composed.to_scalar::<f32>()?).abs();
        assert!(diff < 1e-4, "loss differs by {diff}");

        let (gf, gc) = (fused.backward()?, composed.backward()?);
        for var in [h.as_tensor(), e.as_tensor()] {
            let (a, b) = (gf.get(var).unwrap(), gc.get(var).unwrap());
            let worst = (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            assert!(worst < 1e-5, "gradient differs by {worst}");
        }
        Ok(())
    }
}
