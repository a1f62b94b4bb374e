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
        // RAYON_NUM_THREADS caps them, as it caps candle's matrix products.
        let cores = std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
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

/// The cores that shards and [`on_cores`] spread work over.
pub fn cores() -> usize {
    pools().len().max(1)
}

/// The mean losses over `batch` rows and the gradients of each. `losses(start, len)` gives the
/// mean losses of rows `start..start + len` (several when they train different parameters,
/// like a generator's and a discriminator's); on the CPU it runs once per shard, each on its
/// own core, and the shards' gradients are weighted by their share of the rows and summed.
pub fn sharded_gradients<const N: usize>(
    device: &Device,
    batch: usize,
    losses: impl Fn(usize, usize) -> Result<[Tensor; N]> + Sync,
) -> Result<[(f32, GradStore); N]> {
    let shards = if device.is_cpu() {
        pools().len().min(batch)
    } else {
        1
    };
    let run = |i: usize| -> Result<Vec<(f32, GradStore)>> {
        let (start, end) = (batch * i / shards, batch * (i + 1) / shards);
        let share = (end - start) as f64 / batch as f64;
        losses(start, end - start)?
            .iter()
            .map(|l| {
                let l = (l * share)?;
                Ok((l.to_scalar::<f32>()?, super::fused::backward(&l)?))
            })
            .collect()
    };
    let results = if shards <= 1 {
        vec![run(0)?]
    } else {
        on_cores(shards, run)?
    };
    // Loss k's gradients from every shard, summed parameter by parameter over the cores.
    let mut by_loss: Vec<Vec<(f32, GradStore)>> = (0..N).map(|_| Vec::new()).collect();
    for shard in results {
        if shard.len() != N {
            anyhow::bail!("a shard returned the wrong number of losses");
        }
        for (k, lg) in shard.into_iter().enumerate() {
            by_loss[k].push(lg);
        }
    }
    let mut merged: Vec<(f32, GradStore)> = Vec::with_capacity(N);
    for shards in by_loss {
        let total: f32 = shards.iter().map(|(l, _)| l).sum();
        let mut stores: Vec<GradStore> = shards.into_iter().map(|(_, g)| g).collect();
        let mut base = stores.remove(0);
        if !stores.is_empty() {
            let mut ids: Vec<_> = base.get_ids().copied().collect();
            for s in &stores {
                for id in s.get_ids() {
                    if !ids.contains(id) {
                        ids.push(*id);
                    }
                }
            }
            let sums = on_cores(ids.len(), |i| {
                let mut parts = std::iter::once(&base)
                    .chain(&stores)
                    .filter_map(|s| s.get_id(ids[i]));
                let first = parts.next().expect("the id came from a store").clone();
                parts
                    .try_fold(first, |acc, g| acc.add(g))
                    .map_err(anyhow::Error::from)
            })?;
            for (id, sum) in ids.into_iter().zip(sums) {
                base.insert_id(id, sum);
            }
        }
        merged.push((total, base));
    }
    merged
        .try_into()
        .map_err(|_| anyhow::anyhow!("a shard returned the wrong number of losses"))
}

/// `f(0..n)` spread over the cores (index `i` on core `i % cores`), results in index order.
/// On a one-core machine it runs on the calling thread.
pub fn on_cores<T: Send>(n: usize, f: impl Fn(usize) -> Result<T> + Sync) -> Result<Vec<T>> {
    let pools = pools();
    if pools.len() <= 1 || n <= 1 {
        return (0..n).map(f).collect();
    }
    // One caller at a time (tests train side by side): a pool thread blocked in a product
    // may run another caller's queued job in the middle of its own. Not re-entrant: `f`
    // must not call `on_cores` itself.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let used = pools.len().min(n);
    let f = &f;
    let per_core: Vec<Vec<(usize, Result<T>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = pools[..used]
            .iter()
            .enumerate()
            .map(|(core, pool)| {
                s.spawn(move || {
                    pool.install(|| {
                        (core..n)
                            .step_by(used)
                            .map(|i| (i, f(i)))
                            .collect::<Vec<_>>()
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut all: Vec<(usize, Result<T>)> = per_core.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}
