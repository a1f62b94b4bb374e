//! A 2-D convolution layer as one fused CPU op with its own backward pass: im2col into a
//! scratch buffer, one matrix product for a slice of the batch, and the bias, the activation
//! and (for upscalers) the pixel shuffle applied as the product is written out. candle
//! composes the same layer from about eight graph nodes (columns, product, reshapes, a
//! broadcast bias, a two-op activation, a permute), each a tensor to allocate, fill, and add
//! gradients into. Off the CPU it is candle's `conv2d` and ops: the same maths.
//!
//! Two kinds of layer skip the columns: stride-1 layers of at most four output channels
//! ([`direct`]: the face and its mask, the discriminators' logits), and stride-2 layers whose
//! columns would take more than one product ([`implicit`]: the encoder's 5x5 steps down).

use std::sync::Arc;

use candle_core::{bail, CpuStorage, Result, Shape, Tensor};

#[macro_use]
mod lanes;
mod direct;
pub(super) mod geometry;
mod implicit;

use super::fused::{exp, on_cpu, simd, values, Fused, Input, Kernel};
use super::gemm::{gemm, transpose, View};
use direct::Padded;
use geometry::Geometry;

/// What follows a convolution's bias.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Identity,
    /// `max(x, slope x)` with a slope in (0, 1): the output has the input's sign, so the
    /// backward pass reads the slope off the output.
    Leaky(f32),
    Sigmoid,
}

impl Activation {
    /// `out[i * step] = activation(v[i] + bias)` along a row. The activation is matched
    /// once a row, so each loop below compiles to straight vector code.
    #[inline(always)]
    fn write_row(self, v: &[f32], bias: f32, out: &mut [f32], step: usize) {
        match self {
            Activation::Identity => scatter(v, out, step, |x| x + bias),
            Activation::Leaky(s) => scatter(v, out, step, |x| {
                let x = x + bias;
                if x > 0.0 {
                    x
                } else {
                    x * s
                }
            }),
            Activation::Sigmoid => scatter(v, out, step, |x| 1.0 / (1.0 + exp(-(x + bias)))),
        }
    }

    /// `gp[i] = grad[i * step] * activation'` along a row, the derivative read off the
    /// output `y[i * step]`.
    #[inline(always)]
    fn grad_row(self, grad: &[f32], y: &[f32], gp: &mut [f32], step: usize) {
        match self {
            Activation::Identity => gather(grad, y, gp, step, |g, _| g),
            Activation::Leaky(s) => {
                gather(grad, y, gp, step, |g, y| if y > 0.0 { g } else { g * s })
            }
            Activation::Sigmoid => gather(grad, y, gp, step, |g, y| g * y * (1.0 - y)),
        }
    }

    /// The same through candle's ops, for other devices and the tests.
    pub fn composed(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Identity => Ok(x.clone()),
            Activation::Leaky(s) => x.maximum(&(x * s as f64)?),
            Activation::Sigmoid => (x.neg()?.exp()? + 1.0)?.recip(),
        }
    }
}

/// `out[i * step] = f(v[i])`.
#[inline(always)]
fn scatter(v: &[f32], out: &mut [f32], step: usize, f: impl Fn(f32) -> f32) {
    if step == 1 {
        out.iter_mut().zip(v).for_each(|(o, &x)| *o = f(x));
    } else {
        out.iter_mut()
            .step_by(step)
            .zip(v)
            .for_each(|(o, &x)| *o = f(x));
    }
}

/// `out[i] = f(a[i * step], b[i * step])`.
#[inline(always)]
fn gather(a: &[f32], b: &[f32], out: &mut [f32], step: usize, f: impl Fn(f32, f32) -> f32) {
    if step == 1 {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = f(x, y);
        }
    } else {
        let pairs = a.iter().step_by(step).zip(b.iter().step_by(step));
        for (o, (&x, &y)) in out.iter_mut().zip(pairs) {
            *o = f(x, y);
        }
    }
}

/// A convolution's geometry and what follows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvSpec {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub activation: Activation,
    /// Moves output channel `4c + 2i + j` at `(y, x)` to channel `c` at `(2y + i, 2x + j)`, as
    /// PyTorch's `pixel_shuffle(2)`: an upscaler's convolution writes its output twice the size.
    pub shuffle: bool,
}

/// `activation(conv2d(x, weight) + bias)`, pixel-shuffled when the spec says so: `x` is
/// `(N, C, H, W)`, `weight` `(O, C, K, K)`, `bias` `(O)`.
pub fn conv2d(x: &Tensor, weight: &Tensor, bias: &Tensor, spec: ConvSpec) -> Result<Tensor> {
    if on_cpu(x) && on_cpu(weight) && on_cpu(bias) {
        return x.contiguous()?.apply_op3(
            &weight.contiguous()?,
            &bias.contiguous()?,
            Fused(ConvLayer {
                spec,
                kept: std::sync::Mutex::new(None),
            }),
        );
    }
    #[cfg(feature = "cuda")]
    if super::fused::on_gpu(x) && on_gpu_too(weight, bias) {
        return super::cuda::conv2d(x, weight, bias, spec);
    }
    composed(x, weight, bias, spec)
}

#[cfg(feature = "cuda")]
fn on_gpu_too(weight: &Tensor, bias: &Tensor) -> bool {
    super::fused::on_gpu(weight) && super::fused::on_gpu(bias)
}

/// The same layer from candle's ops.
pub fn composed(x: &Tensor, weight: &Tensor, bias: &Tensor, spec: ConvSpec) -> Result<Tensor> {
    let o = weight.dim(0)?;
    let y = x
        .conv2d(weight, spec.pad, spec.stride, 1, 1)?
        .broadcast_add(&bias.reshape((1, o, 1, 1))?)?;
    let y = spec.activation.composed(&y)?;
    if spec.shuffle {
        pixel_shuffle(&y)
    } else {
        Ok(y)
    }
}

/// PyTorch's `pixel_shuffle(2)` from candle's ops: (N, 4C, H, W) -> (N, C, 2H, 2W).
fn pixel_shuffle(x: &Tensor) -> Result<Tensor> {
    let (n, c4, h, w) = x.dims4()?;
    x.reshape((n, c4 / 4, 2, 2, h, w))?
        .permute((0, 1, 4, 2, 5, 3))?
        .contiguous()?
        .reshape((n, c4 / 4, 2 * h, 2 * w))
}

/// Up to this many output channels, the weight gradient is dot products of rows.
const DOT_CHANNELS: usize = 8;

/// The layer's forward op: `(x, weight, bias)` -> output. When the whole batch's columns
/// make one product, it keeps them for the weight gradient, which would otherwise build
/// them again (im2col was a sixth of a training step; the copy costs a memcpy).
struct ConvLayer {
    spec: ConvSpec,
    kept: std::sync::Mutex<Option<Arc<Vec<f32>>>>,
}

impl Kernel<3> for ConvLayer {
    const NAME: &'static str = "fused-conv2d";

    fn forward(
        &self,
        [(s1, l1), (s2, l2), (s3, l3)]: [Input<'_>; 3],
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(self.spec, l1.shape(), l2.shape())?;
        let one_slice = g.slices().count() == 1;
        let (x, w, b) = (
            values::<f32>(s1, l1)?,
            values::<f32>(s2, l2)?,
            values::<f32>(s3, l3)?,
        );
        if b.len() != g.o {
            bail!("conv2d: {} biases for {} channels", b.len(), g.o);
        }
        let (k, l) = (g.rows(), g.positions());
        let mut out = vec![0f32; g.n * g.o * l];
        if g.direct() {
            let mut prod = vec![0f32; g.o * g.n * l];
            let input = padded_input(&g, x);
            let at = |i, oc| (oc * g.n + i) * l;
            direct::correlate(
                &input,
                (g.n, g.c),
                w,
                (g.o, g.spec.kernel),
                (g.oh, g.ow),
                &mut prod,
                at,
            );
            simd(|| g.write_output(&prod, 0, g.n, b, &mut out));
            return Ok((CpuStorage::F32(out), g.output_shape()));
        }
        if implicit::fits(&g) {
            let mut prod = vec![0f32; g.o * g.n * l];
            implicit::forward(&g, x, w, &mut prod);
            simd(|| g.write_output(&prod, 0, g.n, b, &mut out));
            return Ok((CpuStorage::F32(out), g.output_shape()));
        }
        g.each_slice(1, |first, items, cols, prod| {
            let cl = items * l;
            simd(|| g.im2col(x, first, items, cols));
            if one_slice {
                *self.kept.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(Arc::new(cols.to_vec()));
            }
            let (kv, cv) = (View::rows(0, k), View::rows(0, cl));
            gemm((g.o, cl, k), prod, cv, false, w, kv, cols, cv, 1.0);
            simd(|| g.write_output(prod, first, items, b, &mut out));
        });
        Ok((CpuStorage::F32(out), g.output_shape()))
    }

    fn backward(
        &self,
        [x, weight, _]: [&Tensor; 3],
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<[Option<Tensor>; 3]> {
        let g = Geometry::new(self.spec, x.shape(), weight.shape())?;
        // The gradient before the activation, laid out as the product: (o, n * positions).
        let gp = grad
            .contiguous()?
            .apply_op2_no_bwd(y, &Fused(PreActivationGrad(g)))?;
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let params = x.apply_op2_no_bwd(&gp, &Fused(ParameterGrad(g, kept)))?;
        let wlen = g.o * g.rows();
        let dw = params.narrow(0, 0, wlen)?.reshape(weight.shape())?;
        let db = params.narrow(0, wlen, g.o)?;
        // The first layer's input is data: no gradient to spend a product on.
        let dx = if x.track_op() {
            Some(weight.apply_op2_no_bwd(&gp, &Fused(InputGrad(g)))?)
        } else {
            None
        };
        Ok([dx, Some(dw), Some(db)])
    }
}

impl Geometry {
    /// The product's sums `(o, items * positions)` for items `first..first + items` out to
    /// `out` with the bias and the activation (and the shuffle, if any).
    #[inline(always)]
    fn write_output(&self, prod: &[f32], first: usize, items: usize, b: &[f32], out: &mut [f32]) {
        let (ow, step, span, act) = (self.ow, self.step(), self.row_span(), self.spec.activation);
        self.each_output_row(first, items, |p, at, oc| {
            act.write_row(&prod[p..p + ow], b[oc], &mut out[at..at + span], step)
        })
    }
}

/// The input zero-padded for [`direct::correlate`] and [`direct::weight_grad`].
fn padded_input(g: &Geometry, x: &[f32]) -> Padded {
    let (k, plane) = (g.spec.kernel, g.h * g.w);
    Padded::new(x, g.n * g.c, (g.h, g.w), g.spec.pad, (g.ow, k), |p| {
        p * plane
    })
}

/// The pre-activation gradient `(o, n * positions)` as planes item by item, padded by `pad`
/// for a kernel reaching `reach` (output width, kernel) across it.
fn padded_grad(g: &Geometry, gp: &[f32], pad: usize, reach: (usize, usize)) -> Padded {
    let (n, o, l) = (g.n, g.o, g.positions());
    Padded::new(gp, n * o, (g.oh, g.ow), pad, reach, |p| {
        ((p % o) * n + p / o) * l
    })
}

/// `(grad, output)` -> the gradient before the activation, in the product's layout.
struct PreActivationGrad(Geometry);

impl Kernel<2> for PreActivationGrad {
    const NAME: &'static str = "fused-conv2d-activation-grad";

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let (grad, y) = (values::<f32>(s1, l1)?, values::<f32>(s2, l2)?);
        let act = g.spec.activation;
        let mut gp = vec![0f32; g.n * g.o * g.positions()];
        let (ow, step, span) = (g.ow, g.step(), g.row_span());
        simd(|| {
            g.each_output_row(0, g.n, |p, at, _| {
                let (grad, y) = (&grad[at..at + span], &y[at..at + span]);
                act.grad_row(grad, y, &mut gp[p..p + ow], step)
            })
        });
        Ok((CpuStorage::F32(gp), Shape::from((g.o, g.n * g.positions()))))
    }
}

/// `(x, pre-activation grad)` -> the weight's gradient then the bias's, in one vector; from
/// the forward pass's columns when it kept them.
struct ParameterGrad(Geometry, Option<Arc<Vec<f32>>>);

impl Kernel<2> for ParameterGrad {
    const NAME: &'static str = "fused-conv2d-parameter-grad";

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let (x, gp) = (values::<f32>(s1, l1)?, values::<f32>(s2, l2)?);
        let (k, nl) = (g.rows(), g.n * g.positions());
        let mut out = vec![0f32; g.o * k + g.o];
        let (dw, db) = out.split_at_mut(g.o * k);
        if g.direct() {
            let (kernel, input) = (g.spec.kernel, padded_input(g, x));
            let grad = padded_grad(g, gp, 0, (g.ow, 1));
            direct::weight_grad(&input, &grad, (g.n, g.c), (g.o, kernel), (g.oh, g.ow), dw);
        } else if implicit::fits(g) {
            implicit::weight_grad(g, x, gp, dw);
        } else {
            self.by_columns(x, gp, dw);
        }
        simd(|| {
            for (b, row) in db.iter_mut().zip(gp.chunks_exact(nl)) {
                *b = super::fused::lane_sum(row, |v| v);
            }
        });
        Ok((CpuStorage::F32(out), Shape::from(g.o * k + g.o)))
    }
}

impl ParameterGrad {
    /// `dw = gp cols^T`, slice by slice of the batch.
    fn by_columns(&self, x: &[f32], gp: &[f32], dw: &mut [f32]) {
        let g = &self.0;
        let (k, l, nl) = (g.rows(), g.positions(), g.n * g.positions());
        // With many positions the product writes dW transposed (column by column): its
        // packing then copies the gradient's o rows instead of the columns' c k k rows,
        // often ten times as many, for the price of turning o c k k values back. With few
        // positions (a small map) packing is cheap either way and the turn is the larger
        // cost: 4x4 and 8x8 layers took 2.5 times as long turned.
        let turn = g.o > DOT_CHANNELS && g.n * l > 2 * g.o;
        let mut dwt = vec![0f32; if turn { g.o * k } else { 0 }];
        g.each_slice(0, |first, items, scratch, _| {
            let cl = items * l;
            let cols = match &self.1 {
                Some(kept) if kept.len() == scratch.len() => &kept[..],
                _ => {
                    simd(|| g.im2col(x, first, items, scratch));
                    &*scratch
                }
            };
            if g.o <= DOT_CHANNELS {
                // dW[oc, r] += gp[oc, slice] . cols[r]: both rows contiguous. (The
                // product's packing costs more than the work for a few channels.)
                simd(|| {
                    for (oc, dw) in dw.chunks_exact_mut(k).enumerate() {
                        let grad = &gp[oc * nl + first * l..][..cl];
                        for (d, col) in dw.iter_mut().zip(cols.chunks_exact(cl)) {
                            *d += super::fused::dot(grad, col);
                        }
                    }
                });
                return;
            }
            // dW += gp[:, slice] cols^T
            let (dst, view) = if turn {
                (&mut dwt[..], View::rows(0, g.o).transposed())
            } else {
                (&mut *dw, View::rows(0, k))
            };
            gemm(
                (g.o, k, cl),
                dst,
                view,
                first > 0,
                gp,
                View::rows(first * l, nl),
                cols,
                View::rows(0, cl).transposed(),
                1.0,
            );
        });
        if !dwt.is_empty() {
            transpose(&dwt, k, g.o, dw);
        }
    }
}

/// `(weight, pre-activation grad)` -> the input's gradient.
struct InputGrad(Geometry);

impl Kernel<2> for InputGrad {
    const NAME: &'static str = "fused-conv2d-input-grad";

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let (w, gp) = (values::<f32>(s1, l1)?, values::<f32>(s2, l2)?);
        let (k, l, nl) = (g.rows(), g.positions(), g.n * g.positions());
        let mut dx = vec![0f32; g.n * g.c * g.h * g.w];
        if g.direct() {
            // The correlation of the gradient, padded so that every input pixel sees each
            // output it fed, with the kernel flipped and its channels swapped.
            let kernel = g.spec.kernel;
            let grad = padded_grad(g, gp, kernel - 1 - g.spec.pad, (g.w, kernel));
            let mut flipped = vec![0f32; w.len()];
            for (i, v) in w.iter().enumerate() {
                let (oc, ci, t) = (i / k, i / (kernel * kernel) % g.c, i % (kernel * kernel));
                flipped[(ci * g.o + oc) * kernel * kernel + kernel * kernel - 1 - t] = *v;
            }
            let plane = g.h * g.w;
            let at = |i, ci| (i * g.c + ci) * plane;
            direct::correlate(
                &grad,
                (g.n, g.o),
                &flipped,
                (g.c, kernel),
                (g.h, g.w),
                &mut dx,
                at,
            );
            return Ok((CpuStorage::F32(dx), Shape::from((g.n, g.c, g.h, g.w))));
        }
        g.each_slice(0, |first, items, cols, _| {
            let cl = items * l;
            // cols = W^T gp[:, slice]
            gemm(
                (k, cl, g.o),
                cols,
                View::rows(0, cl),
                false,
                w,
                View::rows(0, k).transposed(),
                gp,
                View::rows(first * l, nl),
                1.0,
            );
            simd(|| g.col2im(cols, first, items, &mut dx));
        });
        Ok((CpuStorage::F32(dx), Shape::from((g.n, g.c, g.h, g.w))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn check(spec: ConvSpec, (n, c, h, w): (usize, usize, usize, usize), o: usize) -> Result<()> {
        let dev = Device::Cpu;
        let k = spec.kernel;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, c, h, w), &dev)?)?;
        let wt = Var::from_tensor(&Tensor::randn(0f32, 0.3, (o, c, k, k), &dev)?)?;
        let b = Var::from_tensor(&Tensor::randn(0f32, 0.3, o, &dev)?)?;
        let ours = conv2d(&x, &wt, &b, spec)?;
        let theirs = composed(&x, &wt, &b, spec)?;
        assert_eq!(ours.dims(), theirs.dims(), "{spec:?}");
        let diff = |a: &Tensor, b: &Tensor| -> Result<f32> {
            (a - b)?.abs()?.max_all()?.to_scalar::<f32>()
        };
        let d = diff(&ours, &theirs)?;
        assert!(d < 1e-4, "{spec:?}: values differ by {d}");
        let weights = Tensor::randn(0f32, 1.0, ours.shape(), &dev)?;
        let ga = (ours * &weights)?.sum_all()?.backward()?;
        let gb = (theirs * &weights)?.sum_all()?.backward()?;
        for (name, t) in [
            ("x", x.as_tensor()),
            ("w", wt.as_tensor()),
            ("b", b.as_tensor()),
        ] {
            let d = diff(ga.get(t).unwrap(), gb.get(t).unwrap())?;
            assert!(d < 2e-3, "{spec:?}: gradient of {name} differs by {d}");
        }
        Ok(())
    }

    #[test]
    fn weights_gradients_kept_aside_match_candles_backward() -> Result<()> {
        // One weight used by two layers (as the encoder serves two identities): its
        // gradients from both must add up.
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &dev)?;
        let w = Var::from_tensor(&Tensor::randn(0f32, 0.3, (4, 3, 3, 3), &dev)?)?;
        let b = Var::from_tensor(&Tensor::randn(0f32, 0.3, 4, &dev)?)?;
        let s = spec(3, 1, 1, Activation::Leaky(0.1));
        let first = conv2d(&x, &w, &b, s)?;
        let second = conv2d(&(&x * 0.5)?, &w, &b, s)?;
        let loss = (first.sqr()?.sum_all()? + second.sum_all()?)?;
        let ours = super::super::fused::backward(&loss)?;
        let theirs = loss.backward()?;
        for t in [w.as_tensor(), b.as_tensor()] {
            let (a, b) = (ours.get(t).unwrap(), theirs.get(t).unwrap());
            let d = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-4, "gradients differ by {d}");
        }
        Ok(())
    }

    fn spec(kernel: usize, stride: usize, pad: usize, activation: Activation) -> ConvSpec {
        ConvSpec {
            kernel,
            stride,
            pad,
            activation,
            shuffle: false,
        }
    }

    #[test]
    fn matches_candles_convolution_with_every_gradient() -> Result<()> {
        let leaky = Activation::Leaky(0.1);
        check(spec(5, 2, 2, leaky), (2, 3, 16, 16), 5)?;
        check(spec(4, 2, 1, leaky), (3, 4, 9, 11), 6)?;
        check(spec(3, 1, 1, Activation::Identity), (2, 3, 8, 8), 4)?;
        check(spec(5, 1, 2, Activation::Sigmoid), (2, 2, 6, 7), 3)?;
        check(spec(3, 2, 0, leaky), (1, 2, 9, 9), 2)?;
        // More channels than the weight gradient's dot-product path takes.
        check(spec(3, 1, 1, leaky), (2, 5, 6, 6), DOT_CHANNELS + 4)?;
        // Many channels, with many positions (dW turned) and with few (dW as it is).
        check(spec(3, 1, 1, leaky), (2, 5, 12, 11), 64)?;
        check(spec(3, 2, 1, leaky), (2, 5, 8, 8), 130)
    }

    #[test]
    fn many_channels_at_stride_two_take_the_implicit_path_with_every_gradient() -> Result<()> {
        // Batches of more than one product's columns; rows of whole blocks and ragged ones;
        // all three kernels. (The reference, candle, takes only sizes the stride divides.)
        // No kink in the activation: among tens of thousands of outputs, one within rounding
        // of zero would take the leaky slope on one side and not the other, and the
        // gradients would differ by far more than rounding. The activations are tested above.
        let id = Activation::Identity;
        let cases = [
            (spec(4, 2, 1, id), (3, 16, 64, 64), 64),
            (spec(5, 2, 2, id), (3, 16, 41, 41), 64),
            (spec(3, 2, 1, id), (5, 24, 49, 47), 128),
        ];
        for (s, shape, o) in cases {
            let g = Geometry::new(
                s,
                &Shape::from(shape),
                &Shape::from((o, shape.1, s.kernel, s.kernel)),
            )?;
            assert!(implicit::fits(&g), "{s:?} {shape:?}");
            check(s, shape, o)?;
        }
        Ok(())
    }

    #[test]
    fn few_channels_at_stride_one_take_the_direct_path_with_every_gradient() -> Result<()> {
        let leaky = Activation::Leaky(0.1);
        // Rows longer than a block and not a whole number of them; no padding at all.
        check(spec(3, 1, 0, leaky), (2, 5, 9, 21), 4)?;
        // A discriminator's logits: one channel from many.
        check(spec(3, 1, 1, Activation::Identity), (2, 40, 8, 8), 1)?;
        // A face and its mask, in a block of three channels and a ragged row.
        check(spec(5, 1, 2, Activation::Sigmoid), (1, 3, 5, 37), 3)?;
        check(spec(5, 1, 1, leaky), (3, 6, 7, 6), 2)
    }

    #[test]
    fn pixel_shuffle_places_channels_as_pytorch_does() -> Result<()> {
        // PyTorch: out[n, c, 2h + i, 2w + j] = in[n, 4c + 2i + j, h, w].
        let x = Tensor::arange(0f32, 16.0, &Device::Cpu)?.reshape((1, 4, 2, 2))?;
        let y = pixel_shuffle(&x)?.flatten_all()?.to_vec1::<f32>()?;
        let expected = [
            0., 4., 1., 5., 8., 12., 9., 13., 2., 6., 3., 7., 10., 14., 11., 15.,
        ];
        assert_eq!(y, expected);
        Ok(())
    }

    #[test]
    fn an_upscaler_writes_its_output_pixel_shuffled() -> Result<()> {
        let mut s = spec(3, 1, 1, Activation::Leaky(0.1));
        s.shuffle = true;
        check(s, (2, 3, 4, 5), 8)
    }

    #[test]
    fn a_batch_too_big_for_one_product_is_done_in_slices() -> Result<()> {
        // 200 rows x 4096 positions is more than one product's budget: one item a slice.
        let g = Geometry::new(
            spec(5, 1, 2, Activation::Identity),
            &Shape::from((3, 8, 64, 64)),
            &Shape::from((2, 8, 5, 5)),
        )?;
        assert_eq!(g.slices().collect::<Vec<_>>(), vec![(0, 1), (1, 1), (2, 1)]);
        check(spec(5, 1, 2, Activation::Sigmoid), (3, 8, 64, 64), 2)
    }
}
