//! Stride-2 layers with many channels and a batch whose columns take more than one product
//! (in the swap model at 64x64, the encoder's second and third steps down, at 5x5) as
//! implicit products: the forward sums and the weight gradient read the padded input at each
//! tap's offset. The im2col path writes columns holding k·k/4 copies of the input (6 at 5x5)
//! for each product, mostly beyond the core's cache, and builds them again for the weight
//! gradient, since they could not be kept: a third of these layers' time. Training went 3%
//! faster. (Where the columns fit one product they are kept, and the product and its weight
//! gradient from them beat these sums, so the discriminators' layers stay with im2col.)
//!
//! Vectors run along output channels (the weights packed tap by tap, a block of channels
//! side by side), so a tap is two vector loads of weights and one broadcast input value per
//! output position, whatever the picture's width.

use super::direct::Padded;
use super::geometry::Geometry;
use super::lanes::Lanes;
#[cfg(test)]
use super::lanes::Plain;
use crate::nn::gemm::transpose;

/// Vectors of output channels the forward pass sums together, and output positions along
/// a row (16 accumulators: two weight loads and eight broadcasts a tap).
const VECTORS: usize = 2;
const POSITIONS: usize = 8;
/// Vectors of output channels the weight gradient sums together, for the k taps of a kernel
/// row (up to 20 accumulators: four gradient loads and k broadcasts a position).
const GRAD_VECTORS: usize = 4;
/// The layers' stride.
const STRIDE: usize = 2;

/// Whether this module computes the layer: stride 2, a multiple of 64 output channels (four
/// AVX-512 vectors), rows of at least a block of positions, a kernel of 3 to 5, enough input
/// channels that a tap's sums outweigh storing them, and a batch whose columns take more
/// than one product (one that fits is kept for the weight gradient, and that product is
/// faster than these sums).
pub(super) fn fits(g: &Geometry) -> bool {
    let s = g.spec;
    g.c >= 16
        && g.slices().count() > 1
        && s.stride == STRIDE
        && !s.shuffle
        && g.o.is_multiple_of(64)
        && g.ow >= POSITIONS
        && (3..=5).contains(&s.kernel)
        && s.pad < s.kernel
}

/// The padded input and each tap's offset in an item's padded planes.
struct Taps {
    input: Padded,
    offsets: Vec<usize>,
}

impl Taps {
    fn new(g: &Geometry, x: &[f32]) -> Taps {
        let k = g.spec.kernel;
        // Room for the last block of a row: the reads reach 2 (ow rounded up) + k - 1.
        let reach = (STRIDE * g.ow.next_multiple_of(POSITIONS), k);
        let plane = g.h * g.w;
        let input = Padded::new(x, g.n * g.c, (g.h, g.w), g.spec.pad, reach, |p| p * plane);
        let (p, r) = (input.plane(), input.row());
        let offsets = (0..g.c)
            .flat_map(|ci| (0..k).flat_map(move |ky| (0..k).map(move |kx| ci * p + ky * r + kx)))
            .collect();
        Taps { input, offsets }
    }

    /// Offset of output position `(oy, ox)` of item `i`.
    fn position(&self, g: &Geometry, i: usize, oy: usize, ox: usize) -> usize {
        (i * g.c * self.input.plane()) + STRIDE * (oy * self.input.row() + ox)
    }
}

/// The layer's sums before the bias, in the product's layout: `prod[(oc * n + i) * l + p]`.
pub(super) fn forward(g: &Geometry, x: &[f32], w: &[f32], prod: &mut [f32]) {
    assert!(fits(g) && w.len() == g.o * g.rows() && prod.len() == g.o * g.n * g.positions());
    let taps = Taps::new(g, x);
    let job = Forward { g, taps: &taps, w };
    // SAFETY: `Taps::new` pads the planes so that every tap of every position block reads
    // inside them (rows 2 oy + ky, columns up to 2 (ow rounded up) + k - 1).
    unsafe { on_lanes!(V => job.run::<V>(prod)) }
}

struct Forward<'a> {
    g: &'a Geometry,
    taps: &'a Taps,
    w: &'a [f32],
}

impl Forward<'_> {
    #[inline(always)]
    unsafe fn run<V: Lanes>(&self, prod: &mut [f32]) {
        let (g, offsets) = (self.g, &self.taps.offsets);
        let (t, l, block) = (offsets.len(), g.positions(), VECTORS * V::N);
        let data = self.taps.input.data().as_ptr();
        let mut packed = vec![0f32; t * block];
        let mut lanes = [0f32; 16];
        for o0 in (0..g.o).step_by(block) {
            for j in 0..block {
                for (tap, w) in self.w[(o0 + j) * t..][..t].iter().enumerate() {
                    packed[tap * block + j] = *w;
                }
            }
            for i in 0..g.n {
                for oy in 0..g.oh {
                    for ox in (0..g.ow).step_by(POSITIONS) {
                        let base = data.add(self.taps.position(g, i, oy, ox));
                        let mut acc = [[V::zero(); POSITIONS]; VECTORS];
                        let mut wp = packed.as_ptr();
                        for &off in offsets {
                            let wv: [V; VECTORS] =
                                std::array::from_fn(|v| V::load(wp.add(v * V::N)));
                            let src = base.add(off);
                            for r in 0..POSITIONS {
                                let xv = V::splat(src.add(r * STRIDE));
                                for (a, wv) in acc.iter_mut().zip(&wv) {
                                    a[r] = a[r].fma(*wv, xv);
                                }
                            }
                            wp = wp.add(block);
                        }
                        let take = POSITIONS.min(g.ow - ox);
                        for (v, acc) in acc.iter().enumerate() {
                            for (r, a) in acc[..take].iter().enumerate() {
                                a.store(lanes.as_mut_ptr());
                                for (lane, value) in lanes[..V::N].iter().enumerate() {
                                    let oc = o0 + v * V::N + lane;
                                    prod[(oc * g.n + i) * l + oy * g.ow + ox + r] = *value;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The weight's gradient `(o, c k k)` from the pre-activation gradient `gp` `(o, n l)`.
pub(super) fn weight_grad(g: &Geometry, x: &[f32], gp: &[f32], dw: &mut [f32]) {
    let nl = g.n * g.positions();
    assert!(fits(g) && gp.len() == g.o * nl && dw.len() == g.o * g.rows());
    let taps = Taps::new(g, x);
    let job = WeightGrad::new(g, &taps, gp);
    // SAFETY: as in `forward`; the positions are those of the output, and each reads taps
    // up to k - 1 to its right.
    unsafe { on_lanes!(V => job.run::<V>(dw)) }
}

struct WeightGrad<'a> {
    g: &'a Geometry,
    taps: &'a Taps,
    /// The gradient position by position, the channels side by side: a vector load a block.
    grad: Vec<f32>,
    /// Each output position's offset in the padded input.
    positions: Vec<usize>,
}

impl<'a> WeightGrad<'a> {
    fn new(g: &'a Geometry, taps: &'a Taps, gp: &[f32]) -> Self {
        let nl = g.n * g.positions();
        let mut grad = vec![0f32; nl * g.o];
        transpose(gp, g.o, nl, &mut grad);
        let positions = (0..g.n)
            .flat_map(|i| (0..g.oh).flat_map(move |oy| (0..g.ow).map(move |ox| (i, oy, ox))))
            .map(|(i, oy, ox)| taps.position(g, i, oy, ox))
            .collect();
        WeightGrad {
            g,
            taps,
            grad,
            positions,
        }
    }

    #[inline(always)]
    unsafe fn run<V: Lanes>(&self, dw: &mut [f32]) {
        match self.g.spec.kernel {
            3 => self.by_row::<V, 3>(dw),
            4 => self.by_row::<V, 4>(dw),
            _ => self.by_row::<V, 5>(dw),
        }
    }

    /// For each block of channels and each kernel row: the `K` taps along the row at once.
    #[inline(always)]
    unsafe fn by_row<V: Lanes, const K: usize>(&self, dw: &mut [f32]) {
        let g = self.g;
        let (block, t) = (GRAD_VECTORS * V::N, g.rows());
        let (plane, row) = (self.taps.input.plane(), self.taps.input.row());
        let data = self.taps.input.data().as_ptr();
        let mut lanes = [0f32; 16];
        for o0 in (0..g.o).step_by(block) {
            let grad = self.grad.as_ptr().add(o0);
            for ci in 0..g.c {
                for ky in 0..K {
                    let tap0 = data.add(ci * plane + ky * row);
                    let mut acc = [[V::zero(); K]; GRAD_VECTORS];
                    for (p, &off) in self.positions.iter().enumerate() {
                        let gv: [V; GRAD_VECTORS] =
                            std::array::from_fn(|v| V::load(grad.add(p * g.o + v * V::N)));
                        let src = tap0.add(off);
                        for kx in 0..K {
                            let xv = V::splat(src.add(kx));
                            for (a, gv) in acc.iter_mut().zip(&gv) {
                                a[kx] = a[kx].fma(*gv, xv);
                            }
                        }
                    }
                    for (v, acc) in acc.iter().enumerate() {
                        for (kx, a) in acc.iter().enumerate() {
                            a.store(lanes.as_mut_ptr());
                            for (lane, value) in lanes[..V::N].iter().enumerate() {
                                let oc = o0 + v * V::N + lane;
                                dw[oc * t + (ci * K + ky) * K + kx] = *value;
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
    use crate::nn::conv::{Activation, ConvSpec};
    use candle_core::Shape;

    #[test]
    fn plain_lanes_sum_as_the_vector_units_do() {
        // The CPU here takes the vector kernels (checked against candle in conv's tests);
        // this runs the same code on plain floats.
        let spec = ConvSpec {
            kernel: 5,
            stride: 2,
            pad: 2,
            activation: Activation::Identity,
            shuffle: false,
        };
        let (n, c, h, w, o) = (4, 16, 40, 37, 64);
        let g =
            Geometry::new(spec, &Shape::from((n, c, h, w)), &Shape::from((o, c, 5, 5))).unwrap();
        assert!(fits(&g));
        let wave = |len: usize, m: usize| -> Vec<f32> {
            (0..len)
                .map(|i| ((i * m % 23) as f32 - 11.0) / 11.0)
                .collect()
        };
        let (x, wt) = (wave(n * c * h * w, 7), wave(o * g.rows(), 5));
        let gp = wave(o * n * g.positions(), 3);
        let taps = Taps::new(&g, &x);
        let (mut fast, mut plain) = (vec![0f32; gp.len()], vec![0f32; gp.len()]);
        forward(&g, &x, &wt, &mut fast);
        let job = Forward {
            g: &g,
            taps: &taps,
            w: &wt,
        };
        unsafe { job.run::<Plain>(&mut plain) };
        let close = |a: &[f32], b: &[f32]| {
            for (a, b) in a.iter().zip(b) {
                assert!((a - b).abs() <= 1e-3 * a.abs().max(1.0), "{a} against {b}");
            }
        };
        close(&fast, &plain);
        let (mut fast, mut plain) = (vec![0f32; wt.len()], vec![0f32; wt.len()]);
        weight_grad(&g, &x, &gp, &mut fast);
        let job = WeightGrad::new(&g, &taps, &gp);
        unsafe { job.run::<Plain>(&mut plain) };
        close(&fast, &plain);
    }
}
