//! The sizes of one convolution call and the loops over them: im2col and its adjoint, and
//! the walk from the matrix product's layout to the output's (pixel-shuffled or not).

use std::cell::RefCell;

use candle_core::{bail, Result, Shape};

use super::ConvSpec;

/// Columns per matrix product (in floats): enough batch items to make a product worth its
/// packing, few enough that the columns stay in cache.
const COLUMN_BUDGET: usize = 1 << 19;

thread_local! {
    /// The columns and the product's result, reused from call to call (each training shard
    /// runs in a thread of its own).
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// One call's sizes: input `(n, c, h, w)`, `o` output channels of `oh x ow` before any shuffle.
#[derive(Debug, Clone, Copy)]
pub(in crate::nn) struct Geometry {
    pub spec: ConvSpec,
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geometry {
    pub(in crate::nn) fn new(spec: ConvSpec, x: &Shape, weight: &Shape) -> Result<Geometry> {
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

    /// Whether [`super::direct`] computes this layer: stride 1 and at most a few output
    /// channels, where columns would cost far more than the arithmetic.
    pub(super) fn direct(&self) -> bool {
        let s = self.spec;
        s.stride == 1 && !s.shuffle && s.pad < s.kernel && self.o <= super::direct::BLOCK
    }

    /// Rows of the columns (and of the weight matrix): one per input channel and tap.
    pub(super) fn rows(&self) -> usize {
        self.c * self.spec.kernel * self.spec.kernel
    }

    /// Output positions of one batch item.
    pub(super) fn positions(&self) -> usize {
        self.oh * self.ow
    }

    pub(super) fn output_shape(&self) -> Shape {
        if self.spec.shuffle {
            Shape::from((self.n, self.o / 4, 2 * self.oh, 2 * self.ow))
        } else {
            Shape::from((self.n, self.o, self.oh, self.ow))
        }
    }

    /// The batch in slices `(first item, items)` of about [`COLUMN_BUDGET`] columns.
    pub(super) fn slices(&self) -> impl Iterator<Item = (usize, usize)> {
        let per = (COLUMN_BUDGET / (self.rows() * self.positions()).max(1)).clamp(1, self.n);
        let n = self.n;
        (0..n).step_by(per).map(move |i| (i, per.min(n - i)))
    }

    /// Calls `f(first item, items, columns, products)` for each slice of the batch, with
    /// scratch for its columns `(rows, items * positions)` and for `products` products of
    /// `o * items * positions` each (none: an empty slice).
    pub(super) fn each_slice(
        &self,
        products: usize,
        mut f: impl FnMut(usize, usize, &mut [f32], &mut [f32]),
    ) {
        SCRATCH.with(|scratch| {
            let (cols, prod) = &mut *scratch.borrow_mut();
            for (first, items) in self.slices() {
                let cl = items * self.positions();
                let lens = (self.rows() * cl, products * self.o * cl);
                for (v, len) in [(&mut *cols, lens.0), (&mut *prod, lens.1)] {
                    if v.len() < len {
                        v.resize(len, 0.0);
                    }
                }
                f(first, items, &mut cols[..lens.0], &mut prod[..lens.1]);
            }
        })
    }

    /// For tap offset `t` (0..kernel) along an axis of `size` pixels, the output indices
    /// `lo..hi` that read inside the picture.
    pub(super) fn inside(&self, t: usize, size: usize, outs: usize) -> (usize, usize) {
        let (s, p) = (self.spec.stride, self.spec.pad);
        let lo = if t >= p { 0 } else { (p - t).div_ceil(s) };
        let hi = ((size + p).saturating_sub(t)).div_ceil(s).min(outs);
        (lo, hi.max(lo))
    }

    /// Calls `f(columns offset, input row offset, whether the row is inside, column tap)` for
    /// every tap and output row: the loops that im2col and col2im share. The columns are
    /// `(rows, items * positions)`, the input `(n, c, h, w)`, from item `first`.
    #[inline(always)]
    pub(super) fn each_row(
        &self,
        first: usize,
        items: usize,
        mut f: impl FnMut(usize, usize, bool, usize),
    ) {
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
    pub(super) fn im2col(&self, x: &[f32], first: usize, items: usize, cols: &mut [f32]) {
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
                // Pairs of a slice of exact length: no bounds checks, and the compiler turns
                // the constant stride into vector loads and shuffles.
                let n = hi - lo;
                let pairs = &x[from..from + 2 * n - 1];
                let (whole, last) = pairs.split_at(2 * (n - 1));
                for (d, pair) in dst[lo..hi - 1].iter_mut().zip(whole.chunks_exact(2)) {
                    *d = pair[0];
                }
                dst[hi - 1] = last[0];
            } else {
                for (d, v) in dst[lo..hi].iter_mut().zip(x[from..].iter().step_by(s)) {
                    *d = *v;
                }
            }
        });
    }

    /// The adjoint of [`Geometry::im2col`]: columns summed back onto the pictures in `dx`.
    pub(super) fn col2im(&self, cols: &[f32], first: usize, items: usize, dx: &mut [f32]) {
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
            } else if s == 2 {
                // As in im2col: pairs of an exact-length slice, without bounds checks.
                let n = hi - lo;
                let (whole, last) = dx[from..from + 2 * n - 1].split_at_mut(2 * (n - 1));
                for (pair, v) in whole.chunks_exact_mut(2).zip(src) {
                    pair[0] += *v;
                }
                last[0] += src[n - 1];
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
    pub(super) fn output_row(&self, i: usize, oc: usize, oy: usize) -> usize {
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
    pub(super) fn each_output_row(
        &self,
        first: usize,
        items: usize,
        mut f: impl FnMut(usize, usize, usize),
    ) {
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
    pub(super) fn step(&self) -> usize {
        if self.spec.shuffle {
            2
        } else {
            1
        }
    }

    /// Output values a row spans.
    pub(super) fn row_span(&self) -> usize {
        (self.ow - 1) * self.step() + 1
    }
}
