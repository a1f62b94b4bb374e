//! The vector types the direct and implicit convolution kernels are written in: AVX-512 or
//! AVX2 (with FMA) where the CPU has them, eight plain floats elsewhere. Each kernel is
//! generic over [`Lanes`] and runs inside [`avx512`] or [`avx2`], which compile it for
//! those instructions.

/// `$body` with the type `$v` naming the widest vectors this CPU has ([`Avx512`], [`Avx2`],
/// or [`Plain`]), compiled for them: `on_lanes!(V => job.run::<V>(..))`.
macro_rules! on_lanes {
    ($v:ident => $body:expr) => {
        match $crate::nn::conv::lanes::Level::here() {
            #[cfg(target_arch = "x86_64")]
            $crate::nn::conv::lanes::Level::Avx512 => $crate::nn::conv::lanes::avx512(|| {
                type $v = $crate::nn::conv::lanes::Avx512;
                $body
            }),
            #[cfg(target_arch = "x86_64")]
            $crate::nn::conv::lanes::Level::Avx2 => $crate::nn::conv::lanes::avx2(|| {
                type $v = $crate::nn::conv::lanes::Avx2;
                $body
            }),
            _ => {
                type $v = $crate::nn::conv::lanes::Plain;
                $body
            }
        }
    };
}

/// Vector operations the kernels are written in.
pub(super) trait Lanes: Copy {
    /// Floats in one vector.
    const N: usize;
    unsafe fn zero() -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn splat(p: *const f32) -> Self;
    /// `self + a * b`.
    unsafe fn fma(self, a: Self, b: Self) -> Self;
    unsafe fn store(self, p: *mut f32);
    unsafe fn sum(self) -> f32;
}

/// Eight plain floats, for CPUs without the vector units below.
#[derive(Clone, Copy)]
pub(super) struct Plain([f32; 8]);

impl Lanes for Plain {
    const N: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Plain([0.0; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        Plain(std::ptr::read_unaligned(p as *const [f32; 8]))
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> Self {
        Plain([*p; 8])
    }
    #[inline(always)]
    unsafe fn fma(self, a: Self, b: Self) -> Self {
        Plain(std::array::from_fn(|l| self.0[l] + a.0[l] * b.0[l]))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        std::ptr::write_unaligned(p as *mut [f32; 8], self.0)
    }
    #[inline(always)]
    unsafe fn sum(self) -> f32 {
        self.0.iter().sum()
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

pub(crate) use crate::nn::cpu::Level;

/// Defines a vector type and the function that runs code compiled for it.
macro_rules! lanes {
    ($name:ident, $run:ident, $feature:literal, $ty:ty, $n:literal,
     $zero:ident, $load:ident, $splat:expr, $fma:ident, $store:ident, $sum:expr) => {
        #[cfg(target_arch = "x86_64")]
        #[derive(Clone, Copy)]
        pub(super) struct $name($ty);

        #[cfg(target_arch = "x86_64")]
        impl Lanes for $name {
            const N: usize = $n;
            #[inline(always)]
            unsafe fn zero() -> Self {
                $name($zero())
            }
            #[inline(always)]
            unsafe fn load(p: *const f32) -> Self {
                $name($load(p))
            }
            #[inline(always)]
            unsafe fn splat(p: *const f32) -> Self {
                $name($splat(*p))
            }
            #[inline(always)]
            unsafe fn fma(self, a: Self, b: Self) -> Self {
                $name($fma(a.0, b.0, self.0))
            }
            #[inline(always)]
            unsafe fn store(self, p: *mut f32) {
                $store(p, self.0)
            }
            #[inline(always)]
            unsafe fn sum(self) -> f32 {
                $sum(self.0)
            }
        }

        /// Runs `f` compiled for these vectors (the kernels inline into it). Only call
        /// it where [`Level::here`] found them.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        pub(super) unsafe fn $run<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
    };
}

lanes!(
    Avx512,
    avx512,
    "avx512f",
    __m512,
    16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_storeu_ps,
    _mm512_reduce_add_ps
);

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn sum8(v: __m256) -> f32 {
    let v = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    _mm_cvtss_f32(_mm_add_ss(v, _mm_shuffle_ps(v, v, 1)))
}

lanes!(
    Avx2,
    avx2,
    "avx2,fma",
    __m256,
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_storeu_ps,
    sum8
);
