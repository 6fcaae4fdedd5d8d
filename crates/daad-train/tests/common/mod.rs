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
    TrainSpec {
        data_root: root.to_path_buf(),
        category: category.to_string(),
        out: out.to_path_buf(),
        model,
        train,
        resume: false,
        cache_dir: None,
    }
}
