//! Training pieces every model of benjamin's shares: AdamW with a state that can be saved, the
//! learning-rate schedule, gradient clipping and checkpoints that resume exactly.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;

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

/// AdamW (decoupled weight decay on matrices only), with moments kept by parameter name so a
/// checkpoint can carry them and a resumed run takes the very same next steps.
pub struct AdamW {
    params: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    pub step: usize,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamW {
    pub fn new(varmap: &VarMap, weight_decay: f64) -> Result<Self> {
        let mut params: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let m = params
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let v = params
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(AdamW {
            params,
            m,
            v,
            step: 0,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay,
        })
    }

    /// Number of trainable values.
    pub fn parameter_count(&self) -> usize {
        self.params.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Backpropagates `loss`, clips the global gradient norm to `max_norm` and updates the
    /// parameters at learning rate `lr`. Returns the gradient norm before clipping.
    pub fn backward_step(&mut self, loss: &Tensor, lr: f64, max_norm: f64) -> Result<f32> {
        let grads = loss.backward()?;
        self.apply(&grads, lr, max_norm)
    }

    fn apply(&mut self, grads: &GradStore, lr: f64, max_norm: f64) -> Result<f32> {
        let mut sq = 0f32;
        for (_, var) in &self.params {
            if let Some(g) = grads.get(var.as_tensor()) {
                sq += g.sqr()?.sum_all()?.to_scalar::<f32>()?;
            }
        }
        let norm = sq.sqrt();
        if !norm.is_finite() {
            bail!("training diverged: the gradient is not finite (try a lower learning rate)");
        }
        let clip = if norm > max_norm as f32 {
            max_norm / norm as f64
        } else {
            1.0
        };
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (self.beta1, self.beta2);
        let c1 = 1.0 - b1.powi(t);
        let c2 = 1.0 - b2.powi(t);
        for (i, (_, var)) in self.params.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let g = (g * clip)?;
            let m = ((&self.m[i] * b1)? + (&g * (1.0 - b1))?)?;
            let v = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + self.eps)?)?;
            let mut next = var.as_tensor().clone();
            if self.weight_decay > 0.0 && var.rank() >= 2 {
                next = (next * (1.0 - lr * self.weight_decay))?;
            }
            var.set(&(next - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(norm)
    }

    /// The moments and step, as named tensors for a checkpoint.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.insert(format!("m.{name}"), self.m[i].clone());
            out.insert(format!("v.{name}"), self.v[i].clone());
        }
        out.insert(
            "step".into(),
            Tensor::new(&[self.step as f32], &Device::Cpu)?,
        );
        Ok(out)
    }

    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        for (i, (name, var)) in self.params.iter().enumerate() {
            let m = state
                .get(&format!("m.{name}"))
                .with_context(|| format!("optimizer state lacks {name}"))?;
            let v = state
                .get(&format!("v.{name}"))
                .with_context(|| format!("optimizer state lacks {name}"))?;
            self.m[i] = m.to_device(var.device())?.to_dtype(var.dtype())?;
            self.v[i] = v.to_device(var.device())?.to_dtype(var.dtype())?;
        }
        let step = state
            .get("step")
            .context("optimizer state lacks its step")?;
        self.step = step.to_vec1::<f32>()?[0] as usize;
        Ok(())
    }
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

/// Layer normalisation that trains. candle-nn's own `LayerNorm` and `softmax_last_dim` run
/// fused kernels that record no backward pass (`apply_op*_no_bwd`): gradients silently stop
/// there. This one is built from differentiable ops.
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

pub fn layer_norm(size: usize, vb: candle_nn::VarBuilder) -> candle_core::Result<LayerNorm> {
    Ok(LayerNorm {
        weight: vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?,
        bias: vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?,
        eps: 1e-5,
    })
}

impl candle_core::Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::layer_norm_slow(x, &self.weight, &self.bias, self.eps)
    }
}

/// Softmax over the last dimension that trains (see [`LayerNorm`]).
pub fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::ops::softmax(x, candle_core::D::Minus1)
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
