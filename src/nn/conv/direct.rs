//! Direct convolution for stride-1 layers with few output channels: the decoder's face and
//! mask (4 channels from 16, 5x5, at the full resolution) and a discriminator's logits (1
//! from 128, 3x3). Their columns would hold k·k copies of the input (6.5 MB a face at 64x64)
//! for a product of only a few rows, so im2col, col2im and the product's packing cost
//! several times the arithmetic; they were a sixth of a training step.
//!
//! Here every output block is summed tap by tap from a zero-padded copy of the input, in
//! registers. The input's gradient is the same correlation, of the padded output gradient
//! with the kernel flipped and its channels swapped; the weight's gradient is dot products
//! of the output gradient with shifted input rows.

use super::lanes::Lanes;
#[cfg(test)]
use super::lanes::Plain;

/// Output channels summed together (their accumulators stay in registers).
pub(super) const BLOCK: usize = 4;
/// Floats in the widest vector register (AVX-512).
const LANES: usize = 16;
/// Output positions of one block in the forward sums, at most: two vectors.
const WIDE: usize = 2 * LANES;
/// Output rows that one pass of the weight gradient sums before it adds into the result.
const ROWS: usize = 8;

/// `$job.$run::<V, B>(..)` with the block's channel count `B` (1 to [`BLOCK`]) as a
/// constant, so that the block's accumulators are registers, and `V` the vectors this CPU
/// has (see [`on_lanes`]).
macro_rules! by_block {
    ($b:expr, $job:ident.$run:ident($($arg:expr),*)) => {
        on_lanes!(V => match $b {
            1 => $job.$run::<V, 1>($($arg),*),
            2 => $job.$run::<V, 2>($($arg),*),
            3 => $job.$run::<V, 3>($($arg),*),
            _ => $job.$run::<V, BLOCK>($($arg),*),
        })
    };
}

/// Planes zero-padded by `pad` on every side, each `rows` rows of `stride` floats, with room
/// past every row for the last block of an output row `out_w` long and a kernel's reach.
pub(super) struct Padded {
    data: Vec<f32>,
    rows: usize,
    stride: usize,
}

impl Padded {
    /// Planes `0..planes` of `h x w` floats, plane `i` at `src[at(i)..]`.
    pub(super) fn new(
        src: &[f32],
        planes: usize,
        (h, w): (usize, usize),
        pad: usize,
        reach: (usize, usize),
        at: impl Fn(usize) -> usize,
    ) -> Padded {
        let (out_w, k) = reach;
        let rows = h + 2 * pad;
        let stride = (w + 2 * pad).max(out_w.next_multiple_of(WIDE) + k - 1);
        let mut data = vec![0f32; planes * rows * stride];
        for (i, plane) in data.chunks_exact_mut(rows * stride).enumerate() {
            let image = &src[at(i)..][..h * w];
            for (from, to) in image
                .chunks_exact(w)
                .zip(plane[pad * stride..].chunks_exact_mut(stride))
            {
                to[pad..pad + w].copy_from_slice(from);
            }
        }
        Padded { data, rows, stride }
    }

    /// Floats from one plane to the next.
    pub(super) fn plane(&self) -> usize {
        self.rows * self.stride
    }

    /// Floats from one row to the next.
    pub(super) fn row(&self) -> usize {
        self.stride
    }

    pub(super) fn data(&self) -> &[f32] {
        &self.data
    }
}

/// `out[at(i, co) + y * ow + x] = sum over ci, ky, kx of
/// weights[co][ci][ky][kx] * input[i * cin + ci][y + ky][x + kx]` for `y < oh`, `x < ow`.
#[allow(clippy::too_many_arguments)]
pub(super) fn correlate(
    input: &Padded,
    (n, cin): (usize, usize),
    weights: &[f32],
    (cout, k): (usize, usize),
    (oh, ow): (usize, usize),
    out: &mut [f32],
    at: impl Fn(usize, usize) -> usize,
) {
    let taps = cin * k * k;
    assert!(weights.len() >= cout * taps);
    assert!(input.rows + 1 >= oh + k && input.stride >= ow.next_multiple_of(WIDE) + k - 1);
    assert!(input.data.len() >= n * cin * input.plane());
    let mut packed = vec![0f32; taps * BLOCK];
    for c0 in (0..cout).step_by(BLOCK) {
        let b = BLOCK.min(cout - c0);
        // The block's weights tap by tap, `b` channels each: the order the sums read them.
        for j in 0..b {
            for (t, w) in weights[(c0 + j) * taps..][..taps].iter().enumerate() {
                packed[t * b + j] = *w;
            }
        }
        let job = Correlate {
            input,
            n,
            cin,
            k,
            oh,
            ow,
            packed: &packed[..taps * b],
        };
        let at = |i, j| at(i, c0 + j);
        // SAFETY: the asserts above keep every read inside the padded planes: rows
        // y..y + k of each plane, floats x..x + WIDE + k - 1 of a row.
        unsafe { by_block!(b, job.run(out, &at)) };
    }
}

/// One block of output channels of [`correlate`].
struct Correlate<'a> {
    input: &'a Padded,
    n: usize,
    cin: usize,
    k: usize,
    oh: usize,
    ow: usize,
    packed: &'a [f32],
}

impl Correlate<'_> {
    #[inline(always)]
    unsafe fn run<V: Lanes, const B: usize>(
        &self,
        out: &mut [f32],
        at: &impl Fn(usize, usize) -> usize,
    ) {
        let (k, ow, plane, stride) = (self.k, self.ow, self.input.plane(), self.input.stride);
        let data = self.input.data.as_ptr();
        let mut sums = [[0f32; WIDE]; B];
        let wide = 2 * V::N;
        for i in 0..self.n {
            let image = data.add(i * self.cin * plane);
            for y in 0..self.oh {
                for x in (0..ow).step_by(wide) {
                    let mut acc = [[V::zero(); 2]; B];
                    let mut w = self.packed.as_ptr();
                    for ci in 0..self.cin {
                        for ky in 0..k {
                            let row = image.add(ci * plane + (y + ky) * stride + x);
                            for kx in 0..k {
                                let v = [V::load(row.add(kx)), V::load(row.add(kx + V::N))];
                                for a in acc.iter_mut() {
                                    let wj = V::splat(w);
                                    a[0] = a[0].fma(wj, v[0]);
                                    a[1] = a[1].fma(wj, v[1]);
                                    w = w.add(1);
                                }
                            }
                        }
                    }
                    let take = wide.min(ow - x);
                    for (j, (a, s)) in acc.iter().zip(sums.iter_mut()).enumerate() {
                        a[0].store(s.as_mut_ptr());
                        a[1].store(s.as_mut_ptr().add(V::N));
                        let o = at(i, j) + y * ow + x;
                        out[o..o + take].copy_from_slice(&s[..take]);
                    }
                }
            }
        }
    }
}

/// `dw[co][ci][ky][kx] = sum over i, y, x of grad[i * cout + co][y][x] *
/// input[i * cin + ci][y + ky][x + kx]`, the weight gradient of [`correlate`]: `grad` padded
/// by nothing, so its columns from `ow` on are zero.
pub(super) fn weight_grad(
    input: &Padded,
    grad: &Padded,
    (n, cin): (usize, usize),
    (cout, k): (usize, usize),
    (oh, ow): (usize, usize),
    dw: &mut [f32],
) {
    let wide = ow.next_multiple_of(WIDE);
    assert!(dw.len() >= cout * cin * k * k && grad.rows >= oh && grad.stride >= wide);
    assert!(input.rows + 1 >= oh + k && input.stride >= wide + k - 1);
    assert!(input.data.len() >= n * cin * input.plane());
    assert!(grad.data.len() >= n * cout * grad.plane());
    for c0 in (0..cout).step_by(BLOCK) {
        let job = WeightGrad {
            input,
            grad,
            n,
            cin,
            cout,
            k,
            oh,
            ow,
            c0,
        };
        // SAFETY: as asserted, rows y..y + ROWS (+ ky) of the planes and floats 0..wide (+ kx)
        // of each row lie inside both.
        unsafe { by_block!(BLOCK.min(cout - c0), job.run(dw)) };
    }
}

/// One block of output channels of [`weight_grad`].
struct WeightGrad<'a> {
    input: &'a Padded,
    grad: &'a Padded,
    n: usize,
    cin: usize,
    cout: usize,
    k: usize,
    oh: usize,
    ow: usize,
    c0: usize,
}

impl WeightGrad<'_> {
    #[inline(always)]
    unsafe fn run<V: Lanes, const B: usize>(&self, dw: &mut [f32]) {
        let (k, cin) = (self.k, self.cin);
        let (input, grad) = (self.input.data.as_ptr(), self.grad.data.as_ptr());
        let (plane, stride) = (self.input.plane(), self.input.stride);
        let (gplane, gstride) = (self.grad.plane(), self.grad.stride);
        let wide = self.ow.next_multiple_of(V::N);
        for i in 0..self.n {
            // A few rows at a time, so that the gradient's rows stay in the nearest cache
            // while every tap reads them.
            for y in (0..self.oh).step_by(ROWS) {
                let rows = ROWS.min(self.oh - y);
                let g = grad.add((i * self.cout + self.c0) * gplane + y * gstride);
                for ci in 0..cin {
                    for ky in 0..k {
                        let from = input.add((i * cin + ci) * plane + (y + ky) * stride);
                        for kx in 0..k {
                            let mut acc = [V::zero(); B];
                            for r in 0..rows {
                                let row = from.add(r * stride + kx);
                                for x in (0..wide).step_by(V::N) {
                                    let v = V::load(row.add(x));
                                    for (j, a) in acc.iter_mut().enumerate() {
                                        *a = a.fma(V::load(g.add(j * gplane + r * gstride + x)), v);
                                    }
                                }
                            }
                            for (j, a) in acc.iter().enumerate() {
                                dw[((self.c0 + j) * cin + ci) * k * k + ky * k + kx] += a.sum();
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input pixel `(y - 1, x - 1)` of plane `plane` (`h x w`), zero outside: a pad of 1.
    fn padded_at(x: &[f32], plane: usize, (h, w): (usize, usize), y: usize, x_: usize) -> f32 {
        if y == 0 || x_ == 0 || y > h || x_ > w {
            return 0.0;
        }
        x[(plane * h + y - 1) * w + x_ - 1]
    }

    /// The sums of [`correlate`] one by one, with a pad of 1.
    fn naive(
        x: &[f32],
        w: &[f32],
        (n, cin, h, wd): (usize, usize, usize, usize),
        cout: usize,
        k: usize,
    ) -> Vec<f32> {
        let (oh, ow) = (h + 2 - k + 1, wd + 2 - k + 1);
        let mut out = vec![0f32; n * cout * oh * ow];
        for i in 0..n {
            for co in 0..cout {
                for y in 0..oh {
                    for xo in 0..ow {
                        let mut s = 0f32;
                        for ci in 0..cin {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let v = padded_at(x, i * cin + ci, (h, wd), y + ky, xo + kx);
                                    s += w[((co * cin + ci) * k + ky) * k + kx] * v;
                                }
                            }
                        }
                        out[((i * cout + co) * oh + y) * ow + xo] = s;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn plain_lanes_sum_as_the_definition_does() {
        // The CPU here takes the vector kernels; this runs the same code on plain floats.
        let (n, cin, h, wd, cout, k) = (2, 3, 5, 19, 3, 3);
        let x: Vec<f32> = (0..n * cin * h * wd)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 4.0)
            .collect();
        let w: Vec<f32> = (0..cout * cin * k * k)
            .map(|i| ((i * 13 % 7) as f32 - 3.0) / 3.0)
            .collect();
        let (oh, ow) = (h, wd);
        let want = naive(&x, &w, (n, cin, h, wd), cout, k);
        let input = Padded::new(&x, n * cin, (h, wd), 1, (ow, k), |p| p * h * wd);
        let taps = cin * k * k;
        let mut packed = vec![0f32; taps * cout];
        for j in 0..cout {
            for t in 0..taps {
                packed[t * cout + j] = w[j * taps + t];
            }
        }
        let job = Correlate {
            input: &input,
            n,
            cin,
            k,
            oh,
            ow,
            packed: &packed,
        };
        let mut out = vec![0f32; want.len()];
        unsafe { job.run::<Plain, 3>(&mut out, &|i, j| (i * cout + j) * oh * ow) };
        for (a, b) in out.iter().zip(&want) {
            assert!((a - b).abs() < 1e-4, "{a} against {b}");
        }
        // The weight gradient against the output: dw[co][t] = sum of out[co] * input shifted.
        let grad = Padded::new(&want, n * cout, (oh, ow), 0, (ow, 1), |p| p * oh * ow);
        let mut dw = vec![0f32; cout * taps];
        let job = WeightGrad {
            input: &input,
            grad: &grad,
            n,
            cin,
            cout,
            k,
            oh,
            ow,
            c0: 0,
        };
        unsafe { job.run::<Plain, 3>(&mut dw) };
        let mut fast = vec![0f32; cout * taps];
        weight_grad(&input, &grad, (n, cin), (cout, k), (oh, ow), &mut fast);
        for co in 0..cout {
            for t in 0..taps {
                let (ci, ky, kx) = (t / (k * k), t / k % k, t % k);
                let mut s = 0f32;
                for i in 0..n {
                    for y in 0..oh {
                        for xo in 0..ow {
                            let v = padded_at(&x, i * cin + ci, (h, wd), y + ky, xo + kx);
                            s += want[((i * cout + co) * oh + y) * ow + xo] * v;
                        }
                    }
                }
                for got in [dw[co * taps + t], fast[co * taps + t]] {
                    assert!(
                        (got - s).abs() < 1e-3 * s.abs().max(1.0),
                        "{got} against {s}"
                    );
                }
            }
        }
    }
}
