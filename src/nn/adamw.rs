//! AdamW with a state that can be saved. On the CPU each parameter is updated in place by two
//! small kernels; elsewhere by candle's ops.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, Device, InplaceOp2, InplaceOp3, Layout, Tensor, Var};
use candle_nn::VarMap;

use super::fused::{on_cpu, simd, values};

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
        let grads = super::fused::backward(loss)?;
        self.apply(&grads, lr, max_norm)
    }

    /// Updates the parameters from gradients computed elsewhere (e.g. [`super::sharded_gradients`]).
    pub fn apply(&mut self, grads: &GradStore, lr: f64, max_norm: f64) -> Result<f32> {
        let on_cpu_all = self.params.iter().all(|(_, v)| on_cpu(v));
        // On the CPU the parameters are shared out over the cores, in groups of about equal
        // size: the update is a few passes over memory per parameter, and a big model's
        // would otherwise leave the other cores idle between batches.
        let groups = if on_cpu_all {
            balanced_groups(&self.params, super::parallel::cores())
        } else {
            vec![(0..self.params.len()).collect()]
        };
        let sq: f32 = super::on_cores(groups.len(), |gi| {
            let mut sq = 0f32;
            for &i in &groups[gi] {
                if let Some(g) = grads.get(self.params[i].1.as_tensor()) {
                    sq += square_sum(g)?;
                }
            }
            Ok(sq)
        })?
        .into_iter()
        .sum();
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
        if on_cpu_all {
            let this = &*self;
            super::on_cores(groups.len(), |gi| {
                for &i in &groups[gi] {
                    if let Some(g) = grads.get(this.params[i].1.as_tensor()) {
                        this.update_in_place(i, g, clip, lr, (c1, c2))?;
                    }
                }
                Ok(())
            })?;
            return Ok(norm);
        }
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

    /// Parameter `i`'s step on the CPU, in place: one pass per tensor, nothing allocated.
    fn update_in_place(
        &self,
        i: usize,
        g: &Tensor,
        clip: f64,
        lr: f64,
        (c1, c2): (f64, f64),
    ) -> Result<()> {
        let var = &self.params[i].1;
        for (moment, beta, square) in [
            (&self.m[i], self.beta1, false),
            (&self.v[i], self.beta2, true),
        ] {
            moment.inplace_op2(
                g,
                &Moment {
                    beta,
                    scale: clip,
                    square,
                },
            )?;
        }
        let decay = if var.rank() >= 2 {
            lr * self.weight_decay
        } else {
            0.0
        };
        let step = Step {
            lr,
            c1,
            c2,
            eps: self.eps,
            decay,
        };
        var.as_tensor().inplace_op3(&self.m[i], &self.v[i], &step)?;
        Ok(())
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

/// Sum of squares of a gradient's values.
/// Parameter indices in `n` groups of about equal total size (largest first, each to the
/// lightest group so far).
fn balanced_groups(params: &[(String, Var)], n: usize) -> Vec<Vec<usize>> {
    let n = n.clamp(1, params.len().max(1));
    let mut order: Vec<usize> = (0..params.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(params[i].1.elem_count()));
    let mut groups = vec![(0usize, Vec::new()); n];
    for i in order {
        let lightest = groups
            .iter_mut()
            .min_by_key(|(size, _)| *size)
            .expect("at least one group");
        lightest.0 += params[i].1.elem_count();
        lightest.1.push(i);
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

fn square_sum(g: &Tensor) -> candle_core::Result<f32> {
    if !on_cpu(g) || !g.is_contiguous() {
        return g.sqr()?.sum_all()?.to_scalar::<f32>();
    }
    let (storage, layout) = g.storage_and_layout();
    let candle_core::Storage::Cpu(s) = &*storage else {
        unreachable!("on_cpu checked the device")
    };
    let v = values::<f32>(s, layout)?;
    Ok(simd(|| super::fused::lane_sum(v, |x| x * x)))
}

/// The mutable, contiguous values of a CPU tensor's storage.
fn values_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> candle_core::Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => candle_core::bail!("the optimizer updates contiguous f32 tensors"),
    }
}

/// A moving average of the (clipped) gradient, or of its square: `m = beta m + (1 - beta) g`.
struct Moment {
    beta: f64,
    scale: f64,
    square: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (m, g) = (values_mut(s1, l1)?, values::<f32>(s2, l2)?);
        let (beta, rest, scale) = (
            self.beta as f32,
            (1.0 - self.beta) as f32,
            self.scale as f32,
        );
        simd(|| {
            for (m, &g) in m.iter_mut().zip(g) {
                let g = g * scale;
                *m = beta * *m + rest * if self.square { g * g } else { g };
            }
        });
        Ok(())
    }
}

/// `p -= lr (m / c1) / (sqrt(v / c2) + eps) + decay p`.
struct Step {
    lr: f64,
    c1: f64,
    c2: f64,
    eps: f64,
    decay: f64,
}

impl InplaceOp3 for Step {
    fn name(&self) -> &'static str {
        "adamw-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<()> {
        let p = values_mut(s1, l1)?;
        let (m, v) = (values::<f32>(s2, l2)?, values::<f32>(s3, l3)?);
        let (lr, keep) = (self.lr as f32, (1.0 - self.decay) as f32);
        let (c1, c2, eps) = (1.0 / self.c1 as f32, 1.0 / self.c2 as f32, self.eps as f32);
        simd(|| {
            for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
                *p = *p * keep - lr * (m * c1) / ((v * c2).sqrt() + eps);
            }
        });
        Ok(())
    }
}
