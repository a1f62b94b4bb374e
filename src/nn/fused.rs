//! Fused CPU kernels, each with an explicit backward pass, for the ops that dominate training
//! small models on a CPU. candle composes them from many elementwise ops, each a pass over
//! memory and a new tensor: GELU's backward alone is ten of them, three with `powf`. Here
//! each is one pass. On other devices every function falls back to candle's composed ops, so
//! the models read the same everywhere.

use std::cell::RefCell;

use candle_core::backprop::GradStore;
use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor,
};

/// Whether `t` can take the CPU kernels.
pub(super) fn on_cpu(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// Whether `t` can take the CUDA kernels (the `cuda` feature, on an NVIDIA GPU).
pub(super) fn on_gpu(t: &Tensor) -> bool {
    cfg!(feature = "cuda") && t.device().is_cuda() && t.dtype() == DType::F32
}

/// Whether `t` can take a fused kernel on its device.
pub(super) fn fused_here(t: &Tensor) -> bool {
    on_cpu(t) || on_gpu(t)
}

/// The elements of a contiguous tensor's storage.
pub(super) fn values<'a, T: candle_core::WithDType>(
    s: &'a CpuStorage,
    l: &Layout,
) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<T>()?[a..b]),
        None => bail!("fused kernels take contiguous tensors"),
    }
}

/// Runs `f` compiled for AVX2 and FMA when the CPU has them: the kernels are plain loops the
/// compiler vectorises, and the baseline x86-64 target only has SSE2.
#[inline(always)]
pub(super) fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn wide<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if super::cpu::Level::here().has_avx2_fma() {
            // SAFETY: the CPU was just found to support both features.
            return unsafe { wide(f) };
        }
    }
    f()
}

/// A kernel's input: a contiguous CPU tensor's storage and layout.
pub(super) type Input<'a> = (&'a CpuStorage, &'a Layout);

/// A CPU kernel of `N` contiguous inputs and one output; [`Fused`] makes it a candle op, so
/// each kernel states only its name, its loop and (when it has one) its backward pass.
pub(super) trait Kernel<const N: usize>: Send + Sync + 'static {
    const NAME: &'static str;

    fn forward(&self, inputs: [Input<'_>; N]) -> Result<(CpuStorage, Shape)>;

    /// The inputs' gradients given the output and its gradient.
    fn backward(
        &self,
        inputs: [&Tensor; N],
        output: &Tensor,
        grad: &Tensor,
    ) -> Result<[Option<Tensor>; N]> {
        let _ = (inputs, output, grad);
        bail!("{} has no backward pass", Self::NAME)
    }

    /// The same kernel on a CUDA GPU ([`super::cuda`]).
    #[cfg(feature = "cuda")]
    fn cuda(&self, inputs: [CudaInput<'_>; N]) -> Result<(CudaStorage, Shape)> {
        let _ = inputs;
        bail!("{} has no CUDA kernel", Self::NAME)
    }
}

#[cfg(feature = "cuda")]
use super::cuda::CudaInput;
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;

/// A [`Kernel`] as a candle custom op.
pub(super) struct Fused<K>(pub K);

impl<K: Kernel<1>> CustomOp1 for Fused<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        self.0.forward([(s, l)])
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        self.0.cuda([(s, l)])
    }

    fn bwd(&self, a: &Tensor, out: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let [da] = keep_aside([a], self.0.backward([a], out, grad)?);
        Ok(da)
    }
}

impl<K: Kernel<2>> CustomOp2 for Fused<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.0.forward([(s1, l1), (s2, l2)])
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        self.0.cuda([(s1, l1), (s2, l2)])
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let [da, db] = keep_aside([a, b], self.0.backward([a, b], out, grad)?);
        Ok((da, db))
    }
}

impl<K: Kernel<3>> CustomOp3 for Fused<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.0.forward([(s1, l1), (s2, l2), (s3, l3)])
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        self.0.cuda([(s1, l1), (s2, l2), (s3, l3)])
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        c: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let [da, db, dc] = keep_aside([a, b, c], self.0.backward([a, b, c], out, grad)?);
        Ok((da, db, dc))
    }
}

thread_local! {
    /// The variables' gradients the kernels computed during [`backward`] on this thread.
    static KEPT: RefCell<Option<Vec<(Tensor, Tensor)>>> = const { RefCell::new(None) };
}

/// `loss.backward()`, except that the gradients the kernels compute for variables (weights,
/// biases) go straight into the store. candle adds every gradient it is handed into a
/// zero-filled tensor of its own, a pass to fill and a pass to add for each weight of each
/// layer: in the swap model's training that was a tenth of the time.
pub fn backward(loss: &Tensor) -> Result<GradStore> {
    KEPT.with(|k| *k.borrow_mut() = Some(Vec::new()));
    let grads = loss.backward();
    let kept = KEPT.with(|k| k.borrow_mut().take()).unwrap_or_default();
    let mut grads = grads?;
    for (var, g) in kept {
        // A weight shared by several layers (or identities) has a gradient from each.
        let sum = match grads.remove(&var) {
            Some(prev) => prev.add(&g)?,
            None => g,
        };
        grads.insert(&var, sum);
    }
    Ok(grads)
}

/// Within [`backward`], takes the variables' gradients out of what goes back to candle
/// (nothing flows on from a variable) and keeps them aside.
fn keep_aside<const N: usize>(
    inputs: [&Tensor; N],
    mut grads: [Option<Tensor>; N],
) -> [Option<Tensor>; N] {
    KEPT.with(|k| {
        if let Some(kept) = k.borrow_mut().as_mut() {
            for (t, g) in inputs.iter().zip(grads.iter_mut()) {
                if t.is_variable() {
                    if let Some(g) = g.take() {
                        kept.push(((*t).clone(), g));
                    }
                }
            }
        }
    });
    grads
}

/// e^x to about 2 ulp (Cephes' expf), branch-free so that loops of it vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.clamp(-87.3, 88.3);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // SAFETY: the clamp keeps n within -126..=127, well inside i32. (A checked `as` would
    // saturate, and saturating conversions keep the loop from vectorising.)
    let n: i32 = unsafe { n.to_int_unchecked() };
    e * f32::from_bits(((n + 127) << 23) as u32)
}

/// Sum of `f(v)` over a slice, kept in eight running sums: one running sum is a chain of
/// dependent adds the compiler must keep in order, eight of them vectorise.
#[inline(always)]
pub(super) fn lane_sum(a: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = a.chunks_exact(8);
    let mut total = 0.0;
    for &v in chunks.remainder() {
        total += f(v);
    }
    for chunk in chunks {
        let chunk: &[f32; 8] = chunk.try_into().expect("chunks of 8");
        for j in 0..8 {
            acc[j] += f(chunk[j]);
        }
    }
    for v in acc {
        total += v;
    }
    total
}

/// The largest value of a slice (see [`lane_sum`]); minus infinity when empty.
#[inline(always)]
pub(super) fn lane_max(a: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = a.chunks_exact(8);
    let mut max = f32::NEG_INFINITY;
    for &v in chunks.remainder() {
        max = max.max(v);
    }
    for chunk in chunks {
        let chunk: &[f32; 8] = chunk.try_into().expect("chunks of 8");
        for j in 0..8 {
            acc[j] = if chunk[j] > acc[j] { chunk[j] } else { acc[j] };
        }
    }
    for v in acc {
        max = max.max(v);
    }
    max
}

/// Dot product of two equally long slices (see [`lane_sum`]).
#[inline(always)]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut total = 0.0;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        total += x * y;
    }
    for (x, y) in ca.zip(cb) {
        let (x, y): (&[f32; 8], &[f32; 8]) = (x.try_into().expect("8"), y.try_into().expect("8"));
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    for v in acc {
        total += v;
    }
    total
}

mod ops;

pub use ops::{add_bias, causal_softmax, gelu};
pub(super) use ops::{softmax_in_place, ColumnSum};

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The fused op and candle's composed one give the same values and gradients.
    pub(in crate::nn) fn agree(
        fused: impl Fn(&Tensor) -> Result<Tensor>,
        reference: impl Fn(&Tensor) -> Result<Tensor>,
        shape: &[usize],
    ) -> Result<()> {
        let x = Var::from_tensor(&(Tensor::randn(0f32, 2.0, shape, &Device::Cpu)?))?;
        let (a, b) = (fused(x.as_tensor())?, reference(x.as_tensor())?);
        let weights = Tensor::randn(0f32, 1.0, a.shape(), &Device::Cpu)?;
        let diff = (&a - &b)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "values differ by {diff}");
        let ga = (a * &weights)?.sum_all()?.backward()?;
        let gb = (b * &weights)?.sum_all()?.backward()?;
        let (ga, gb) = (
            ga.get(x.as_tensor()).unwrap(),
            gb.get(x.as_tensor()).unwrap(),
        );
        let diff = (ga - gb)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "gradients differ by {diff}");
        Ok(())
    }

    #[test]
    fn exp_is_accurate() {
        for i in -800..800 {
            let x = i as f32 * 0.1;
            let (a, b) = (exp(x), x.exp());
            assert!((a - b).abs() <= b * 5e-7, "exp({x}) = {a}, expected {b}");
        }
        assert_eq!(exp(-200.0), exp(-87.3));
    }
}
