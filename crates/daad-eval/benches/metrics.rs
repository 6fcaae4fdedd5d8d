//! Metric timings at MVTec AD scale on synthetic data: image AUROC on 1,700 scores, pixel AUROC
//! and AUPRO on 1,700 maps of 256x256 (1.1e8 pixels), anomaly-map post-processing per image.
//!
//! `DAAD_BENCH_IMAGES=N` changes the number of maps (default 1,700).
//! Run: `CARGO_TARGET_DIR=/work/target-bench cargo bench -p daad-eval --bench metrics`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use daad_eval::{
    aupro, image_auroc, pixel_auroc, AnomalyMap, AnomalyMapConfig, Connectivity, Mask,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

const SIDE: usize = 256;

fn n_images() -> usize {
    std::env::var("DAAD_BENCH_IMAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(1700)
}

/// One synthetic map and mask: uniform noise, and on 2 of 3 images an elliptic defect
/// (about 3 % of the pixels) scoring higher on average.
fn synth(i: usize) -> (AnomalyMap, Mask) {
    let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
    let mut mask = Mask::empty(SIDE, SIDE);
    if i % 3 != 0 {
        let (cx, cy) = (rng.random_range(30.0..226.0), rng.random_range(30.0..226.0));
        let (rx, ry) = (rng.random_range(10.0..30.0f64), rng.random_range(10.0..30.0f64));
        for y in 0..SIDE {
            for x in 0..SIDE {
                let (dx, dy) = ((x as f64 - cx) / rx, (y as f64 - cy) / ry);
                mask.data[y * SIDE + x] = dx * dx + dy * dy <= 1.0;
            }
        }
    }
    let data = mask.data.iter().map(|&m| rng.random::<f32>() + if m { 0.5 } else { 0.0 }).collect();
    (AnomalyMap::new(SIDE, SIDE, data).unwrap(), mask)
}

fn bench(c: &mut Criterion) {
    let n = n_images();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let labels: Vec<bool> = (0..n).map(|i| i % 3 != 0).collect();
    let scores: Vec<f64> =
        labels.iter().map(|&l| rng.random::<f64>() + if l { 0.3 } else { 0.0 }).collect();
    let mut g = c.benchmark_group("image");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("cpu_image_auroc", n), |b| {
        b.iter(|| image_auroc(&scores, &labels).unwrap())
    });
    g.finish();

    let (maps, masks): (Vec<AnomalyMap>, Vec<Mask>) = (0..n).into_par_iter().map(synth).unzip();
    let (mr, kr): (Vec<&AnomalyMap>, Vec<&Mask>) = (maps.iter().collect(), masks.iter().collect());
    let mut g = c.benchmark_group("pixel");
    g.sample_size(10);
    g.throughput(Throughput::Elements((n * SIDE * SIDE) as u64));
    // Baseline for ratios on a shared machine: one parallel pass reading every map and mask.
    g.bench_function(BenchmarkId::new("cpu_baseline_one_pass", n), |b| {
        b.iter(|| {
            mr.par_iter()
                .zip(kr.par_iter())
                .map(|(m, k)| {
                    m.data.iter().zip(&k.data).map(|(&v, &b)| if b { v } else { -v }).sum::<f32>()
                })
                .sum::<f32>()
        })
    });
    g.bench_function(BenchmarkId::new("cpu_pixel_auroc", n), |b| {
        b.iter(|| pixel_auroc(&mr, &kr).unwrap())
    });
    g.bench_function(BenchmarkId::new("cpu_aupro", n), |b| {
        b.iter(|| aupro(&mr, &kr, 0.3, Connectivity::Eight).unwrap())
    });
    g.finish();

    let cfg = AnomalyMapConfig::default();
    let mut g = c.benchmark_group("map");
    g.throughput(Throughput::Elements(1));
    g.bench_function("cpu_smooth_256_sigma4", |b| b.iter(|| maps[0].postprocess(&cfg, None)));
    g.bench_function("cpu_smooth_and_upsample_to_1024", |b| {
        b.iter(|| maps[0].postprocess(&cfg, Some((1024, 1024))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
