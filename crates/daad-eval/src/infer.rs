//! The one inference path: a model in evaluation mode over a set of images, in batches, giving
//! the raw R(x), L(x) and error maps every consumer scores (training's calibration, `test`,
//! `predict`, the server, the export check).

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use daad_model::DaadModel;

use crate::anomaly_map::AnomalyMap;
use crate::error::Result;

/// What [`infer`] returns besides the scores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InferOptions {
    /// Keep the reconstructions x_hat (on the CPU).
    pub reconstructions: bool,
}

/// Raw per-image outputs of a model over a set of images, in image order.
#[derive(Clone, Debug)]
pub struct RawOutputs {
    /// R(x) per image.
    pub r: Vec<f64>,
    /// L(x) per image (models with a discriminator).
    pub l: Option<Vec<f64>>,
    /// Unsmoothed per-pixel error maps at the model's size.
    pub maps: Vec<AnomalyMap>,
    /// The reconstructions (N, 3, S, S) in [-1, 1] on the CPU, when asked for.
    pub reconstructions: Option<Tensor>,
    /// Seconds spent in the model (transfers included).
    pub seconds: f64,
}

fn to_f64(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

/// Runs `model` in evaluation mode over `images` (N, 3, S, S) in [-1, 1] (any device), `batch`
/// images at a time on `device`; `progress(done, total)` before the first and after each batch.
pub fn infer(
    model: &DaadModel,
    images: &Tensor,
    batch: usize,
    device: &Device,
    opts: InferOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RawOutputs> {
    let n = images.dim(0)?;
    let mut out = RawOutputs {
        r: Vec::with_capacity(n),
        l: model.has_discriminator().then(|| Vec::with_capacity(n)),
        maps: Vec::with_capacity(n),
        reconstructions: None,
        seconds: 0.0,
    };
    let mut recs = Vec::new();
    progress(0, n);
    let mut start = 0;
    while start < n {
        let len = batch.max(1).min(n - start);
        let t0 = Instant::now();
        let x = images.narrow(0, start, len)?.to_device(device)?;
        let o = model.infer(&x)?;
        out.r.extend(to_f64(&o.reconstruction_score)?);
        match (out.l.as_mut(), &o.alignment_score) {
            (Some(l), Some(a)) => l.extend(to_f64(a)?),
            (Some(_), None) => out.l = None,
            _ => {}
        }
        out.maps.extend(AnomalyMap::batch_from_tensor(&o.error_map.to_device(&Device::Cpu)?)?);
        if opts.reconstructions {
            recs.push(o.reconstruction.to_device(&Device::Cpu)?);
        }
        out.seconds += t0.elapsed().as_secs_f64();
        start += len;
        progress(start, n);
    }
    if opts.reconstructions && !recs.is_empty() {
        out.reconstructions = Some(Tensor::cat(&recs, 0)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use daad_model::{ModelConfig, Variant};

    // Batching does not change the scores: one batch of 3 equals batches of 2 + 1.
    #[test]
    fn batches_agree_with_one_pass() -> Result<()> {
        let mut cfg = ModelConfig::for_variant(Variant::DaadPlus, 32);
        cfg.memory.n_items = 8;
        let model = DaadModel::new(&cfg, 0, &Device::Cpu)?;
        let x = Tensor::randn(0f32, 0.5, (3, 3, 32, 32), &Device::Cpu)?.clamp(-1f32, 1f32)?;
        let mut calls = Vec::new();
        let one = infer(&model, &x, 3, &Device::Cpu, InferOptions::default(), &mut |d, t| {
            calls.push((d, t))
        })?;
        let two = infer(
            &model,
            &x,
            2,
            &Device::Cpu,
            InferOptions { reconstructions: true },
            &mut |_, _| {},
        )?;
        assert_eq!(calls, vec![(0, 3), (3, 3)]);
        assert_eq!(one.r.len(), 3);
        assert_eq!(one.maps.len(), 3);
        assert!(one.reconstructions.is_none());
        assert_eq!(
            two.reconstructions.as_ref().map(|t| t.dims().to_vec()),
            Some(vec![3, 3, 32, 32])
        );
        for (a, b) in one.r.iter().zip(&two.r) {
            assert!((a - b).abs() <= 1e-6 * a.abs().max(1e-12), "{a} vs {b}");
        }
        assert_eq!(one.l.as_ref().map(Vec::len), Some(3));
        Ok(())
    }
}
