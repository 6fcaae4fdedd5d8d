//! Shared fixtures: a tiny synthetic dataset and small configs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use daad_data::synth::{generate, SynthConfig, SYNTH_CATEGORIES};
use daad_model::Variant;
use daad_train::{preset_configs, Preset, TrainSpec};

/// Writes a 32 px synthetic category with `n_train` good images; returns (root, category).
pub fn synth(dir: &Path, n_train: usize) -> (PathBuf, String) {
    let category = SYNTH_CATEGORIES[0].to_string();
    let cfg = SynthConfig {
        categories: vec![category.clone()],
        size: 32,
        seed: 5,
        n_train,
        n_test_good: 2,
        n_test_defect: 2,
    };
    let root = dir.join("synth");
    generate(&root, &cfg).expect("synthetic data");
    (root, category)
}

/// A ci-preset spec with small memory.
pub fn spec(root: &Path, category: &str, out: &Path, variant: Variant) -> TrainSpec {
    let (mut model, mut train) = preset_configs(Preset::Ci, variant);
    model.memory.n_items = 16;
    train.batch_size = 4;
    train.epochs = 2;
    train.seed = 3;
    TrainSpec::new(root, category, out, model, train)
}

/// Every value of the model's weights, in name order (for bit-exact comparisons).
pub fn weights(model: &daad_model::DaadModel) -> Vec<u32> {
    let mut all = Vec::new();
    for (_, v) in model.named_vars(|_| true) {
        let t = v.as_tensor().flatten_all().expect("flatten");
        all.extend(t.to_vec1::<f32>().expect("f32 weights").into_iter().map(f32::to_bits));
    }
    all
}

/// The names under `dir`, recursively, relative to it (sorted).
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
