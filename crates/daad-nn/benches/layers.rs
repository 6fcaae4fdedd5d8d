//! Each layer's forward + backward at the UNet autoencoder's shapes (batch 8, 64 px input),
//! daad-nn's custom op against candle's own op, measured in the same run.
//!
//! `CARGO_TARGET_DIR=/work/target-bench cargo bench -p daad-nn --bench layers`

use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use daad_nn::ops::{candle_conv2d, candle_conv_transpose2d, conv2d, conv_transpose2d};
use daad_nn::{Conv2dConfig, ConvTranspose2dConfig};
use std::hint::black_box;
use std::time::Duration;

const DOWN: Conv2dConfig = Conv2dConfig { padding: 1, stride: 2, dilation: 1 };
const UP: ConvTranspose2dConfig =
    ConvTranspose2dConfig { padding: 1, output_padding: 0, stride: 2, dilation: 1 };

fn var(shape: &[usize]) -> Var {
    Var::from_tensor(&Tensor::rand(-1f32, 1., shape, &Device::Cpu).unwrap()).unwrap()
}

/// Forward, then backward of sum(y) (gradients for input and weight).
fn fwd_bwd(y: candle_core::Result<Tensor>) {
    let g = y.unwrap().sum_all().unwrap().backward().unwrap();
    black_box(g);
}

fn layers(c: &mut Criterion) {
    let b = 8;
    let mut group = c.benchmark_group("conv2d_fwd_bwd_b8");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (cin, cout, s) in [(3, 64, 64), (64, 128, 32), (128, 256, 16), (256, 512, 8)] {
        let x = var(&[b, cin, s, s]);
        let w = var(&[cout, cin, 4, 4]);
        let id = format!("{cin}->{cout}@{s}");
        group.bench_function(format!("daad-nn/{id}"), |bch| {
            bch.iter(|| fwd_bwd(conv2d(&x, &w, None, DOWN)))
        });
        group.bench_function(format!("candle/{id}"), |bch| {
            bch.iter(|| fwd_bwd(candle_conv2d(&x, &w, None, DOWN)))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("conv_transpose2d_fwd_bwd_b8");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (cin, cout, s) in [(512, 256, 4), (512, 128, 8), (256, 64, 16), (128, 3, 32)] {
        let x = var(&[b, cin, s, s]);
        let w = var(&[cin, cout, 4, 4]);
        let id = format!("{cin}->{cout}@{s}");
        group.bench_function(format!("daad-nn/{id}"), |bch| {
            bch.iter(|| fwd_bwd(conv_transpose2d(&x, &w, None, UP)))
        });
        group.bench_function(format!("candle/{id}"), |bch| {
            bch.iter(|| fwd_bwd(candle_conv_transpose2d(&x, &w, None, UP)))
        });
    }
    group.finish();
}

criterion_group!(benches, layers);
criterion_main!(benches);
