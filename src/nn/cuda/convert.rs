//! The faces' conversion on the GPU (`convert.cu`): the alignment warp, the blending mask,
//! the Lab colour match and the feathered paste of `crate::faces::convert`, the same maths,
//! on a frame uploaded once. Frames are `(h, w, 3)` RGB 0-255 as benjamin's `Planar`; faces
//! and masks the model's planes.

use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CpuStorage, CudaStorage, InplaceOp3, Layout, Result, Shape, Tensor};

use super::{done, gpu_only, launch, output, per_element, u32_of, view, GpuOp, Run};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/benjamin_convert.ptx"));
const MODULE: &str = "benjamin-convert";

/// Crops `(n, 3, s, s)` in 0-1 of `frame` through each alignment's inverse (`inverses`
/// `(n, 6)`): `align::warp` and `to_tensor` in one pass.
pub fn align_crops(frame: &Tensor, inverses: &Tensor, size: usize) -> Result<Tensor> {
    let op = GpuOp("benjamin-align-crops", move |i: Run<'_>| {
        let [frame, inverses] = i else {
            unreachable!("two inputs")
        };
        let dev = &frame.0.device;
        let (fh, fw, _) = frame.1.shape().dims3()?;
        let n = inverses.1.shape().dims2()?.0;
        let (img, inv) = (view(*frame)?, view(*inverses)?);
        let (fw32, fh32, n32, s32) = (u32_of(fw)?, u32_of(fh)?, u32_of(n)?, u32_of(size)?);
        let shape = Shape::from((n, 3, size, size));
        let mut crops = output(dev, shape.elem_count())?;
        let cfg = per_element(n * size * size);
        launch!(
            dev,
            "align_crops",
            cfg,
            &img,
            &fw32,
            &fh32,
            &inv,
            &mut crops,
            &n32,
            &s32
        );
        done(crops, dev, &shape)
    });
    frame
        .contiguous()?
        .apply_op2_no_bwd(&inverses.contiguous()?, &op)
}

/// `convert::blend_mask` of each learned mask `(n, 1, s, s)`, `region` the face region
/// `(s, s)`: inside the region, box-blurred twice (radius s/16) and feathered.
pub fn blend_masks(learned: &Tensor, region: &Tensor) -> Result<Tensor> {
    let op = GpuOp("benjamin-blend-masks", |i: Run<'_>| {
        let [learned, region] = i else {
            unreachable!("two inputs")
        };
        let dev = &learned.0.device;
        let (n, _, s, _) = learned.1.shape().dims4()?;
        let (l, r) = (view(*learned)?, view(*region)?);
        let (n32, s32, radius) = (u32_of(n)?, u32_of(s)?, u32_of((s / 16).max(1))?);
        let len = n * s * s;
        let (mut a, mut b) = (output(dev, len)?, output(dev, len)?);
        launch!(
            dev,
            "blend_start",
            per_element(len),
            &l,
            &r,
            &mut a,
            &n32,
            &s32
        );
        // Two box blurs, each a horizontal then a vertical pass; the last one feathers.
        for (pass, (horizontal, feather)) in
            [(1, 0), (0, 0), (1, 0), (0, 1)].into_iter().enumerate()
        {
            let (src, dst) = if pass % 2 == 0 {
                (&a, &mut b)
            } else {
                (&b, &mut a)
            };
            let (h, f): (i32, i32) = (horizontal, feather);
            launch!(
                dev,
                "box_blur",
                per_element(len),
                src,
                dst,
                &n32,
                &s32,
                &radius,
                &h,
                &f
            );
        }
        done(a, dev, learned.1.shape())
    });
    learned
        .contiguous()?
        .apply_op2_no_bwd(&region.contiguous()?, &op)
}

/// `convert::colour_match`: each painted face `(n, 3, s, s)` in 0-1 moved to its crop's Lab
/// mean and spread where its mask is strong; out as RGB 0-255 planes.
pub fn colour_match(faces: &Tensor, crops: &Tensor, masks: &Tensor) -> Result<Tensor> {
    let op = GpuOp("benjamin-colour-match", |i: Run<'_>| {
        let [faces, crops, masks] = i else {
            unreachable!("three inputs")
        };
        let dev = &faces.0.device;
        let (n, _, s, _) = faces.1.shape().dims4()?;
        let (f, c, m) = (view(*faces)?, view(*crops)?, view(*masks)?);
        let (n32, s32) = (u32_of(n)?, u32_of(s)?);
        let mut stats = dev.alloc_zeros::<f64>(n * 14)?;
        let one_block_a_face = LaunchConfig {
            grid_dim: (n32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        launch!(
            dev,
            "lab_stats",
            one_block_a_face,
            &f,
            &c,
            &m,
            &mut stats,
            &s32
        );
        let mut out = output(dev, n * 3 * s * s)?;
        launch!(
            dev,
            "lab_apply",
            per_element(n * s * s),
            &f,
            &stats,
            &mut out,
            &n32,
            &s32
        );
        done(out, dev, faces.1.shape())
    });
    faces
        .contiguous()?
        .apply_op3_no_bwd(&crops.contiguous()?, &masks.contiguous()?, &op)
}

/// An alignment's six numbers, passed to a kernel by value (`struct Map` in convert.cu).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Map([f32; 6]);

// SAFETY: six `f32`s, laid out as C lays out `struct Map { float m[6]; }`.
unsafe impl DeviceRepr for Map {}

/// `align::paste` of one face (`(3, s, s)` RGB 0-255) through its mask (`(s, s)`) into
/// `frame`, in place, over the footprint `[x0, y0, x1, y1]` (`align::footprint`);
/// `to_square` is the alignment's six numbers.
pub fn paste(
    frame: &Tensor,
    face: &Tensor,
    mask: &Tensor,
    to_square: [f32; 6],
    footprint: [usize; 4],
) -> Result<()> {
    let paste = Paste {
        to_square: Map(to_square),
        footprint,
    };
    frame.inplace_op3(&face.contiguous()?, &mask.contiguous()?, &paste)
}

struct Paste {
    to_square: Map,
    footprint: [usize; 4],
}

impl InplaceOp3 for Paste {
    fn name(&self) -> &'static str {
        "benjamin-paste"
    }

    fn cpu_fwd(
        &self,
        _: &mut CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<()> {
        gpu_only(self.name()).map(|_| ())
    }

    fn cuda_fwd(
        &self,
        dst: &mut CudaStorage,
        dst_l: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<()> {
        let dev = dst.device.clone();
        let (_, fw, _) = dst_l.shape().dims3()?;
        let s = l2.shape().dims3()?.1;
        let (face, mask) = (view((s2, l2))?, view((s3, l3))?);
        let [x0, y0, x1, y1] = self.footprint.map(u32_of);
        let (x0, y0, x1, y1) = (x0?, y0?, x1?, y1?);
        let (fw32, s32) = (u32_of(fw)?, u32_of(s)?);
        let Some((a, b)) = dst_l.contiguous_offsets() else {
            candle_core::bail!("paste: the frame is not contiguous")
        };
        let mut frame = dst.as_cuda_slice_mut::<f32>()?.slice_mut(a..b);
        let cfg = per_element(((x1 - x0) * (y1 - y0)) as usize);
        let m = &self.to_square;
        launch!(dev, "paste", cfg, &mut frame, &fw32, &face, &mask, m, &s32, &x0, &y0, &x1, &y1);
        Ok(())
    }
}
