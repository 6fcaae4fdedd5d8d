//! The whole UNet autoencoder training step (batch 8) built from daad-nn's layers, against the
//! same model on candle's own ops, measured in the same run. PyTorch's number comes from
//! `scripts/bench_step.sh` (same model in `scripts/torch_step.py`).
//!
//! `CARGO_TARGET_DIR=/work/target-bench cargo bench -p daad-nn --bench train_step`

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
#[path = "support/unet.rs"]
#[allow(dead_code)]
mod unet;

use std::time::Duration;
use unet::{Impl, Trainer};

fn train_step(c: &mut Criterion) {
    let dev = Device::Cpu;
    let mut group = c.benchmark_group("unet_ae_train_step_b8");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for size in [64usize, 128, 256] {
        let x = Tensor::rand(-1f32, 1., (8, 3, size, size), &dev).unwrap();
        // candle's own ops take tens of seconds per step at 256 px: only compared up to 128 px.
        let imps: &[Impl] = if size <= 128 { &[Impl::Fast, Impl::Candle] } else { &[Impl::Fast] };
        for &imp in imps {
            let mut tr = Trainer::new(imp, &dev).unwrap();
            let name = if imp == Impl::Fast { "daad-nn" } else { "candle" };
            group.bench_function(format!("{name}/{size}px"), |b| b.iter(|| tr.step(&x).unwrap()));
        }
    }
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
