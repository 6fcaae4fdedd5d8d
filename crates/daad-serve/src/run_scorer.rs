//! The one adapter between the server and a trained run: [`RunScorer`] implements [`Scorer`]
//! over [`daad::Detector`], the detector `daad predict` and `daad test` score through, so the
//! same image gets the same score everywhere.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use daad::train::MODEL_FILE;
use daad::Detector;
use image::{DynamicImage, RgbImage};
use sha2::{Digest, Sha256};

use crate::scorer::{ImageScore, ModelInfo, ScoreError, Scorer};

/// A trained run folder as a [`Scorer`].
pub struct RunScorer {
    detector: Detector,
    info: ModelInfo,
}

fn err(what: &str, e: impl std::fmt::Display) -> ScoreError {
    ScoreError(format!("{what}: {e}"))
}

impl RunScorer {
    /// Opens the run folder `dir` on `device` (the errors of `daad predict`: missing, incomplete
    /// or incompatible runs, and runs without a stored calibration).
    pub fn open(dir: &Path, device: &Device) -> Result<Self, daad::Error> {
        let detector = Detector::open(dir, device)?;
        let calibration = detector.require_calibration()?.clone();
        let weights = detector.path().join(MODEL_FILE);
        let bytes = std::fs::read(&weights).map_err(|source| daad::Error::Io {
            op: "reading",
            path: weights.clone(),
            source,
        })?;
        let run_id = hex::encode(&Sha256::digest(&bytes)[..6]);
        let config = detector.config();
        let info = ModelInfo {
            run: dir.display().to_string(),
            run_id,
            variant: config.model.variant.name().to_string(),
            image_size: config.model.image_size,
            threshold: calibration.threshold,
            config: serde_json::to_value(config).unwrap_or_default(),
            calibration: serde_json::to_value(&calibration).ok(),
            precision: detector.precision().name().to_string(),
        };
        Ok(RunScorer { detector, info })
    }

    /// The scorer with the model's matrix products at `precision` (bf16: CPU only; see
    /// [`daad::Detector::with_precision`]).
    pub fn with_precision(mut self, precision: daad::nn::Precision) -> Result<Self, daad::Error> {
        self.detector = self.detector.with_precision(precision)?;
        self.info.precision = precision.name().to_string();
        Ok(self)
    }
}

/// (3, S, S) in [-1, 1] -> an RGB image.
fn to_rgb(t: &Tensor) -> Result<RgbImage, ScoreError> {
    let (_, h, w) = t.dims3().map_err(|e| err("reconstruction shape", e))?;
    let v: Vec<f32> = t
        .to_device(&Device::Cpu)
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1())
        .map_err(|e| err("reading the reconstruction", e))?;
    let n = h * w;
    Ok(RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let p = y as usize * w + x as usize;
        let px = |c: usize| ((v[c * n + p] + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8;
        image::Rgb([px(0), px(1), px(2)])
    }))
}

impl Scorer for RunScorer {
    fn info(&self) -> ModelInfo {
        self.info.clone()
    }

    fn score(&self, images: &[DynamicImage], detail: bool) -> Result<Vec<ImageScore>, ScoreError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let x = self
            .detector
            .preprocess()
            .images_to_tensor(images)
            .map_err(|e| err("preprocessing", e))?;
        let scored = self.detector.score(&x, detail).map_err(|e| err("inference", e))?;
        scored
            .into_iter()
            .map(|s| {
                let reconstruction = match (&s.reconstruction, detail) {
                    (Some(t), true) => Some(to_rgb(t)?),
                    _ => None,
                };
                Ok(ImageScore {
                    score: s.score,
                    r: s.r,
                    l: s.l,
                    verdict: s.verdict,
                    map: detail.then_some(s.map),
                    reconstruction,
                })
            })
            .collect()
    }
}
