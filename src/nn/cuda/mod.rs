//! The fused kernels on an NVIDIA GPU (the `cuda` feature): benjamin's own CUDA kernels
//! (`kernels.cu`, compiled to PTX by build.rs) behind the same candle ops as the CPU kernels
//! of [`super::fused`], so a model reads the same on either device. The convolution layer is
//! [`conv2d`]: our im2col, one cuBLAS product for the whole batch, and one fused epilogue
//! (bias, activation, pixel shuffle).

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDevice, WrapErr};
use candle_core::{CpuStorage, CudaStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result};
use candle_core::{Shape, Tensor};

mod conv;
pub mod convert;

pub use conv::conv2d;

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/benjamin_kernels.ptx"));
const MODULE: &str = "benjamin";

/// A kernel's input on the GPU.
pub(super) type CudaInput<'a> = (&'a CudaStorage, &'a Layout);

/// The elements of a contiguous f32 tensor on the GPU.
fn view<'a>((s, l): CudaInput<'a>) -> Result<CudaView<'a, f32>> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(s.as_cuda_slice::<f32>()?.slice(a..b)),
        None => candle_core::bail!("CUDA kernels take contiguous tensors"),
    }
}

/// A new output of `len` floats; every kernel here writes all of its output.
fn output(dev: &CudaDevice, len: usize) -> Result<CudaSlice<f32>> {
    // SAFETY: the kernel launched next writes every element before anything reads them.
    unsafe { dev.alloc::<f32>(len) }
}

fn done(out: CudaSlice<f32>, dev: &CudaDevice, shape: &Shape) -> Result<(CudaStorage, Shape)> {
    Ok((
        CudaStorage::wrap_cuda_slice(out, dev.clone()),
        shape.clone(),
    ))
}

/// One thread an element, grid-stride in the kernels.
fn per_element(n: usize) -> LaunchConfig {
    LaunchConfig::for_num_elems(n.clamp(1, u32::MAX as usize) as u32)
}

/// One block of 1024 threads (a reduction to one value).
fn one_block() -> LaunchConfig {
    LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (1024, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The mean of the first `n` `values`, as a one-element output.
fn mean_of(dev: &CudaDevice, values: &CudaSlice<f32>, n: u32) -> Result<CudaSlice<f32>> {
    let mut mean = output(dev, 1)?;
    launch!(dev, "mean_of", one_block(), values, &mut mean, &n);
    Ok(mean)
}

/// One warp a row, eight rows a block.
fn per_row(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.div_ceil(8).max(1) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Launches the kernel `$name` of `kernels.cu` with the arguments given (references that
/// outlive the launch).
macro_rules! launch {
    ($dev:expr, $name:expr, $cfg:expr, $($arg:expr),+ $(,)?) => {{
        let func = $dev.get_or_load_custom_func($name, MODULE, PTX)?;
        let mut args = func.builder();
        $( args.arg($arg); )+
        // SAFETY: the arguments match the kernel's signature in kernels.cu, and the sizes
        // passed bound every index it touches.
        unsafe { args.launch($cfg) }.w()?;
    }};
}
pub(crate) use launch;

/// Fails on the CPU: the op exists only on a GPU (the CPU has its own code for the same).
fn gpu_only(name: &str) -> Result<(CpuStorage, Shape)> {
    candle_core::bail!("{name} runs on a CUDA GPU only (the CPU has its own kernel for it)")
}

/// Sizes as the kernels take them.
fn u32_of(n: usize) -> Result<u32> {
    u32::try_from(n)
        .map_err(|_| candle_core::Error::Msg(format!("{n} elements: too many for one kernel")))
}

pub(super) fn gelu(x: CudaInput<'_>) -> Result<(CudaStorage, Shape)> {
    let dev = &x.0.device;
    let xs = view(x)?;
    let n = u32_of(xs.len())?;
    let mut y = output(dev, xs.len())?;
    launch!(dev, "gelu_fwd", per_element(xs.len()), &xs, &mut y, &n);
    done(y, dev, x.1.shape())
}

pub(super) fn gelu_grad(x: CudaInput<'_>, g: CudaInput<'_>) -> Result<(CudaStorage, Shape)> {
    let dev = &x.0.device;
    let (xs, gs) = (view(x)?, view(g)?);
    let n = u32_of(xs.len())?;
    let mut dx = output(dev, xs.len())?;
    launch!(
        dev,
        "gelu_bwd",
        per_element(xs.len()),
        &xs,
        &gs,
        &mut dx,
        &n
    );
    done(dx, dev, x.1.shape())
}

pub(super) fn add_bias(x: CudaInput<'_>, b: CudaInput<'_>) -> Result<(CudaStorage, Shape)> {
    let dev = &x.0.device;
    let (rows, n) = x.1.shape().dims2()?;
    let (xs, bs) = (view(x)?, view(b)?);
    if bs.len() != n {
        candle_core::bail!("add_bias: rows of {n} but a bias of {}", bs.len());
    }
    let (rows32, n32) = (u32_of(rows)?, u32_of(n)?);
    let mut y = output(dev, xs.len())?;
    launch!(
        dev,
        "add_bias",
        per_element(xs.len()),
        &xs,
        &bs,
        &mut y,
        &rows32,
        &n32
    );
    done(y, dev, x.1.shape())
}

pub(super) fn column_sum(x: CudaInput<'_>) -> Result<(CudaStorage, Shape)> {
    let dev = &x.0.device;
    let (rows, n) = x.1.shape().dims2()?;
    let xs = view(x)?;
    let (rows32, n32) = (u32_of(rows)?, u32_of(n)?);
    let mut s = output(dev, n)?;
    launch!(
        dev,
        "column_sum",
        per_element(n),
        &xs,
        &mut s,
        &rows32,
        &n32
    );
    done(s, dev, &Shape::from(n))
}

/// The last two dimensions (queries, keys) and the rows before them.
fn rows_of(l: &Layout) -> (usize, usize, usize) {
    let dims = l.dims();
    let keys = *dims.last().unwrap_or(&1);
    let t = if dims.len() > 1 {
        dims[dims.len() - 2]
    } else {
        1
    };
    (l.shape().elem_count() / keys.max(1), t, keys)
}

pub(super) fn causal_softmax(scale: f32, x: CudaInput<'_>) -> Result<(CudaStorage, Shape)> {
    let dev = &x.0.device;
    let (rows, t, keys) = rows_of(x.1);
    let xs = view(x)?;
    let (rows32, t32, keys32) = (u32_of(rows)?, u32_of(t)?, u32_of(keys)?);
    let mut p = output(dev, xs.len())?;
    let cfg = per_row(rows);
    launch!(
        dev,
        "causal_softmax_fwd",
        cfg,
        &xs,
        &mut p,
        &rows32,
        &t32,
        &keys32,
        &scale
    );
    done(p, dev, x.1.shape())
}

pub(super) fn softmax_grad(
    scale: f32,
    p: CudaInput<'_>,
    g: CudaInput<'_>,
) -> Result<(CudaStorage, Shape)> {
    let dev = &p.0.device;
    let (rows, _, keys) = rows_of(p.1);
    let (ps, gs) = (view(p)?, view(g)?);
    let (rows32, keys32) = (u32_of(rows)?, u32_of(keys)?);
    let mut dx = output(dev, ps.len())?;
    launch!(
        dev,
        "softmax_bwd",
        per_row(rows),
        &ps,
        &gs,
        &mut dx,
        &rows32,
        &keys32,
        &scale
    );
    done(dx, dev, p.1.shape())
}

/// The training data's warps on the GPU (`crate::faces::warp`, the same maths): `faces`
/// `(n, 3, r, r)` in 0-1, the face `region` `(1, 1, r, r)`, the packed `warps`
/// `(n, WARP_FLOATS)` -> [input, target, mask].
pub fn random_warp(faces: &Tensor, region: &Tensor, warps: &Tensor) -> Result<[Tensor; 3]> {
    let op = GpuOp("benjamin-random-warp", |i: Run<'_>| {
        let [faces, region, warps] = i else {
            unreachable!("three inputs")
        };
        let dev = &faces.0.device;
        let (n, _, r, _) = faces.1.shape().dims4()?;
        if region.1.shape().elem_count() != r * r || warps.1.shape().dims2()?.0 != n {
            candle_core::bail!("random_warp: region or warps do not fit {n} faces of {r}");
        }
        let (faces, region, warps) = (view(*faces)?, view(*region)?, view(*warps)?);
        let (n32, r32) = (u32_of(n)?, u32_of(r)?);
        let shape = Shape::from((n, 7, r, r));
        let mut out = output(dev, shape.elem_count())?;
        let cfg = per_element(n * r * r);
        launch!(
            dev,
            "random_warp",
            cfg,
            &faces,
            &region,
            &warps,
            &mut out,
            &n32,
            &r32
        );
        done(out, dev, &shape)
    });
    let (region, warps) = (region.contiguous()?, warps.contiguous()?);
    let out = faces.contiguous()?.apply_op3_no_bwd(&region, &warps, &op)?;
    let part = |from, channels| out.narrow(1, from, channels)?.contiguous();
    Ok([part(0, 3)?, part(3, 3)?, part(6, 1)?])
}

/// A GPU-only op with no gradient: `.0` names it, `.1` runs it on its inputs.
struct GpuOp<F>(&'static str, F);

type Run<'a> = &'a [CudaInput<'a>];

impl<F: Fn(Run<'_>) -> Result<(CudaStorage, Shape)> + Send + Sync> CustomOp1 for GpuOp<F> {
    fn name(&self) -> &'static str {
        self.0
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        gpu_only(self.0)
    }

    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        (self.1)(&[(s, l)])
    }
}

impl<F: Fn(Run<'_>) -> Result<(CudaStorage, Shape)> + Send + Sync> CustomOp2 for GpuOp<F> {
    fn name(&self) -> &'static str {
        self.0
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        gpu_only(self.0)
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        (self.1)(&[(s1, l1), (s2, l2)])
    }
}

impl<F: Fn(Run<'_>) -> Result<(CudaStorage, Shape)> + Send + Sync> CustomOp3 for GpuOp<F> {
    fn name(&self) -> &'static str {
        self.0
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        gpu_only(self.0)
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        (self.1)(&[(s1, l1), (s2, l2), (s3, l3)])
    }
}

/// The rows of `c` of a layer norm's input, checked against its weight.
fn norm_rows(x: &Layout, w: &Layout) -> Result<(usize, usize)> {
    let (n, c) = (x.shape().elem_count(), w.shape().elem_count());
    if c == 0 || n % c != 0 {
        candle_core::bail!("layer norm: {n} values do not split into rows of {c}");
    }
    Ok((n / c, c))
}

pub(super) fn layer_norm(
    eps: f32,
    x: CudaInput<'_>,
    w: CudaInput<'_>,
    b: CudaInput<'_>,
) -> Result<(CudaStorage, Shape)> {
    let dev = &x.0.device;
    let (rows, c) = norm_rows(x.1, w.1)?;
    let (xs, ws, bs) = (view(x)?, view(w)?, view(b)?);
    let (rows32, c32) = (u32_of(rows)?, u32_of(c)?);
    let mut y = output(dev, xs.len())?;
    launch!(
        dev,
        "layer_norm_fwd",
        per_row(rows),
        &xs,
        &ws,
        &bs,
        &mut y,
        &rows32,
        &c32,
        &eps
    );
    done(y, dev, x.1.shape())
}

/// `(rows + 2, c)`: the input's gradient, then the weight's and the bias's.
pub(super) fn layer_norm_grad(
    eps: f32,
    x: CudaInput<'_>,
    w: CudaInput<'_>,
    g: CudaInput<'_>,
) -> Result<(CudaStorage, Shape)> {
    let dev = &x.0.device;
    let (rows, c) = norm_rows(x.1, w.1)?;
    let (xs, ws, gs) = (view(x)?, view(w)?, view(g)?);
    let (rows32, c32) = (u32_of(rows)?, u32_of(c)?);
    let mut out = output(dev, (rows + 2) * c)?;
    let mut moments = output(dev, 2 * rows)?;
    let cfg = per_row(rows);
    launch!(
        dev,
        "layer_norm_bwd_rows",
        cfg,
        &xs,
        &ws,
        &gs,
        &mut out,
        &mut moments,
        &rows32,
        &c32,
        &eps
    );
    launch!(
        dev,
        "layer_norm_bwd_cols",
        per_element(c),
        &xs,
        &gs,
        &moments,
        &mut out,
        &rows32,
        &c32
    );
    done(out, dev, &Shape::from((rows + 2, c)))
}

/// The class ids of a cross-entropy on the GPU.
fn ids<'a>((s, l): CudaInput<'a>) -> Result<CudaView<'a, u32>> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(s.as_cuda_slice::<u32>()?.slice(a..b)),
        None => candle_core::bail!("CUDA kernels take contiguous tensors"),
    }
}

pub(super) fn cross_entropy(x: CudaInput<'_>, t: CudaInput<'_>) -> Result<(CudaStorage, Shape)> {
    let dev = &x.0.device;
    let (rows, classes) = x.1.shape().dims2()?;
    let (xs, ts) = (view(x)?, ids(t)?);
    let (rows32, classes32) = (u32_of(rows)?, u32_of(classes)?);
    let mut losses = output(dev, rows.max(1))?;
    let cfg = per_row(rows);
    launch!(
        dev,
        "cross_entropy_rows",
        cfg,
        &xs,
        &ts,
        &mut losses,
        &rows32,
        &classes32
    );
    done(mean_of(dev, &losses, rows32)?, dev, &Shape::from(()))
}

pub(super) fn cross_entropy_grad(
    x: CudaInput<'_>,
    t: CudaInput<'_>,
) -> Result<(CudaStorage, Shape)> {
    let dev = &x.0.device;
    let (rows, classes) = x.1.shape().dims2()?;
    let (xs, ts) = (view(x)?, ids(t)?);
    let (rows32, classes32) = (u32_of(rows)?, u32_of(classes)?);
    let mut d = output(dev, xs.len())?;
    let cfg = per_row(rows);
    launch!(
        dev,
        "cross_entropy_grad",
        cfg,
        &xs,
        &ts,
        &mut d,
        &rows32,
        &classes32
    );
    done(d, dev, x.1.shape())
}

pub(super) fn least_squares(target: f32, x: CudaInput<'_>) -> Result<(CudaStorage, Shape)> {
    let dev = &x.0.device;
    let xs = view(x)?;
    let n = u32_of(xs.len())?;
    let mut squares = output(dev, xs.len().max(1))?;
    launch!(
        dev,
        "squared_error",
        per_element(xs.len()),
        &xs,
        &mut squares,
        &n,
        &target
    );
    done(mean_of(dev, &squares, n)?, dev, &Shape::from(()))
}

pub(super) fn least_squares_grad(target: f32, x: CudaInput<'_>) -> Result<(CudaStorage, Shape)> {
    let dev = &x.0.device;
    let xs = view(x)?;
    let n = u32_of(xs.len())?;
    let mut d = output(dev, xs.len())?;
    launch!(
        dev,
        "squared_error_grad",
        per_element(xs.len()),
        &xs,
        &mut d,
        &n,
        &target
    );
    done(d, dev, x.1.shape())
}
