//! The one place that asks the CPU which vector instructions it has; every kernel's choice
//! of code path goes through it, and the answer is read once.

use std::sync::OnceLock;

/// The widest vectors this CPU has that the kernels are written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    Avx512,
    Avx2,
    Plain,
}

impl Level {
    pub(crate) fn here() -> Level {
        static LEVEL: OnceLock<Level> = OnceLock::new();
        *LEVEL.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    return Level::Avx512;
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    return Level::Avx2;
                }
            }
            Level::Plain
        })
    }

    /// AVX2 and FMA, which every level above `Plain` has (AVX-512 CPUs have both).
    pub(crate) fn has_avx2_fma(self) -> bool {
        self != Level::Plain
    }
}
