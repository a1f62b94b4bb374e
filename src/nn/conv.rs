//! A 2-D convolution layer as one fused CPU op with its own backward pass: im2col into a
//! scratch buffer, one matrix product for a slice of the batch, and the bias, the activation
//! and (for upscalers) the pixel shuffle applied as the product is written out. candle
//! composes the same layer from about eight graph nodes (columns, product, reshapes, a
//! broadcast bias, a two-op activation, a permute), each a tensor to allocate, fill, and add
//! gradients into. Off the CPU it is candle's `conv2d` and ops: the same maths.

use std::cell::RefCell;

use candle_core::{bail, CpuStorage, Result, Shape, Tensor};

use super::fused::{exp, on_cpu, simd, values, Fused, Input, Kernel};
use super::gemm::{gemm, View};

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
            Fused(ConvLayer(spec)),
        );
    }
    composed(x, weight, bias, spec)
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

/// Columns per matrix product (in floats): enough batch items to make a product worth its
/// packing, few enough that the columns stay in cache.
const COLUMN_BUDGET: usize = 1 << 19;

thread_local! {
    /// The columns and the product's result, reused from call to call (each training shard
    /// runs in a thread of its own).
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

fn with_scratch<R>(cols: usize, prod: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|s| {
        let (a, b) = &mut *s.borrow_mut();
        for (v, len) in [(&mut *a, cols), (&mut *b, prod)] {
            if v.len() < len {
                v.resize(len, 0.0);
            }
        }
        f(&mut a[..cols], &mut b[..prod])
    })
}

/// One call's sizes: input `(n, c, h, w)`, `o` output channels of `oh x ow` before any shuffle.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    spec: ConvSpec,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    fn new(spec: ConvSpec, x: &Shape, weight: &Shape) -> Result<Geometry> {
        let (n, c, h, w) = x.dims4()?;
        let (o, c2, k1, k2) = weight.dims4()?;
        let k = spec.kernel;
        if c != c2 || k1 != k || k2 != k {
            bail!("conv2d: weights {weight:?} do not fit input {x:?} with kernel {k}");
        }
        if h + 2 * spec.pad < k || w + 2 * spec.pad < k || spec.stride == 0 {
            bail!("conv2d: input {x:?} is smaller than the kernel {k}");
        }
        if spec.shuffle && o % 4 != 0 {
            bail!("conv2d: a pixel shuffle needs a multiple of 4 channels, not {o}");
        }
        let out = |s: usize| (s + 2 * spec.pad - k) / spec.stride + 1;
        Ok(Geometry {
            spec,
            n,
            c,
            h,
            w,
            o,
            oh: out(h),
            ow: out(w),
        })
    }

    /// Rows of the columns (and of the weight matrix): one per input channel and tap.
    fn rows(&self) -> usize {
        self.c * self.spec.kernel * self.spec.kernel
    }

    /// Output positions of one batch item.
    fn positions(&self) -> usize {
        self.oh * self.ow
    }

    fn output_shape(&self) -> Shape {
        if self.spec.shuffle {
            Shape::from((self.n, self.o / 4, 2 * self.oh, 2 * self.ow))
        } else {
            Shape::from((self.n, self.o, self.oh, self.ow))
        }
    }

    /// The batch in slices `(first item, items)` of about [`COLUMN_BUDGET`] columns.
    fn slices(&self) -> impl Iterator<Item = (usize, usize)> {
        let per = (COLUMN_BUDGET / (self.rows() * self.positions()).max(1)).clamp(1, self.n);
        let n = self.n;
        (0..n).step_by(per).map(move |i| (i, per.min(n - i)))
    }

    /// For tap offset `t` (0..kernel) along an axis of `size` pixels, the output indices
    /// `lo..hi` that read inside the picture.
    fn inside(&self, t: usize, size: usize, outs: usize) -> (usize, usize) {
        let (s, p) = (self.spec.stride, self.spec.pad);
        let lo = if t >= p { 0 } else { (p - t).div_ceil(s) };
        let hi = ((size + p).saturating_sub(t)).div_ceil(s).min(outs);
        (lo, hi.max(lo))
    }

    /// Calls `f(columns offset, input row offset, whether the row is inside, column tap)` for
    /// every tap and output row: the loops that im2col and col2im share. The columns are
    /// `(rows, items * positions)`, the input `(n, c, h, w)`, from item `first`.
    #[inline(always)]
    fn each_row(&self, first: usize, items: usize, mut f: impl FnMut(usize, usize, bool, usize)) {
        let (k, s, p) = (self.spec.kernel, self.spec.stride, self.spec.pad);
        let (c, h, w, ow, l) = (self.c, self.h, self.w, self.ow, self.positions());
        let cl = items * l;
        for ci in 0..c {
            for ki in 0..k {
                let (ylo, yhi) = self.inside(ki, h, self.oh);
                for kj in 0..k {
                    let row = (ci * k + ki) * k + kj;
                    for it in 0..items {
                        let image = ((first + it) * c + ci) * h * w;
                        for oy in 0..self.oh {
                            let col = row * cl + it * l + oy * ow;
                            let inside = (ylo..yhi).contains(&oy);
                            let y = (oy * s + ki).saturating_sub(p);
                            f(col, image + y * w, inside, kj);
                        }
                    }
                }
            }
        }
    }

    /// The columns of items `first..first + items` into `cols` (every element written).
    fn im2col(&self, x: &[f32], first: usize, items: usize, cols: &mut [f32]) {
        let (k, s, p, ow) = (self.spec.kernel, self.spec.stride, self.spec.pad, self.ow);
        let ranges: Vec<(usize, usize)> = (0..k).map(|t| self.inside(t, self.w, ow)).collect();
        self.each_row(first, items, |col, src, inside, kj| {
            let dst = &mut cols[col..col + ow];
            let (lo, hi) = ranges[kj];
            if !inside || lo == hi {
                dst.fill(0.0);
                return;
            }
            dst[..lo].fill(0.0);
            dst[hi..].fill(0.0);
            let from = src + lo * s + kj - p;
            if s == 1 {
                dst[lo..hi].copy_from_slice(&x[from..from + hi - lo]);
            } else if s == 2 {
                // A constant stride: the compiler turns it into vector loads and shuffles.
                let src = &x[from..from + 2 * (hi - lo) - 1];
                for (i, d) in dst[lo..hi].iter_mut().enumerate() {
                    *d = src[2 * i];
                }
            } else {
                for (d, v) in dst[lo..hi].iter_mut().zip(x[from..].iter().step_by(s)) {
                    *d = *v;
                }
            }
        });
    }

    /// The adjoint of [`Geometry::im2col`]: columns summed back onto the pictures in `dx`.
    fn col2im(&self, cols: &[f32], first: usize, items: usize, dx: &mut [f32]) {
        let (k, s, p, ow) = (self.spec.kernel, self.spec.stride, self.spec.pad, self.ow);
        let ranges: Vec<(usize, usize)> = (0..k).map(|t| self.inside(t, self.w, ow)).collect();
        self.each_row(first, items, |col, dst, inside, kj| {
            let (lo, hi) = ranges[kj];
            if !inside || lo == hi {
                return;
            }
            let from = dst + lo * s + kj - p;
            let src = &cols[col + lo..col + hi];
            if s == 1 {
                for (d, v) in dx[from..from + hi - lo].iter_mut().zip(src) {
                    *d += *v;
                }
            } else {
                for (d, v) in dx[from..].iter_mut().step_by(s).zip(src) {
                    *d += *v;
                }
            }
        });
    }

    /// Index in the output of channel `oc`, row `oy` (column 0) of item `i`; the step from
    /// one column to the next is `1`, or `2` with the shuffle.
    #[inline(always)]
    fn output_row(&self, i: usize, oc: usize, oy: usize) -> usize {
        if self.spec.shuffle {
            let (c, sub) = (oc / 4, oc % 4);
            let (width, height) = (2 * self.ow, 2 * self.oh);
            ((i * (self.o / 4) + c) * height + 2 * oy + sub / 2) * width + sub % 2
        } else {
            ((i * self.o + oc) * self.oh + oy) * self.ow
        }
    }

    /// Calls `f(product index, output index, channel)` for every output row of items
    /// `first..first + items` (the product laid out `(o, items * positions)`): a row is
    /// `ow` product values, and `ow` output values [`Geometry::step`] apart.
    #[inline(always)]
    fn each_output_row(&self, first: usize, items: usize, mut f: impl FnMut(usize, usize, usize)) {
        let (l, ow) = (self.positions(), self.ow);
        for oc in 0..self.o {
            for it in 0..items {
                for oy in 0..self.oh {
                    f(
                        oc * items * l + it * l + oy * ow,
                        self.output_row(first + it, oc, oy),
                        oc,
                    );
                }
            }
        }
    }

    /// The distance between neighbours of an output row: 2 when pixel-shuffled.
    fn step(&self) -> usize {
        if self.spec.shuffle {
            2
        } else {
            1
        }
    }

    /// Output values a row spans.
    fn row_span(&self) -> usize {
        (self.ow - 1) * self.step() + 1
    }
}

/// The layer's forward op: `(x, weight, bias)` -> output.
struct ConvLayer(ConvSpec);

impl Kernel<3> for ConvLayer {
    const NAME: &'static str = "fused-conv2d";

    fn forward(
        &self,
        [(s1, l1), (s2, l2), (s3, l3)]: [Input<'_>; 3],
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(self.0, l1.shape(), l2.shape())?;
        let (x, w, b) = (
            values::<f32>(s1, l1)?,
            values::<f32>(s2, l2)?,
            values::<f32>(s3, l3)?,
        );
        if b.len() != g.o {
            bail!("conv2d: {} biases for {} channels", b.len(), g.o);
        }
        let (k, l, act) = (g.rows(), g.positions(), self.0.activation);
        let mut out = vec![0f32; g.n * g.o * l];
        for (first, items) in g.slices() {
            let cl = items * l;
            with_scratch(k * cl, g.o * cl, |cols, prod| {
                simd(|| g.im2col(x, first, items, cols));
                gemm(
                    (g.o, cl, k),
                    prod,
                    View::rows(0, cl),
                    false,
                    w,
                    View::rows(0, k),
                    cols,
                    View::rows(0, cl),
                    1.0,
                );
                let (ow, step, span) = (g.ow, g.step(), g.row_span());
                simd(|| {
                    g.each_output_row(first, items, |p, at, oc| {
                        act.write_row(&prod[p..p + ow], b[oc], &mut out[at..at + span], step)
                    })
                });
            });
        }
        Ok((CpuStorage::F32(out), g.output_shape()))
    }

    fn backward(
        &self,
        [x, weight, _]: [&Tensor; 3],
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<[Option<Tensor>; 3]> {
        let g = Geometry::new(self.0, x.shape(), weight.shape())?;
        // The gradient before the activation, laid out as the product: (o, n * positions).
        let gp = grad
            .contiguous()?
            .apply_op2_no_bwd(y, &Fused(PreActivationGrad(g)))?;
        let params = x.apply_op2_no_bwd(&gp, &Fused(ParameterGrad(g)))?;
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

/// `(x, pre-activation grad)` -> the weight's gradient then the bias's, in one vector.
struct ParameterGrad(Geometry);

impl Kernel<2> for ParameterGrad {
    const NAME: &'static str = "fused-conv2d-parameter-grad";

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let (x, gp) = (values::<f32>(s1, l1)?, values::<f32>(s2, l2)?);
        let (k, l, nl) = (g.rows(), g.positions(), g.n * g.positions());
        let mut out = vec![0f32; g.o * k + g.o];
        let (dw, db) = out.split_at_mut(g.o * k);
        for (first, items) in g.slices() {
            let cl = items * l;
            with_scratch(k * cl, 0, |cols, _| {
                simd(|| g.im2col(x, first, items, cols));
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
                gemm(
                    (g.o, k, cl),
                    dw,
                    View::rows(0, k),
                    first > 0,
                    gp,
                    View::rows(first * l, nl),
                    cols,
                    View::rows(0, cl).transposed(),
                    1.0,
                );
            });
        }
        simd(|| {
            for (b, row) in db.iter_mut().zip(gp.chunks_exact(nl)) {
                *b = super::fused::lane_sum(row, |v| v);
            }
        });
        Ok((CpuStorage::F32(out), Shape::from(g.o * k + g.o)))
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
        for (first, items) in g.slices() {
            let cl = items * l;
            with_scratch(k * cl, 0, |cols, _| {
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
        }
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
        check(spec(3, 1, 1, leaky), (2, 5, 6, 6), DOT_CHANNELS + 4)
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
