//! Building, shapes, gradients and checkpoint round trips of the model variants.

use anyhow::Result;
use candle_core::{Device, Tensor};
use daad_model::{DaadModel, Error, ModelConfig, Variant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn images(b: usize, s: usize, seed: u64) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f32> = (0..b * 3 * s * s).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Ok(Tensor::from_vec(v, (b, 3, s, s), &Device::Cpu)?)
}

fn small(variant: Variant, size: usize) -> ModelConfig {
    let mut cfg = ModelConfig::for_variant(variant, size);
    cfg.memory.n_items = 20;
    cfg
}

#[test]
fn every_variant_reconstructs_at_64_px() -> Result<()> {
    let x = images(2, 64, 1)?;
    for v in Variant::ALL {
        let model = DaadModel::new(&small(v, 64), 0, &Device::Cpu)?;
        let y = model.reconstruct(&x, true)?;
        assert_eq!(y.dims(), &[2, 3, 64, 64], "{v}");
        let out = model.infer(&x)?;
        assert_eq!(out.reconstruction.dims(), &[2, 3, 64, 64], "{v}");
        assert_eq!(out.error_map.dims(), &[2, 1, 64, 64], "{v}");
        assert_eq!(out.reconstruction_score.dims(), &[2], "{v}");
        assert_eq!(out.alignment_score.is_some(), v == Variant::DaadPlus, "{v}");
        let max = y.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(max <= 1.0, "tanh output out of range for {v}: {max}");
    }
    Ok(())
}

#[test]
fn every_variant_reconstructs_at_256_px() -> Result<()> {
    // The paper's size with its N = 500; one image keeps the test quick.
    let x = images(1, 256, 2)?;
    for v in Variant::ALL {
        let model = DaadModel::new(&ModelConfig::for_variant(v, 256), 0, &Device::Cpu)?;
        let out = model.infer(&x)?;
        assert_eq!(out.reconstruction.dims(), &[1, 3, 256, 256], "{v}");
        if let Some(l) = out.alignment_score {
            assert_eq!(l.dims(), &[1]);
        }
    }
    Ok(())
}

#[test]
fn bad_image_size_is_a_typed_error() {
    let err = DaadModel::new(&ModelConfig::for_variant(Variant::Daad, 72), 0, &Device::Cpu)
        .err()
        .unwrap();
    assert!(matches!(err, Error::ImageSize(72)), "{err}");
    assert!(err.to_string().contains("multiple of 16"));
}

#[test]
fn every_parameter_gets_a_gradient() -> Result<()> {
    // DAAD+ at 32 px: memory on f1..f4 (f4 2x2, rates clamped), discriminator on.
    let cfg = small(Variant::DaadPlus, 32);
    let model = DaadModel::new(&cfg, 3, &Device::Cpu)?;
    let x = images(4, 32, 3)?;
    let x_hat = model.reconstruct(&x, true)?;
    let (logits, f_fake) = model.disc_features(&x_hat, true)?.unwrap();
    let (real_logits, f_real) = model.disc_features(&x, true)?.unwrap();
    let loss = ((x_hat - &x)?.sqr()?.mean_all()?
        + logits.mean_all()?
        + (f_fake - f_real)?.sqr()?.mean_all()?
        + real_logits.mean_all()?)?;
    let grads = loss.backward()?;
    let vars = model.named_vars(|n| !n.ends_with("running_mean") && !n.ends_with("running_var"));
    assert!(vars.iter().filter(|(n, _)| n.ends_with("bank")).count() == 4, "one bank per scale");
    for (name, var) in vars {
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {name}"));
        let s = g.abs()?.sum_all()?.to_scalar::<f32>()?;
        assert!(s > 0.0 && s.is_finite(), "gradient of {name} is {s}");
    }
    Ok(())
}

#[test]
fn config_round_trip_rebuilds_the_same_model() -> Result<()> {
    let cfg = small(Variant::MemAe, 64);
    let json = serde_json::to_string(&cfg)?;
    let back: ModelConfig = serde_json::from_str(&json)?;
    assert_eq!(back, cfg);
    let a = DaadModel::new(&cfg, 7, &Device::Cpu)?;
    let b = DaadModel::new(&back, 7, &Device::Cpu)?;
    let x = images(2, 64, 4)?;
    let (ya, yb) = (a.infer(&x)?.reconstruction, b.infer(&x)?.reconstruction);
    assert_eq!(
        ya.flatten_all()?.to_vec1::<f32>()?,
        yb.flatten_all()?.to_vec1::<f32>()?,
        "same seed, same model"
    );
    Ok(())
}

#[test]
fn checkpoint_round_trip_is_bit_exact() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("model.safetensors");
    let cfg = small(Variant::DaadPlus, 32);
    let a = DaadModel::new(&cfg, 11, &Device::Cpu)?;
    // Move the BatchNorm running stats away from their init so that they are checked too.
    a.reconstruct(&images(4, 32, 5)?, true)?;
    a.disc_features(&images(4, 32, 6)?, true)?;
    a.save(&path)?;
    let mut b = DaadModel::new(&cfg, 12, &Device::Cpu)?;
    b.load(&path)?;
    let x = images(3, 32, 7)?;
    let (oa, ob) = (a.infer(&x)?, b.infer(&x)?);
    assert_eq!(
        oa.reconstruction.flatten_all()?.to_vec1::<f32>()?,
        ob.reconstruction.flatten_all()?.to_vec1::<f32>()?
    );
    assert_eq!(
        oa.alignment_score.unwrap().to_vec1::<f32>()?,
        ob.alignment_score.unwrap().to_vec1::<f32>()?
    );
    Ok(())
}

#[test]
fn mismatched_or_corrupt_weights_name_the_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("model.safetensors");
    DaadModel::new(&small(Variant::Daad, 32), 0, &Device::Cpu)?.save(&path)?;
    // Wrong variant: DAAD+ needs a discriminator the file lacks.
    let mut plus = DaadModel::new(&small(Variant::DaadPlus, 32), 0, &Device::Cpu)?;
    let msg = plus.load(&path).unwrap_err().to_string();
    assert!(msg.contains("model.safetensors") && msg.contains("variant is daad"), "{msg}");
    assert!(msg.contains("discriminator.classifier.weight` is missing"), "{msg}");
    // Wrong shapes: another memory size.
    let mut other = small(Variant::Daad, 32);
    other.memory.n_items = 30;
    let msg = DaadModel::new(&other, 0, &Device::Cpu)?.load(&path).unwrap_err().to_string();
    assert!(msg.contains("generator.memory1.bank` has shape [20,"), "{msg}");
    // Truncated file.
    let bytes = std::fs::read(&path)?;
    std::fs::write(&path, &bytes[..bytes.len() / 2])?;
    let mut m = DaadModel::new(&small(Variant::Daad, 32), 0, &Device::Cpu)?;
    let msg = m.load(&path).unwrap_err().to_string();
    assert!(msg.contains("model.safetensors") && msg.contains("corrupt"), "{msg}");
    Ok(())
}
