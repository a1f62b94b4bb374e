//! Where a training step of the screenplay adapters spends its time, on one core: the forward
//! pass, the backward pass, and the frozen products alone. Not a test.
//!
//!     cargo run --release --example llama_step [ROWS]
use std::time::Instant;

use benjamin::screenplay::lm::{base, LanguageModel, ModelConfig};
use candle_core::{Device, Tensor};

fn main() -> anyhow::Result<()> {
    benjamin::nn::configure_threads(std::env::args().nth(2).as_deref() == Some("sample"));
    let rows: usize = std::env::args().nth(1).map_or(Ok(2), |a| a.parse())?;
    if std::env::args().nth(2).as_deref() == Some("sample") {
        return sample();
    }
    let base = base::locate(None)?;
    let config = ModelConfig::on_base(&base, 8, 256);
    let dev = Device::Cpu;
    let model = LanguageModel::on_base(&config, &base, &dev)?;
    let ids: Vec<u32> = (0..rows * 257)
        .map(|i| (i * 7919 % 40000) as u32 + 100)
        .collect();
    let x = Tensor::from_vec(ids[..rows * 256].to_vec(), (rows, 256), &dev)?;
    let y = Tensor::from_vec(ids[rows..rows * 257].to_vec(), (rows, 256), &dev)?;
    for round in 0..3 {
        let t0 = Instant::now();
        let loss = model.loss(&x, &y)?;
        let t1 = Instant::now();
        let grads = benjamin::nn::fused::backward(&loss)?;
        let t2 = Instant::now();
        println!(
            "round {round}: forward {:.2} s, backward {:.2} s ({} gradients), {:.0} tokens/s on one core",
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            model.varmap.all_vars().iter().filter(|v| grads.get(v).is_some()).count(),
            (rows * 256) as f64 / (t2 - t0).as_secs_f64()
        );
    }
    // The frozen products of one layer, forward and input gradient, as in a step.
    let s = &base.shape;
    let n = rows * 256;
    let h = Tensor::randn(0f32, 1.0, (n, s.width), &dev)?;
    let shapes = [
        (s.width, s.width),
        (s.kv_heads * s.head_dim(), s.width),
        (s.kv_heads * s.head_dim(), s.width),
        (s.width, s.width),
        (s.ffn, s.width),
        (s.ffn, s.width),
        (s.width, s.ffn),
    ];
    let weights: Vec<Tensor> = shapes
        .iter()
        .map(|&(o, i)| Tensor::randn(0f32, 0.02, (o, i), &dev))
        .collect::<candle_core::Result<_>>()?;
    let t0 = Instant::now();
    let mut macs = 0usize;
    for (w, &(o, i)) in weights.iter().zip(&shapes) {
        let input = if i == s.width {
            h.clone()
        } else {
            Tensor::randn(0f32, 1.0, (n, i), &dev)?
        };
        let var = candle_core::Var::from_tensor(&input)?;
        let out = benjamin::nn::frozen_linear(&var, w)?;
        let _ = out.sum_all()?.backward()?;
        macs += 2 * n * o * i;
    }
    let per_layer = t0.elapsed().as_secs_f64();
    println!(
        "one layer's frozen products, forward and input gradient: {per_layer:.3} s ({:.1} GFLOP/s); x{} layers = {:.2} s",
        2.0 * macs as f64 / per_layer / 1e9,
        s.layers,
        per_layer * s.layers as f64
    );
    Ok(())
}

/// Tokens a second of the built-in model, fed one at a time after a short prime.
fn sample() -> anyhow::Result<()> {
    let bundle = benjamin::screenplay::stage::load_model(None)?;
    let mut stepper = benjamin::screenplay::lm::Stepper::new(&bundle.model);
    stepper.push(
        &bundle
            .tokenizer
            .encode("Title: X\n\nINT. BAR - NIGHT\n\n")?,
    );
    stepper.next_logits()?;
    for round in 0..3 {
        let t0 = Instant::now();
        for i in 0..100u32 {
            stepper.push(&[1000 + i]);
            stepper.next_logits()?;
        }
        println!(
            "round {round}: {:.1} tokens/s at {} tokens",
            100.0 / t0.elapsed().as_secs_f64(),
            stepper.tokens().len()
        );
    }
    Ok(())
}
