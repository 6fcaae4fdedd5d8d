//! Measures the synthetic set: the time to write it, and three model-free baselines per
//! category, to show that the defects are neither trivial (no baseline at image AUROC 1.0) nor
//! invisible (some baseline well above 0.5).
//!
//! ```text
//! cargo run --release -p daad-data --example synth_baseline -- [--size 256] [--all] [--seed 0]
//! ```
//! `--all` adds the Perlin categories to the classic default set; `--categories a,b` picks
//! some; `--out DIR` keeps the images. Baselines (image AUROC, see `baselines.rs`):
//! - `mean-diff`: mean over pixels of (x - mean of the training images)^2 (global);
//! - `z-max`: the largest 3x3-averaged per-pixel z-score against the training images' per-pixel
//!   mean and standard deviation (local, so it sees small defects on aligned objects);
//! - `block-NN`: the largest distance of an (s/8)-pixel block's colour and contrast to the
//!   nearest training block anywhere (position-free, so it sees defects in textures).

mod baselines;

use std::path::Path;
use std::time::Instant;

use daad_data::{mvtec, synth, Preprocess};

/// Image AUROC of the three baselines for one category: (mean-diff, z-max, block-NN).
fn measure(root: &Path, cat: &str, size: usize) -> (f64, f64, f64) {
    let idx = mvtec::index_category(root, cat).unwrap();
    let pre = Preprocess::new(size);
    let flat = |t: candle_core::Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
    let train = flat(pre.load_images(&idx.train_paths(), None).unwrap());
    let test = flat(pre.load_images(&idx.test_paths(), None).unwrap());
    let labels: Vec<bool> = idx.test.iter().map(|s| s.label.is_anomalous()).collect();
    let a = |scores: Vec<f32>| baselines::auroc(&scores, &labels);
    (
        a(baselines::mean_diff(&train, &test, size)),
        a(baselines::z_max(&train, &test, size)),
        a(baselines::block_nn(&train, &test, size)),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1));
    let mut cfg = synth::SynthConfig::default();
    if let Some(s) = get("--size") {
        cfg.size = s.parse().expect("--size N");
    }
    if let Some(s) = get("--seed") {
        cfg.seed = s.parse().expect("--seed N");
    }
    if args.iter().any(|a| a == "--all") {
        cfg.categories = synth::ALL_CATEGORIES.iter().map(|s| s.to_string()).collect();
    }
    if let Some(c) = get("--categories") {
        cfg.categories = c.split(',').map(str::to_string).collect();
    }
    // --out keeps the images (to look at them); by default they go to a temporary folder.
    let tmp = tempfile::tempdir().unwrap();
    let root = get("--out").map(std::path::PathBuf::from).unwrap_or_else(|| tmp.path().into());
    let t = Instant::now();
    synth::generate(&root, &cfg).unwrap();
    println!(
        "generated {} images ({} categories, {} px, {} train / {} good / {} defect each) in {:.1} s",
        cfg.total_images(),
        cfg.categories.len(),
        cfg.size,
        cfg.n_train,
        cfg.n_test_good,
        cfg.n_test_defect,
        t.elapsed().as_secs_f64()
    );
    println!("| category | generator | mean-diff | z-max | block-NN |");
    println!("|---|---|---|---|---|");
    for cat in &cfg.categories {
        let (md, zm, bn) = measure(&root, cat, cfg.size);
        let g = synth::generator_of(cat).unwrap();
        println!("| {cat} | {g:?} | {md:.3} | {zm:.3} | {bn:.3} |");
    }
}
