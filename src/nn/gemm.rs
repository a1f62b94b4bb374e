//! The one matrix product the fused kernels use: gemm on strided views of slices, so that
//! transposes, heads and batch items are read in place.

/// A strided row-major view into a buffer: element (i, j) sits at `offset + i * rs + j * cs`.
#[derive(Clone, Copy)]
pub(super) struct View {
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

impl View {
    /// Rows `rs` apart from `offset`, columns adjacent.
    pub fn rows(offset: usize, rs: usize) -> View {
        View { offset, rs, cs: 1 }
    }

    /// The same elements read as the transposed matrix.
    pub fn transposed(self) -> View {
        View {
            offset: self.offset,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Index of the last element of an `m x n` view, to check it lies inside its buffer.
    fn last(&self, m: usize, n: usize) -> usize {
        self.offset + (m - 1) * self.rs + (n - 1) * self.cs
    }
}

/// `dst = scale * a @ b` (`+ dst` when `accumulate`), `a` `m x k` and `b` `k x n`, on the
/// current rayon pool's threads when the product is large enough to share.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    d: View,
    accumulate: bool,
    a: &[f32],
    av: View,
    b: &[f32],
    bv: View,
    scale: f32,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(d.last(m, n) < dst.len() && av.last(m, k) < a.len() && bv.last(k, n) < b.len());
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 && m * n * k > 1 << 18 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assert keeps every element of the three views inside its slice, and `dst`
    // is borrowed mutably, so it cannot overlap `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(d.offset),
            d.cs as isize,
            d.rs as isize,
            accumulate,
            a.as_ptr().add(av.offset),
            av.cs as isize,
            av.rs as isize,
            b.as_ptr().add(bv.offset),
            bv.cs as isize,
            bv.rs as isize,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// `dst (cols x rows) = src (rows x cols)` transposed, both row-major: 8 x 8 blocks turned
/// in AVX registers where the CPU has them, the edges one by one.
pub(super) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols);
    let (r8, c8) = (rows / 8 * 8, cols / 8 * 8);
    #[cfg(target_arch = "x86_64")]
    if super::cpu::Level::here().has_avx2_fma() {
        // SAFETY: the CPU has AVX (it has AVX2), and the blocks lie inside both slices.
        unsafe { transpose_blocks_avx(src, rows, cols, dst, r8, c8) };
    } else {
        transpose_scalar(src, rows, cols, dst, (0, r8), (0, c8));
    }
    #[cfg(not(target_arch = "x86_64"))]
    transpose_scalar(src, rows, cols, dst, (0, r8), (0, c8));
    transpose_scalar(src, rows, cols, dst, (r8, rows), (0, cols));
    transpose_scalar(src, rows, cols, dst, (0, r8), (c8, cols));
}

fn transpose_scalar(
    src: &[f32],
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    (r0, r1): (usize, usize),
    (c0, c1): (usize, usize),
) {
    for r in r0..r1 {
        for c in c0..c1 {
            dst[c * rows + r] = src[r * cols + c];
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_blocks_avx(
    src: &[f32],
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    r8: usize,
    c8: usize,
) {
    use std::arch::x86_64::*;
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    for r in (0..r8).step_by(8) {
        for c in (0..c8).step_by(8) {
            let row = |i: usize| _mm256_loadu_ps(s.add((r + i) * cols + c));
            let (a0, a1, a2, a3) = (row(0), row(1), row(2), row(3));
            let (a4, a5, a6, a7) = (row(4), row(5), row(6), row(7));
            let (t0, t1) = (_mm256_unpacklo_ps(a0, a1), _mm256_unpackhi_ps(a0, a1));
            let (t2, t3) = (_mm256_unpacklo_ps(a2, a3), _mm256_unpackhi_ps(a2, a3));
            let (t4, t5) = (_mm256_unpacklo_ps(a4, a5), _mm256_unpackhi_ps(a4, a5));
            let (t6, t7) = (_mm256_unpacklo_ps(a6, a7), _mm256_unpackhi_ps(a6, a7));
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let out = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (j, v) in out.into_iter().enumerate() {
                _mm256_storeu_ps(d.add((c + j) * rows + r), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn transpose_turns_every_shape() {
        for (rows, cols) in [(1, 1), (8, 8), (16, 24), (13, 21), (3, 40), (40, 3)] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut dst = vec![f32::NAN; rows * cols];
            super::transpose(&src, rows, cols, &mut dst);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        dst[c * rows + r],
                        src[r * cols + c],
                        "{rows}x{cols} at {r},{c}"
                    );
                }
            }
        }
    }
}
