//! Data parallelism on the CPU: a batch's forward and backward passes split into shards, one
//! per core, each on its own thread, and their gradients summed. Small models leave candle's
//! per-op threading little to share out (a 768x128 product is over before the second thread
//! wakes), while a shard is a long stretch of independent work.

use std::sync::OnceLock;

use anyhow::Result;
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};

/// One single-threaded pool per core, so that the matrix products inside a shard stay on its
/// thread rather than queueing for the shared pool.
fn pools() -> &'static [rayon::ThreadPool] {
    static POOLS: OnceLock<Vec<rayon::ThreadPool>> = OnceLock::new();
    POOLS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (0..cores)
            .filter_map(|i| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .thread_name(move |_| format!("shard-{i}"))
                    .build()
                    .ok()
            })
            .collect()
    })
}

/// The mean loss over `batch` rows and its gradients. `loss(start, len)` gives the mean loss of
/// rows `start..start + len`; on the CPU it runs once per shard, each on its own core, and the
/// shards' gradients are weighted by their share of the rows and summed.
pub fn sharded_gradients(
    device: &Device,
    batch: usize,
    loss: impl Fn(usize, usize) -> Result<Tensor> + Sync,
) -> Result<(f32, GradStore)> {
    let shards = if device.is_cpu() {
        pools().len().min(batch)
    } else {
        1
    };
    if shards <= 1 {
        let l = loss(0, batch)?;
        return Ok((l.to_scalar::<f32>()?, l.backward()?));
    }
    let run = |i: usize| -> Result<(f32, GradStore)> {
        let (start, end) = (batch * i / shards, batch * (i + 1) / shards);
        let share = (end - start) as f64 / batch as f64;
        let l = (loss(start, end - start)? * share)?;
        Ok((l.to_scalar::<f32>()?, l.backward()?))
    };
    let results: Vec<Result<(f32, GradStore)>> = std::thread::scope(|s| {
        let handles: Vec<_> = pools()[..shards]
            .iter()
            .enumerate()
            .map(|(i, pool)| {
                let run = &run;
                s.spawn(move || pool.install(|| run(i)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut total = 0.0;
    let mut grads: Option<GradStore> = None;
    for r in results {
        let (l, g) = r?;
        total += l;
        match grads.as_mut() {
            Some(all) => all.extend(g)?,
            None => grads = Some(g),
        }
    }
    Ok((total, grads.expect("at least two shards ran")))
}
