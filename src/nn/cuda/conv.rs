//! The convolution layer on the GPU: our im2col lays the whole batch out as one matrix
//! `(C·K·K, N·OH·OW)`, cuBLAS (through candle's `matmul`) multiplies it by the weights
//! `(O, C·K·K)` in one product, and one epilogue kernel adds the bias, applies the activation
//! and writes each value to its place in `(N, O, OH, OW)`, pixel-shuffled for upscalers. The
//! product's layout `(O, N·OH·OW)` is not the output's, so the transpose costs nothing extra.
//! Backward: the epilogue's gradient kernel, candle's products for the weights and the
//! columns, and col2im, the adjoint of im2col, gathering without atomics.

use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{bail, CpuStorage, CudaStorage, CustomOp1, CustomOp2, Layout, Result, Shape};
use candle_core::{Tensor, D};

use super::{done, gpu_only, launch, output, per_element, u32_of, view, CudaInput, GpuOp, Run};
use super::{MODULE, PTX};
use crate::nn::conv::geometry::Geometry;
use crate::nn::conv::{Activation, ConvSpec};

/// The sizes the kernels take (`struct Conv` in kernels.cu).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Sizes {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    k: u32,
    stride: u32,
    pad: u32,
    oh: u32,
    ow: u32,
}

// SAFETY: plain `u32`s laid out as C lays out kernels.cu's `struct Conv`.
unsafe impl DeviceRepr for Sizes {}

impl Sizes {
    fn columns(&self) -> usize {
        (self.c * self.k * self.k) as usize
    }

    fn positions(&self) -> usize {
        (self.n * self.oh * self.ow) as usize
    }
}

/// `activation(conv2d(x, weight) + bias)`, pixel-shuffled when the spec says so, on the GPU.
pub fn conv2d(x: &Tensor, weight: &Tensor, bias: &Tensor, spec: ConvSpec) -> Result<Tensor> {
    // The same checks and sizes as the CPU layer's.
    let g = Geometry::new(spec, x.shape(), weight.shape())?;
    let o = g.o;
    let sizes = Sizes {
        n: u32_of(g.n)?,
        c: u32_of(g.c)?,
        h: u32_of(g.h)?,
        w: u32_of(g.w)?,
        k: u32_of(spec.kernel)?,
        stride: u32_of(spec.stride)?,
        pad: u32_of(spec.pad)?,
        oh: u32_of(g.oh)?,
        ow: u32_of(g.ow)?,
    };
    let columns = x.contiguous()?.apply_op1(Im2col(sizes))?;
    let product = weight.reshape((o, sizes.columns()))?.matmul(&columns)?;
    let epilogue = Epilogue {
        outs: u32_of(o)?,
        n: sizes.n,
        oh: sizes.oh,
        ow: sizes.ow,
        activation: spec.activation,
        shuffle: spec.shuffle,
    };
    product.apply_op2(&bias.contiguous()?, epilogue)
}

/// `x (N, C, H, W)` -> columns `(C·K·K, N·OH·OW)`.
struct Im2col(Sizes);

impl CustomOp1 for Im2col {
    fn name(&self) -> &'static str {
        "benjamin-im2col"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        gpu_only(self.name())
    }

    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        let dev = &s.device;
        let x = view((s, l))?;
        let shape = Shape::from((self.0.columns(), self.0.positions()));
        let mut cols = output(dev, shape.elem_count())?;
        launch!(
            dev,
            "im2col",
            per_element(shape.elem_count()),
            &x,
            &mut cols,
            &self.0
        );
        done(cols, dev, &shape)
    }

    /// col2im: columns -> `(N, C, H, W)`, each pixel the sum of the columns that read it.
    fn bwd(&self, _: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let g = self.0;
        let col2im = GpuOp("benjamin-col2im", move |i: Run<'_>| {
            let dev = &i[0].0.device;
            let cols = view(i[0])?;
            let shape = Shape::from((g.n as usize, g.c as usize, g.h as usize, g.w as usize));
            let mut dx = output(dev, shape.elem_count())?;
            launch!(
                dev,
                "col2im",
                per_element(shape.elem_count()),
                &cols,
                &mut dx,
                &g
            );
            done(dx, dev, &shape)
        });
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&col2im)?))
    }
}

/// The product `(O, N·OH·OW)` and the bias -> the layer's output.
#[derive(Debug, Clone, Copy)]
struct Epilogue {
    outs: u32,
    n: u32,
    oh: u32,
    ow: u32,
    activation: Activation,
    shuffle: bool,
}

impl Epilogue {
    /// The activation as the kernels take it: a code and the leaky slope.
    fn activation(&self) -> (i32, f32) {
        match self.activation {
            Activation::Identity => (0, 0.0),
            Activation::Leaky(s) => (1, s),
            Activation::Sigmoid => (2, 0.0),
        }
    }

    /// Launches `kernel` (the epilogue or its gradient: the same arguments) on `a` and `b`.
    fn run(
        &self,
        kernel: &str,
        a: CudaInput<'_>,
        b: CudaInput<'_>,
        shape: Shape,
    ) -> Result<(CudaStorage, Shape)> {
        let dev = &a.0.device;
        let (a, b) = (view(a)?, view(b)?);
        let (code, slope) = self.activation();
        let shuffle = self.shuffle as i32;
        let mut out = output(dev, shape.elem_count())?;
        let (outs, n, oh, ow) = (&self.outs, &self.n, &self.oh, &self.ow);
        let cfg = per_element(shape.elem_count());
        launch!(dev, kernel, cfg, &a, &b, &mut out, outs, n, oh, ow, &code, &slope, &shuffle);
        done(out, dev, &shape)
    }

    fn output_shape(&self) -> Shape {
        let (n, o, h, w) = (
            self.n as usize,
            self.outs as usize,
            self.oh as usize,
            self.ow as usize,
        );
        if self.shuffle {
            Shape::from((n, o / 4, 2 * h, 2 * w))
        } else {
            Shape::from((n, o, h, w))
        }
    }
}

impl CustomOp2 for Epilogue {
    fn name(&self) -> &'static str {
        "benjamin-conv-epilogue"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        gpu_only(self.name())
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        if l2.shape().elem_count() != self.outs as usize {
            bail!(
                "conv2d: {} output channels but a bias of {}",
                self.outs,
                l2.shape().elem_count()
            );
        }
        self.run("conv_epilogue", (s1, l1), (s2, l2), self.output_shape())
    }

    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // The gradient of the product `(O, N·OH·OW)` from the output's gradient and values.
        let e = *self;
        let grad_op = GpuOp("benjamin-conv-epilogue-grad", move |i: Run<'_>| {
            let positions = (e.n * e.oh * e.ow) as usize;
            let shape = Shape::from((e.outs as usize, positions));
            e.run("conv_epilogue_grad", i[0], i[1], shape)
        });
        let gpre = grad.contiguous()?.apply_op2_no_bwd(out, &grad_op)?;
        let gbias = gpre.sum(D::Minus1)?;
        Ok((Some(gpre), Some(gbias)))
    }
}
