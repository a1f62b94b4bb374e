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
