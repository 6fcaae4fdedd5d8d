//! Preprocessed images per second: decoding + resizing PNGs vs reading the safetensors cache.
//!
//! Input: 32 synthetic 256x256 PNGs (the `cap` category) resized to 256 and to 128.
//! Run: `cargo bench -p daad-data --bench preprocess`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use daad_data::{mvtec, synth, Preprocess};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = synth::SynthConfig {
        categories: vec!["cap".into()],
        size: 256,
        seed: 1,
        n_train: 32,
        n_test_good: 1,
        n_test_defect: 0,
    };
    synth::generate(dir.path(), &cfg).expect("synth");
    let paths = mvtec::index_category(dir.path(), "cap").expect("index").train_paths();
    let mut g = c.benchmark_group("preprocess");
    g.throughput(Throughput::Elements(paths.len() as u64));
    g.sample_size(20);
    for size in [256usize, 128] {
        let pre = Preprocess::new(size);
        g.bench_function(format!("decode_png_{size}"), |b| {
            b.iter(|| pre.load_images(&paths, None).expect("load"))
        });
        let cache = dir.path().join(format!("cache{size}"));
        pre.load_images(&paths, Some(&cache)).expect("warm cache");
        g.bench_function(format!("cached_{size}"), |b| {
            b.iter(|| pre.load_images(&paths, Some(&cache)).expect("load"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
