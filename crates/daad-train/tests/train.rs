//! Training behaviour: the loss falls, D and G both learn, NaN guard.

mod common;

use anyhow::Result;
use candle_core::{Device, Tensor};
use daad_data::Preprocess;
use daad_model::{DaadModel, Variant};
use daad_train::{preset_configs, Preset, Trainer};

fn synth_images(n: usize) -> Result<(tempfile::TempDir, Tensor)> {
    let dir = tempfile::tempdir()?;
    let (root, cat) = common::synth(dir.path(), n);
    let idx = daad_data::mvtec::index_category(&root, &cat)?;
    let paths: Vec<_> = idx.train.iter().map(|s| s.image.clone()).collect();
    let x = Preprocess { size: 32 }.load_images(&paths, None)?;
    Ok((dir, x))
}

fn snapshot(vars: &[candle_core::Var]) -> Result<Vec<Vec<f32>>> {
    Ok(vars
        .iter()
        .map(|v| v.as_tensor().flatten_all().and_then(|t| t.to_vec1::<f32>()))
        .collect::<Result<_, _>>()?)
}

#[test]
fn a_few_dozen_steps_lower_the_reconstruction_loss() -> Result<()> {
    let (_dir, x) = synth_images(8)?;
    let (mut model_cfg, train_cfg) = preset_configs(Preset::Ci, Variant::Daad);
    model_cfg.memory.n_items = 16;
    let model = DaadModel::new(&model_cfg, 1, &Device::Cpu)?;
    let mut trainer = Trainer::new(model, &train_cfg)?;
    let mut rec = Vec::new();
    for _ in 0..36 {
        rec.push(trainer.step(&x)?.expect("finite").rec);
    }
    let first: f64 = rec[..3].iter().sum::<f64>() / 3.0;
    let last: f64 = rec[rec.len() - 3..].iter().sum::<f64>() / 3.0;
    assert!(last < 0.6 * first, "L_rec {first:.5} -> {last:.5} (all: {rec:?})");
    Ok(())
}

#[test]
fn daad_plus_updates_generator_and_discriminator() -> Result<()> {
    let (_dir, x) = synth_images(8)?;
    let (mut model_cfg, train_cfg) = preset_configs(Preset::Ci, Variant::DaadPlus);
    model_cfg.memory.n_items = 16;
    let model = DaadModel::new(&model_cfg, 2, &Device::Cpu)?;
    let (g, d) = (model.generator_vars(), model.discriminator_vars());
    assert!(!d.is_empty());
    let (g0, d0) = (snapshot(&g)?, snapshot(&d)?);
    let mut trainer = Trainer::new(model, &train_cfg)?;
    for _ in 0..3 {
        let l = trainer.step(&x)?.expect("finite");
        assert!(l.adv > 0.0 && l.ali > 0.0 && l.disc > 0.0, "{l:?}");
    }
    let (g1, d1) = (snapshot(&g)?, snapshot(&d)?);
    // Every trainable tensor of both networks moved.
    for (i, (a, b)) in g0.iter().zip(&g1).enumerate() {
        assert_ne!(a, b, "generator var {i} did not change");
    }
    for (i, (a, b)) in d0.iter().zip(&d1).enumerate() {
        assert_ne!(a, b, "discriminator var {i} did not change");
    }
    Ok(())
}

#[test]
fn a_nan_loss_is_reported_before_any_update() -> Result<()> {
    let (model_cfg, train_cfg) = preset_configs(Preset::Ci, Variant::Ae);
    let model = DaadModel::new(&model_cfg, 0, &Device::Cpu)?;
    let vars = model.generator_vars();
    let before = snapshot(&vars)?;
    let mut trainer = Trainer::new(model, &train_cfg)?;
    let x = Tensor::full(f32::NAN, (2, 3, 32, 32), &Device::Cpu)?;
    let nf = trainer.step(&x)?.expect_err("NaN input must give a non-finite loss");
    assert_eq!(nf.what, "reconstruction");
    assert_eq!(before, snapshot(&vars)?, "parameters must not change");
    Ok(())
}
