//! Training pieces every model of benjamin's shares: AdamW with a state that can be saved, the
//! learning-rate schedule, gradient clipping and checkpoints that resume exactly.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;

mod adamw;
pub mod attention;
mod conv;
mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod fused;
mod gemm;
mod head_loss;
mod layer_norm;
mod linear;
pub mod llama_kernels;
pub mod loss;
mod parallel;

pub use adamw::AdamW;
pub use conv::{conv2d, Activation, ConvSpec};
pub use head_loss::head_cross_entropy;
pub use layer_norm::{layer_norm, normalize, LayerNorm};
pub use linear::{frozen_linear, linear, Linear};
pub use parallel::{on_cores, sharded_gradients};

/// Linear warm-up to `max_lr`, then cosine decay to `min_lr` at `total` steps.
pub fn cosine_lr(step: usize, warmup: usize, total: usize, max_lr: f64, min_lr: f64) -> f64 {
    if step < warmup {
        return max_lr * (step + 1) as f64 / warmup as f64;
    }
    if step >= total {
        return min_lr;
    }
    let progress = (step - warmup) as f64 / (total - warmup).max(1) as f64;
    min_lr + 0.5 * (max_lr - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Saves named tensors as safetensors, atomically.
pub fn save_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let file = crate::fsutil::AtomicFile::new(path)?;
    let cpu: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.to_device(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    candle_core::safetensors::save(&cpu, file.path())
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.commit()
}

/// The variables of `varmap` as named tensors.
pub fn var_tensors(varmap: &VarMap) -> HashMap<String, Tensor> {
    varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect()
}

/// Loads weights into `varmap`, naming the file when it is damaged or does not fit the model.
pub fn load_weights(varmap: &VarMap, bytes: &[u8], origin: &str) -> Result<()> {
    let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
        .with_context(|| format!("{origin} is not a readable safetensors file (truncated or damaged?); retrain or restore it"))?;
    let data = varmap.data().lock().unwrap();
    for (name, var) in data.iter() {
        let t = tensors.get(name).with_context(|| {
            format!("{origin} lacks the weight {name}: it was made for another model")
        })?;
        if t.dims() != var.dims() {
            bail!(
                "{origin}: weight {name} has shape {:?}, the model expects {:?}",
                t.dims(),
                var.dims()
            );
        }
        var.set(&t.to_device(var.device())?.to_dtype(DType::F32)?)?;
    }
    Ok(())
}

/// Sets how candle uses the cores and memory; call first thing in `main`, before any thread exists.
/// Training spreads over the cores by batch shards ([`sharded_gradients`]), and matrix
/// products keep rayon's threads. Without `RAYON_NUM_THREADS` candle counts the cores
/// (reading /proc/cpuinfo) on every product. candle's own pool (`CANDLE_NUM_THREADS`) serves
/// its 8-bit products and (de)quantization, and its workers spin while they wait: with it on
/// both cores, the screenplay adapters trained at 82 tokens/s against 112 with it off. So it
/// is off unless `sampling_only` (a process that trains nothing, like `benjamin write`, where
/// it samples 1.8x faster). A user's own settings of either are kept.
pub fn configure_threads(sampling_only: bool) {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() && !sampling_only {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", cores.to_string());
    }
    keep_freed_memory();
}

/// Tells glibc's allocator to keep freed memory for reuse. Training allocates and frees
/// tensors of megabytes every step; by default each is a fresh `mmap` whose pages fault in
/// one by one and go back to the system when freed, and the faults took a third of a
/// convolution's backward pass. A user's own `MALLOC_*` settings are kept.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::vars_os().all(|(k, _)| !k.to_string_lossy().starts_with("MALLOC_")) {
        // SAFETY: mallopt only sets allocator parameters; called before other threads exist.
        unsafe {
            // 32 MiB is glibc's largest mmap threshold.
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        }
    }
}

/// The device models run on: the first CUDA GPU with the `cuda` feature, else the CPU.
pub fn device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return d;
    }
    Device::Cpu
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        assert!(cosine_lr(0, 10, 100, 1e-3, 1e-4) < cosine_lr(9, 10, 100, 1e-3, 1e-4));
        assert!((cosine_lr(9, 10, 100, 1e-3, 1e-4) - 1e-3).abs() < 1e-12);
        assert!(cosine_lr(50, 10, 100, 1e-3, 1e-4) < 1e-3);
        assert!((cosine_lr(100, 10, 100, 1e-3, 1e-4) - 1e-4).abs() < 1e-12);
    }

    #[test]
    fn adamw_minimises_a_quadratic_and_clips() -> Result<()> {
        let varmap = VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let w = vb.get_with_hints((2, 2), "w", candle_nn::Init::Const(3.0))?;
        let mut opt = AdamW::new(&varmap, 0.0)?;
        let first = w.sqr()?.sum_all()?.to_scalar::<f32>()?;
        for _ in 0..200 {
            let w = varmap.data().lock().unwrap()["w"].as_tensor().clone();
            let loss = w.sqr()?.sum_all()?;
            let norm = opt.backward_step(&loss, 0.05, 1.0)?;
            assert!(norm.is_finite());
        }
        let w = varmap.data().lock().unwrap()["w"].as_tensor().clone();
        let last = w.sqr()?.sum_all()?.to_scalar::<f32>()?;
        assert!(last < first * 0.01, "{first} -> {last}");
        Ok(())
    }
}
