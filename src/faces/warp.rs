//! The training data's warps, as the deepfake trainers warp faces: a random similarity and a
//! smooth elastic distortion. The target is the face under the similarity, the input the same
//! with the distortion too, so the decoder must rebuild a clean face from a bent one; the mask's
//! target is the face region ([`super::align::face_region`]) under the same similarity.
//!
//! A [`Warp`] is drawn on the CPU from a seed; [`warp_batch`] applies a batch of them on the
//! model's device: on the CPU's cores, or in one CUDA kernel (`random_warp` in
//! `src/nn/cuda/kernels.cu`) with the `cuda` feature on a GPU, from the same draws.

use anyhow::Result;
use candle_core::{Device, Tensor};
use rand::Rng;

use super::align::Affine;
use super::tensors::{masks_tensor, to_tensor};
use crate::vision::image::Planar;

/// The side of the grid of displacements, interpolated bilinearly over the face.
pub const GRID: usize = 5;

/// One face's warp.
#[derive(Debug, Clone, PartialEq)]
pub struct Warp {
    /// Output pixel -> source pixel (the similarity's inverse).
    pub inverse: Affine,
    /// Whether the output is mirrored left to right.
    pub flip: bool,
    /// Displacements (dx, dy) in pixels at the grid's nodes, row by row.
    pub grid: [[f32; 2]; GRID * GRID],
}

impl Warp {
    /// A random warp for faces of side `size`.
    pub fn draw(size: usize, rng: &mut impl Rng) -> Warp {
        let r = size as f32;
        let angle = rng.random_range(-10f32..10.0).to_radians();
        let scale = rng.random_range(0.95f32..1.05);
        let (tx, ty) = (
            rng.random_range(-0.05f32..0.05) * r,
            rng.random_range(-0.05f32..0.05) * r,
        );
        let flip = rng.random_bool(0.5);
        let c = (r - 1.0) / 2.0;
        // About the centre: p -> S (p - c) + c + t.
        let sim = Affine::similarity(scale, angle, 0.0, 0.0);
        let [ox, oy] = sim.apply([c, c]);
        let m = sim.0;
        let sim = Affine([m[0], m[1], c - ox + tx, m[3], m[4], c - oy + ty]);
        // Displacements of std 2% of the side.
        let sd = 0.02 * r;
        let mut grid = [[0f32; 2]; GRID * GRID];
        for node in grid.iter_mut() {
            let mut n = || {
                // Sum of uniforms: close enough to a normal for a warp.
                (0..4).map(|_| rng.random_range(-1f32..1.0)).sum::<f32>() * 0.866 * sd
            };
            *node = [n(), n()];
        }
        Warp {
            inverse: sim.inverse(),
            flip,
            grid,
        }
    }

    /// The displacement at output pixel (x, y) of a face of side `size`.
    fn displacement(&self, x: usize, y: usize, size: usize) -> [f32; 2] {
        let lim = (size - 1) as f32;
        let gx = x as f32 / lim * (GRID - 1) as f32;
        let gy = y as f32 / lim * (GRID - 1) as f32;
        let (x0, y0) = ((gx as usize).min(GRID - 2), (gy as usize).min(GRID - 2));
        let (fx, fy) = (gx - x0 as f32, gy - y0 as f32);
        let g = |i: usize, j: usize, k: usize| self.grid[j * GRID + i][k];
        let d = |k| {
            (g(x0, y0, k) * (1.0 - fx) + g(x0 + 1, y0, k) * fx) * (1.0 - fy)
                + (g(x0, y0 + 1, k) * (1.0 - fx) + g(x0 + 1, y0 + 1, k) * fx) * fy
        };
        [d(0), d(1)]
    }

    /// (input, target, mask) of `face` under this warp.
    pub fn apply(&self, face: &Planar, region: &Planar) -> (Planar, Planar, Planar) {
        let size = face.width;
        let mut target = Planar::new(size, size, 3);
        let mut input = Planar::new(size, size, 3);
        let mut mask = Planar::new(size, size, 1);
        let mut px = [0f32; 3];
        let lim = (size - 1) as f32;
        for y in 0..size {
            for x in 0..size {
                let xs = if self.flip { lim - x as f32 } else { x as f32 };
                let [sx, sy] = self.inverse.apply([xs, y as f32]);
                let at = (y * size + x) * 3;
                face.sample(sx.clamp(0.0, lim), sy.clamp(0.0, lim), &mut px);
                target.data[at..at + 3].copy_from_slice(&px);
                let mut m = [0f32; 1];
                region.sample(sx.clamp(0.0, lim), sy.clamp(0.0, lim), &mut m);
                mask.data[y * size + x] = m[0];
                let [dx, dy] = self.displacement(x, y, size);
                let (ix, iy) = ((sx + dx).clamp(0.0, lim), (sy + dy).clamp(0.0, lim));
                face.sample(ix, iy, &mut px);
                input.data[at..at + 3].copy_from_slice(&px);
            }
        }
        (input, target, mask)
    }

    /// The warp as the CUDA kernel reads it: the inverse's six numbers, the flip, the grid.
    pub fn packed(&self) -> [f32; WARP_FLOATS] {
        let mut out = [0f32; WARP_FLOATS];
        out[..6].copy_from_slice(&self.inverse.0);
        out[6] = if self.flip { 1.0 } else { 0.0 };
        for (i, d) in self.grid.iter().enumerate() {
            out[7 + 2 * i..9 + 2 * i].copy_from_slice(d);
        }
        out
    }
}

/// Floats per packed warp.
pub const WARP_FLOATS: usize = 7 + 2 * GRID * GRID;

/// A random warp of `face`: (input, target, mask).
pub fn random_warp(face: &Planar, rng: &mut impl Rng) -> (Planar, Planar, Planar) {
    let warp = Warp::draw(face.width, rng);
    warp.apply(face, &super::align::face_region(face.width))
}

/// Each face under its warp, on `device`: input and target `(N, 3, R, R)` in 0-1, mask
/// `(N, 1, R, R)`.
pub fn warp_batch(faces: &[&Planar], warps: &[Warp], device: &Device) -> Result<[Tensor; 3]> {
    anyhow::ensure!(
        !faces.is_empty() && faces.len() == warps.len(),
        "a warp for each face"
    );
    let region = super::align::face_region(faces[0].width);
    #[cfg(feature = "cuda")]
    if device.is_cuda() {
        let packed: Vec<f32> = warps.iter().flat_map(|w| w.packed()).collect();
        let packed = Tensor::from_vec(packed, (warps.len(), WARP_FLOATS), device)?;
        let region = masks_tensor(&[&region], device)?;
        return Ok(crate::nn::cuda::random_warp(
            &to_tensor(faces, device)?,
            &region,
            &packed,
        )?);
    }
    let warped = crate::nn::on_cores(faces.len(), |i| Ok(warps[i].apply(faces[i], &region)))?;
    Ok([
        to_tensor(&warped.iter().map(|w| &w.0).collect::<Vec<_>>(), device)?,
        to_tensor(&warped.iter().map(|w| &w.1).collect::<Vec<_>>(), device)?,
        masks_tensor(&warped.iter().map(|w| &w.2).collect::<Vec<_>>(), device)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn a_batch_on_the_cpu_is_each_face_under_its_own_warp() -> Result<()> {
        let faces = super::super::synth::aligned_faces(&super::super::synth::Look::B, 3, 32, 5);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let warps: Vec<Warp> = (0..3).map(|_| Warp::draw(32, &mut rng)).collect();
        let refs: Vec<&Planar> = faces.iter().collect();
        let [input, target, mask] = warp_batch(&refs, &warps, &Device::Cpu)?;
        let region = super::super::align::face_region(32);
        for (i, w) in warps.iter().enumerate() {
            let (inp, tgt, m) = w.apply(&faces[i], &region);
            let want = to_tensor(&[&inp, &tgt], &Device::Cpu)?;
            assert_eq!(
                input.get(i)?.to_vec3::<f32>()?,
                want.get(0)?.to_vec3::<f32>()?
            );
            assert_eq!(
                target.get(i)?.to_vec3::<f32>()?,
                want.get(1)?.to_vec3::<f32>()?
            );
            let m = masks_tensor(&[&m], &Device::Cpu)?;
            assert_eq!(mask.get(i)?.to_vec3::<f32>()?, m.get(0)?.to_vec3::<f32>()?);
        }
        // The input is bent away from the target, and the flips differ across draws.
        let bent = (&input - &target)?.abs()?.mean_all()?.to_scalar::<f32>()?;
        assert!(bent > 1e-3, "input equals target: {bent}");
        Ok(())
    }

    #[test]
    fn packing_keeps_the_inverse_the_flip_and_the_grid_in_order() {
        let w = Warp::draw(64, &mut ChaCha8Rng::seed_from_u64(3));
        let p = w.packed();
        assert_eq!(&p[..6], &w.inverse.0);
        assert_eq!(p[6], if w.flip { 1.0 } else { 0.0 });
        assert_eq!([p[7 + 2 * 7], p[8 + 2 * 7]], w.grid[7]);
        assert_eq!(p.len(), WARP_FLOATS);
    }
}
