//! The exported graph run by an independent evaluator (tract) against daad's own inference:
//! scores, raw R/L, smoothed maps and reconstructions for every variant, the memory's shrink
//! modes, a fixed batch and the opset where ReduceMean's axes became an input.

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use daad_eval::{AnomalyMap, AnomalyMapConfig};
use daad_eval::{Calibration, CalibrationSource};
use daad_export::{export_model, Batch, ExportOptions, Outputs};
use daad_memory::Shrink;
use daad_model::{DaadModel, ModelConfig, Variant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tract_onnx::prelude::*;

const SIZE: usize = 32;

/// A small model of `variant` with random weights and non-trivial BatchNorm statistics.
fn model(variant: Variant, shrink: Shrink, seed: u64) -> Result<DaadModel> {
    let mut cfg = ModelConfig::for_variant(variant, SIZE);
    cfg.base_channels = 8;
    cfg.memory.n_items = 20;
    cfg.memory.shrink = shrink;
    let m = DaadModel::new(&cfg, seed, &Device::Cpu)?;
    // Running statistics away from (0, 1), so that folding BatchNorm is really exercised.
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
    for (name, var) in m.named_vars(|n| n.ends_with("running_mean") || n.ends_with("running_var")) {
        let n = var.elem_count();
        let v: Vec<f32> = if name.ends_with("mean") {
            (0..n).map(|_| rng.random_range(-0.1..0.1)).collect()
        } else {
            (0..n).map(|_| rng.random_range(0.5..2.0)).collect()
        };
        var.set(&Tensor::from_vec(v, n, &Device::Cpu)?)?;
    }
    Ok(m)
}

/// Smooth random images in [-1, 1] (N, 3, S, S).
fn images(n: usize, seed: u64) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(n * 3 * SIZE * SIZE);
    for _ in 0..n * 3 {
        let (a, b, c): (f32, f32, f32) =
            (rng.random_range(-0.8..0.8), rng.random_range(0.05..0.4), rng.random_range(0.0..6.0));
        for y in 0..SIZE {
            for x in 0..SIZE {
                let noise: f32 = rng.random_range(-0.1..0.1);
                v.push(
                    (a + (b * x as f32 + c).sin() * (b * y as f32).cos() * 0.5 + noise)
                        .clamp(-1.0, 1.0),
                );
            }
        }
    }
    Ok(Tensor::from_vec(v, (n, 3, SIZE, SIZE), &Device::Cpu)?)
}

fn raw(model: &DaadModel, x: &Tensor) -> Result<(Vec<f64>, Option<Vec<f64>>)> {
    let o = model.infer(x)?;
    let f =
        |t: &Tensor| -> Result<Vec<f64>> { Ok(t.to_dtype(candle_core::DType::F64)?.to_vec1()?) };
    Ok((f(&o.reconstruction_score)?, o.alignment_score.as_ref().map(f).transpose()?))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Exports `model`, runs it in tract on `n` images and compares every output with daad.
fn check(model: &DaadModel, opts: &ExportOptions, n: usize) -> Result<()> {
    let variant = model.config().variant;
    // Calibration from other images, as training does on held-out normals.
    let (cr, cl) = raw(model, &images(6, 7)?)?;
    let cal = Calibration::fit(
        &cr,
        cl.as_deref(),
        model.config().gamma,
        0.99,
        CalibrationSource::Holdout,
    )?;
    let onnx = export_model(model, &cal, opts)?;
    let meta: std::collections::HashMap<_, _> = onnx.info.metadata.iter().cloned().collect();
    assert_eq!(meta["daad.variant"], variant.name());
    assert_eq!(meta["daad.threshold"], format!("{:?}", cal.threshold.unwrap()));

    let x = images(n, 11)?;
    let plan = tract_onnx::onnx()
        .model_for_read(&mut onnx.bytes.as_slice())
        .context("tract reads the model")?
        .with_input_fact(0, f32::fact([n, 3, SIZE, SIZE]).into())?
        .into_optimized()
        .context("tract optimises the model")?
        .into_runnable()?;
    let input: tract_onnx::prelude::Tensor = tract_ndarray::Array4::from_shape_vec(
        (n, 3, SIZE, SIZE),
        x.flatten_all()?.to_vec1::<f32>()?,
    )?
    .into();
    let out = plan.run(tvec!(input.into()))?;
    let names = &onnx.info.outputs;
    let get = |name: &str| -> Result<Vec<f32>> {
        let i =
            names.iter().position(|n| n == name).with_context(|| format!("no output {name}"))?;
        Ok(out[i].to_array_view::<f32>()?.iter().copied().collect())
    };

    let o = model.infer(&x)?;
    let (r, l) = raw(model, &x)?;
    let score = get("score")?;
    let r_onnx = get("r")?;
    for i in 0..n {
        let want = cal.score(r[i], l.as_ref().map(|l| l[i]))?;
        assert!(
            (score[i] as f64 - want).abs() < 1e-4,
            "{variant}: score {i}: onnx {} daad {want}",
            score[i]
        );
        assert!((r_onnx[i] as f64 - r[i]).abs() <= 1e-4 * r[i].abs().max(1e-3), "{variant}: r {i}");
    }
    if let Some(l) = &l {
        let l_onnx = get("l")?;
        for i in 0..n {
            assert!(
                (l_onnx[i] as f64 - l[i]).abs() <= 1e-4 * l[i].abs().max(1e-3),
                "{variant}: l {i}"
            );
        }
    } else {
        assert!(!names.iter().any(|n| n == "l"));
    }
    if opts.outputs.reconstruction {
        let rec = get("reconstruction")?;
        let d = max_abs_diff(&rec, &o.reconstruction.flatten_all()?.to_vec1::<f32>()?);
        assert!(d < 1e-3, "{variant}: reconstruction differs by {d}");
    }
    if opts.outputs.map {
        let map = get("map")?;
        let want: Vec<f32> = AnomalyMap::batch_from_tensor(&o.error_map)?
            .iter()
            .flat_map(|m| m.postprocess(&AnomalyMapConfig::default(), None).data)
            .collect();
        let d = max_abs_diff(&map, &want);
        assert!(d < 1e-3, "{variant}: map differs by {d}");
    } else {
        assert!(!names.iter().any(|n| n == "map"));
    }
    Ok(())
}

fn all_outputs() -> ExportOptions {
    ExportOptions {
        outputs: Outputs { map: true, reconstruction: true },
        ..ExportOptions::default()
    }
}

#[test]
fn every_variant_matches_daad() -> Result<()> {
    for (i, v) in Variant::ALL.into_iter().enumerate() {
        check(&model(v, Shrink::Renormalize, i as u64)?, &all_outputs(), 3)?;
    }
    Ok(())
}

#[test]
fn shrink_modes_fixed_batch_and_opset_18() -> Result<()> {
    let opts = ExportOptions { opset: 18, batch: Batch::Fixed(2), ..all_outputs() };
    check(&model(Variant::Daad, Shrink::Drop, 20)?, &opts, 2)?;
    check(&model(Variant::Daad, Shrink::memae(20), 21)?, &opts, 2)?;
    let score_only = ExportOptions {
        outputs: Outputs { map: false, reconstruction: false },
        ..ExportOptions::default()
    };
    check(&model(Variant::DaadPlus, Shrink::Renormalize, 22)?, &score_only, 1)?;
    Ok(())
}
