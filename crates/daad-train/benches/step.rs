//! Criterion: one DAAD training step (batch 8) on CPU at 64 and 128 px (256 px: see the
//! `step_vs_torch` example, which also times the PyTorch port in the same run).

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use daad_model::{DaadModel, Variant};
use daad_train::{preset_configs, Preset, Trainer};

fn step(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    for size in [64usize, 128] {
        let (mut model_cfg, train_cfg) = preset_configs(Preset::Paper, Variant::Daad);
        model_cfg.image_size = size;
        let model = DaadModel::new(&model_cfg, 0, &Device::Cpu).expect("model");
        let mut trainer = Trainer::new(model, &train_cfg).expect("trainer");
        let x = Tensor::rand(-1f32, 1f32, (8, 3, size, size), &Device::Cpu).expect("x");
        group.bench_function(format!("cpu_daad_b8_{size}px"), |b| {
            b.iter(|| trainer.step(&x).expect("step").expect("finite"))
        });
    }
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
