//! The one adapter between the server and a trained run: [`RunScorer`] implements [`Scorer`]
//! with the same steps as `daad predict` (load the run, preprocess, the model's `infer`, the
//! stored calibration, the smoothed anomaly map), so the same image gets the same score.
//!
//! This file is meant to shrink to a wrapper around `daad::Detector` once the facade has it.
//! Until then, preprocessing goes through a temporary PNG file because `daad_data::Preprocess`
//! reads files only; PNG is lossless, so the pixels are those of the decoded upload.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use daad::data::Preprocess;
use daad::eval::{AnomalyMap, AnomalyMapConfig};
use daad::train::{Calibration, Run, MODEL_FILE};
use image::{DynamicImage, RgbImage};
use sha2::{Digest, Sha256};

use crate::scorer::{ImageScore, ModelInfo, ScoreError, Scorer, Verdict};

/// A trained run folder as a [`Scorer`].
pub struct RunScorer {
    run: Run,
    calibration: Calibration,
    device: Device,
    info: ModelInfo,
    tmp: tempfile::TempDir,
}

fn err(what: &str, e: impl std::fmt::Display) -> ScoreError {
    ScoreError(format!("{what}: {e}"))
}

impl RunScorer {
    /// Opens the run folder `dir` on `device` (the errors of `daad predict`: missing, incomplete
    /// or incompatible runs, and runs without a stored calibration).
    pub fn open(dir: &Path, device: &Device) -> Result<Self, daad::Error> {
        let run = daad::pipeline::load_run(dir, device)?;
        let calibration = run
            .calibration()
            .cloned()
            .ok_or_else(|| daad::Error::NoCalibration { path: run.dir.clone() })?;
        let weights = dir.join(MODEL_FILE);
        let bytes = std::fs::read(&weights).map_err(|source| daad::Error::Io {
            op: "reading",
            path: weights.clone(),
            source,
        })?;
        let run_id = hex::encode(&Sha256::digest(&bytes)[..6]);
        let info = ModelInfo {
            run: dir.display().to_string(),
            run_id,
            variant: run.config.model.variant.name().to_string(),
            image_size: run.config.model.image_size,
            threshold: calibration.threshold,
            config: serde_json::to_value(&run.config).unwrap_or_default(),
            calibration: serde_json::to_value(&calibration).ok(),
        };
        let tmp = tempfile::Builder::new().prefix("daad-serve-").tempdir().map_err(|source| {
            daad::Error::Io { op: "creating a temporary folder", path: PathBuf::from("."), source }
        })?;
        Ok(RunScorer { run, calibration, device: device.clone(), info, tmp })
    }

    /// Preprocesses `images` exactly as `daad predict` does with image files.
    fn preprocess(&self, images: &[DynamicImage]) -> Result<Tensor, ScoreError> {
        let paths: Vec<PathBuf> = images
            .iter()
            .map(|img| {
                let mut f = tempfile::Builder::new()
                    .suffix(".png")
                    .tempfile_in(self.tmp.path())
                    .map_err(|e| err("creating a temporary image", e))?;
                let mut png = Vec::new();
                img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                    .map_err(|e| err("encoding a temporary image", e))?;
                f.write_all(&png).map_err(|e| err("writing a temporary image", e))?;
                let (_, path) = f.keep().map_err(|e| err("keeping a temporary image", e))?;
                Ok(path)
            })
            .collect::<Result<_, ScoreError>>()?;
        let pre = Preprocess::new(self.run.config.model.image_size);
        let x = pre.load_images(&paths, None);
        for p in &paths {
            let _ = std::fs::remove_file(p);
        }
        x.map_err(|e| err("preprocessing", e))
    }
}

/// (B, 3, S, S) in [-1, 1] -> RGB images.
fn to_rgb(t: &Tensor) -> Result<Vec<RgbImage>, ScoreError> {
    let (b, _, h, w) = t.dims4().map_err(|e| err("reconstruction shape", e))?;
    let v: Vec<f32> = t
        .to_device(&Device::Cpu)
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1())
        .map_err(|e| err("reading the reconstruction", e))?;
    let n = h * w;
    Ok((0..b)
        .map(|i| {
            let base = i * 3 * n;
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let p = y as usize * w + x as usize;
                let px = |c: usize| {
                    ((v[base + c * n + p] + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
                };
                image::Rgb([px(0), px(1), px(2)])
            })
        })
        .collect())
}

fn to_f64(t: &Tensor) -> Result<Vec<f64>, ScoreError> {
    t.to_dtype(DType::F64).and_then(|t| t.to_vec1::<f64>()).map_err(|e| err("reading scores", e))
}

impl Scorer for RunScorer {
    fn info(&self) -> ModelInfo {
        self.info.clone()
    }

    fn score(&self, images: &[DynamicImage], detail: bool) -> Result<Vec<ImageScore>, ScoreError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let x = self.preprocess(images)?.to_device(&self.device).map_err(|e| err("device", e))?;
        let o = self.run.model.infer(&x).map_err(|e| err("inference", e))?;
        let r = to_f64(&o.reconstruction_score)?;
        let l = o.alignment_score.as_ref().map(to_f64).transpose()?;
        let (maps, recs) = if detail {
            let raw =
                o.error_map.to_device(&Device::Cpu).map_err(|e| err("device", e)).and_then(
                    |m| AnomalyMap::batch_from_tensor(&m).map_err(|e| err("error map", e)),
                )?;
            let cfg = AnomalyMapConfig::default();
            let maps: Vec<AnomalyMap> = raw.iter().map(|m| m.postprocess(&cfg, None)).collect();
            (Some(maps), Some(to_rgb(&o.reconstruction)?))
        } else {
            (None, None)
        };
        Ok((0..images.len())
            .map(|i| {
                let li = l.as_ref().map(|l| l[i]);
                let score = self.calibration.fuse(r[i], li);
                ImageScore {
                    score,
                    r: r[i],
                    l: li,
                    verdict: Verdict::judge(score, self.calibration.threshold),
                    map: maps.as_ref().map(|m| m[i].clone()),
                    reconstruction: recs.as_ref().map(|v| v[i].clone()),
                }
            })
            .collect())
    }
}
