//! Parity: every CUDA kernel against its CPU kernel, values and gradients, on small shapes.
//! Compiled with the `cuda` feature; where no GPU is present each test says so and passes
//! without checking anything (the GPU check, `benches/gpu_check.sh`, runs them on one).
//! An integration test, so that its binary links no FFmpeg and travels to a GPU machine alone.
#![cfg(feature = "cuda")]

use benjamin::faces::align::{alignment, template, Affine};
use benjamin::nn::fused::{add_bias, backward, causal_softmax, gelu};
use benjamin::nn::{conv2d, Activation, ConvSpec};
use benjamin::vision::image::Planar;
use candle_core::{DType, Device, Result, Tensor, Var};

/// The goal: within 1e-4 of the CPU's largest magnitude, values and gradients alike.
const TOLERANCE: f32 = 1e-4;

fn gpu() -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("parity test skipped: no CUDA GPU here ({e})");
            None
        }
    }
}

/// The largest difference, relative to the CPU result's largest magnitude.
fn relative(gpu: &Tensor, cpu: &Tensor) -> Result<f32> {
    let scale = cpu.abs()?.max_all()?.to_scalar::<f32>()?.max(1e-6);
    let gpu = gpu.to_device(&Device::Cpu)?;
    Ok((gpu - cpu)?.abs()?.max_all()?.to_scalar::<f32>()? / scale)
}

/// The op's output and every input's gradient of `sum(output * weights)`, for fixed weights.
fn run(
    inputs: &[Tensor],
    device: &Device,
    op: &impl Fn(&[Tensor]) -> Result<Tensor>,
) -> Result<(Tensor, Vec<Tensor>)> {
    let vars = inputs
        .iter()
        .map(|t| Var::from_tensor(&t.to_device(device)?))
        .collect::<Result<Vec<_>>>()?;
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = op(&tensors)?;
    let n = out.elem_count() as u32;
    let weights = Tensor::arange(0u32, n, device)?
        .to_dtype(DType::F32)?
        .affine(0.37, 0.1)?
        .sin()?
        .reshape(out.shape())?;
    let grads = backward(&(&out * &weights)?.sum_all()?)?;
    let grads = tensors
        .iter()
        .map(|t| {
            grads
                .get(t)
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg("no gradient".into()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((out, grads))
}

/// `op` on the same inputs on the CPU and the GPU: outputs and gradients agree.
fn parity(name: &str, inputs: &[Tensor], op: impl Fn(&[Tensor]) -> Result<Tensor>) -> Result<()> {
    let Some(dev) = gpu() else { return Ok(()) };
    let (cpu_out, cpu_grads) = run(inputs, &Device::Cpu, &op)?;
    let (gpu_out, gpu_grads) = run(inputs, &dev, &op)?;
    assert_eq!(gpu_out.dims(), cpu_out.dims(), "{name}: shapes differ");
    let d = relative(&gpu_out, &cpu_out)?;
    println!("{name}: values within {d:.1e}");
    assert!(d <= TOLERANCE, "{name}: values differ by {d:e} relative");
    for (i, (g, c)) in gpu_grads.iter().zip(&cpu_grads).enumerate() {
        let d = relative(g, c)?;
        println!("{name}: gradient of input {i} within {d:.1e}");
        assert!(
            d <= TOLERANCE,
            "{name}: gradient of input {i} differs by {d:e} relative"
        );
    }
    Ok(())
}

fn randn(shape: &[usize]) -> Result<Tensor> {
    Tensor::randn(0f32, 1.0, shape, &Device::Cpu)
}

#[test]
fn gelu_and_its_gradient_match_the_cpu_kernel() -> Result<()> {
    parity("gelu", &[randn(&[7, 45])?], |t| gelu(&t[0]))
}

#[test]
fn add_bias_and_column_sum_match_the_cpu_kernels() -> Result<()> {
    parity("add_bias", &[randn(&[9, 33])?, randn(&[33])?], |t| {
        add_bias(&t[0], &t[1])
    })
}

#[test]
fn causal_softmax_and_its_gradient_match_the_cpu_kernel() -> Result<()> {
    // Five queries over seven keys (two of them past context), rows longer than a warp too.
    parity("causal_softmax", &[randn(&[2, 3, 5, 7])?], |t| {
        causal_softmax(&t[0], 0.4)
    })?;
    parity("causal_softmax long rows", &[randn(&[2, 40, 70])?], |t| {
        causal_softmax(&t[0], 0.125)
    })
}

fn spec(
    kernel: usize,
    stride: usize,
    pad: usize,
    activation: Activation,
    shuffle: bool,
) -> ConvSpec {
    ConvSpec {
        kernel,
        stride,
        pad,
        activation,
        shuffle,
    }
}

#[test]
fn convolutions_match_the_cpu_kernels_with_every_gradient() -> Result<()> {
    let leaky = Activation::Leaky(0.1);
    let cases = [
        // The encoder's 5x5 steps down, a 4x4 of ragged size, and the heads' 3x3 and 5x5.
        (spec(5, 2, 2, leaky, false), [2, 3, 16, 16], 5),
        (spec(4, 2, 1, leaky, false), [3, 4, 9, 11], 6),
        (spec(3, 1, 1, Activation::Identity, false), [2, 3, 8, 8], 4),
        (spec(5, 1, 2, Activation::Sigmoid, false), [2, 2, 6, 7], 3),
        // An upscaler: output pixel-shuffled.
        (spec(3, 1, 1, leaky, true), [2, 3, 6, 5], 8),
    ];
    for (s, x, o) in cases {
        let k = s.kernel;
        let inputs = [
            randn(&x)?,
            (randn(&[o, x[1], k, k])? * 0.3)?,
            (randn(&[o])? * 0.3)?,
        ];
        parity(&format!("conv2d {s:?} on {x:?}"), &inputs, |t| {
            conv2d(&t[0], &t[1], &t[2], s)
        })?;
    }
    Ok(())
}

#[test]
fn the_training_warps_match_the_cpu_ones() -> anyhow::Result<()> {
    use benjamin::faces::synth::{aligned_faces, Look};
    use benjamin::faces::warp::{warp_batch, Warp};
    use rand::SeedableRng;
    let Some(dev) = gpu() else { return Ok(()) };
    for size in [32, 64] {
        let faces = aligned_faces(&Look::B, 6, size, 5);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(size as u64);
        let warps: Vec<Warp> = (0..6).map(|_| Warp::draw(size, &mut rng)).collect();
        let refs: Vec<_> = faces.iter().collect();
        let cpu = warp_batch(&refs, &warps, &Device::Cpu)?;
        let gpu = warp_batch(&refs, &warps, &dev)?;
        for (name, (g, c)) in ["input", "target", "mask"].iter().zip(gpu.iter().zip(&cpu)) {
            let d = relative(g, c)?;
            println!("warp {size}px {name}: within {d:.1e}");
            assert!(
                d <= TOLERANCE,
                "warp {size}px {name}: differs by {d:e} relative"
            );
        }
    }
    Ok(())
}

/// A frame of noise with smooth gradients, RGB 0-255, and an alignment of a face in it.
fn frame_and_alignment(size: usize) -> (Planar, Affine) {
    let (frame, marks) = frame_and_landmarks(size, [30.0, 20.0]);
    (frame, alignment(&marks, size))
}

/// The frame, and the landmarks of a face whose template corner is at `at`.
fn frame_and_landmarks(size: usize, at: [f32; 2]) -> (Planar, [[f32; 2]; 5]) {
    let (w, h) = (97, 83);
    let mut frame = Planar::new(w, h, 3);
    for (i, v) in frame.data.iter_mut().enumerate() {
        let (p, c) = (i / 3, i % 3);
        *v = ((p % w) as f32 * 2.1 + (p / w) as f32 * (1.3 + c as f32) + (i % 7) as f32 * 5.0)
            % 255.0;
    }
    // The template's landmarks, scaled, turned a little and moved into the frame.
    let marks = template(size).map(|[x, y]| [at[0] + x * 0.8 + y * 0.1, at[1] + y * 0.8 - x * 0.1]);
    (frame, marks)
}

#[test]
fn the_conversion_kernels_match_the_cpu_ones() -> anyhow::Result<()> {
    use benjamin::faces::align::{face_region, footprint, paste, warp};
    use benjamin::faces::convert::{blend_mask, colour_match};
    use benjamin::faces::tensors::{from_tensor, masks_tensor, to_tensor};
    use benjamin::nn::cuda::convert as gpu;
    let Some(dev) = gpu() else { return Ok(()) };
    let check = |name: &str, g: &Tensor, c: &Tensor| -> Result<()> {
        let d = relative(g, c)?;
        println!("{name}: within {d:.1e}");
        assert!(d <= TOLERANCE, "{name}: differs by {d:e} relative");
        Ok(())
    };
    let s = 32;
    let (frame, map) = frame_and_alignment(s);
    let on_gpu = Tensor::from_slice(&frame.data, (frame.height, frame.width, 3), &dev)?;
    // The alignment warp.
    let crop = warp(&frame, &map, s);
    let inverse = Tensor::new(&[map.inverse().0], &dev)?;
    let crops = gpu::align_crops(&on_gpu, &inverse, s)?;
    check("align_crops", &crops, &to_tensor(&[&crop], &Device::Cpu)?)?;
    // The blending mask from a learned one.
    let learned = Tensor::rand(0f32, 1.0, (1, 1, s, s), &Device::Cpu)?;
    let region = Tensor::from_vec(face_region(s).data, (s, s), &dev)?;
    let masks = gpu::blend_masks(&learned.to_device(&dev)?, &region)?;
    let mask = blend_mask(&from_tensor(&learned, 0)?);
    check(
        "blend_masks",
        &masks,
        &masks_tensor(&[&mask], &Device::Cpu)?,
    )?;
    // The colour match of a painted face to its crop.
    let painted = Tensor::rand(0f32, 1.0, (1, 3, s, s), &Device::Cpu)?;
    let matched = gpu::colour_match(&painted.to_device(&dev)?, &crops, &masks)?;
    let mut face = from_tensor(&painted, 0)?;
    colour_match(&mut face, &crop, &mask);
    check(
        "colour_match",
        &(&matched / 255.0)?,
        &to_tensor(&[&face], &Device::Cpu)?,
    )?;
    // The feathered paste, on the same face and mask on both sides.
    let mut pasted = frame.clone();
    paste(&mut pasted, &face, &mask, &map);
    let face_gpu = (to_tensor(&[&face], &dev)?.get(0)? * 255.0)?;
    let fp = footprint(&map, s, frame.width, frame.height).expect("the face is in the frame");
    gpu::paste(
        &on_gpu,
        &face_gpu,
        &masks_tensor(&[&mask], &dev)?.get(0)?,
        map.0,
        fp,
    )?;
    let want = Tensor::from_slice(&pasted.data, (frame.height, frame.width, 3), &Device::Cpu)?;
    Ok(check("paste", &on_gpu, &want)?)
}

#[test]
fn layer_norm_and_its_gradients_match_the_cpu_kernel() -> Result<()> {
    let inputs = [
        randn(&[5, 3, 70])?,
        ((randn(&[70])? * 0.5)? + 1.0)?,
        (randn(&[70])? * 0.5)?,
    ];
    parity("layer_norm", &inputs, |t| {
        benjamin::nn::normalize(&t[0], &t[1], &t[2], 1e-5)
    })
}

#[test]
fn cross_entropy_and_its_gradient_match_the_cpu_kernel() -> Result<()> {
    use benjamin::nn::loss::cross_entropy;
    let ids: Vec<u32> = (0..37u32).map(|i| (i * 29) % 90).collect();
    parity("cross_entropy", &[randn(&[37, 90])?], |t| {
        cross_entropy(&t[0], &Tensor::new(ids.as_slice(), t[0].device())?)
    })
}

#[test]
fn the_discriminators_loss_matches_the_cpu_kernel() -> Result<()> {
    use benjamin::nn::loss::least_squares;
    for target in [0.0, 1.0] {
        parity(
            &format!("least_squares to {target}"),
            &[randn(&[8, 1, 6, 6])?],
            |t| least_squares(&t[0], target),
        )?;
    }
    Ok(())
}

#[test]
fn a_whole_frame_swaps_alike_on_both_devices() -> anyhow::Result<()> {
    use benjamin::faces::convert::{swap_frame, Replacement};
    use benjamin::faces::model::{ModelConfig, SwapModel};
    let Some(dev) = gpu() else { return Ok(()) };
    let config = ModelConfig {
        resolution: 32,
        width: 8,
        latent: 32,
        identities: vec!["a".into(), "b".into()],
    };
    let on_cpu = SwapModel::new(&config, &Device::Cpu)?;
    let on_gpu = SwapModel::new(&config, &dev)?;
    // The same (random) weights on both.
    let weights = on_cpu.varmap.data().lock().unwrap().clone();
    for (name, var) in on_gpu.varmap.data().lock().unwrap().iter() {
        var.set(&weights[name].as_tensor().to_device(&dev)?)?;
    }
    // Two faces of two identities, overlapping a little: pasted in order on both devices.
    let (frame, first) = frame_and_landmarks(32, [8.0, 10.0]);
    let (_, second) = frame_and_landmarks(32, [40.0, 30.0]);
    let faces = [
        Replacement {
            landmarks: first,
            identity: 1,
        },
        Replacement {
            landmarks: second,
            identity: 0,
        },
    ];
    let (mut a, mut b) = (frame.clone(), frame);
    swap_frame(&mut a, &faces, &on_cpu)?;
    swap_frame(&mut b, &faces, &on_gpu)?;
    let shape = (a.height, a.width, 3);
    let (a, b) = (
        Tensor::from_vec(a.data, shape, &Device::Cpu)?,
        Tensor::from_vec(b.data, shape, &Device::Cpu)?,
    );
    let d = relative(&b, &a)?;
    println!("swap_frame: within {d:.1e}");
    assert!(d <= TOLERANCE, "swap_frame: differs by {d:e} relative");
    Ok(())
}
