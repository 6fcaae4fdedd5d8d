//! Everything the exporter reads from a run folder, in ONE module: opening the run, its
//! calibration and how the calibration scales R and L. When the calibration moves to
//! `daad_eval::Calibration` (with its `ScoreKind`) and runs open through `daad_train::RunDir`,
//! only this file changes.

use std::path::{Path, PathBuf};

use candle_core::Device;
use daad_eval::AnomalyMapConfig;
use daad_model::{Calibration, DaadModel};

use crate::error::{Error, Result};

/// Which per-image number the exported `score` output is.
// Only `Fused` is built until the calibration carries its kind (daad_eval::ScoreKind); the graph
// already handles all three.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreKind {
    /// R' (scaled reconstruction error).
    Reconstruction,
    /// L' (scaled discriminator feature distance).
    Alignment,
    /// A = g R' + (1 - g) L' (R' alone without a discriminator).
    Fused,
}

impl ScoreKind {
    /// The name written into the metadata.
    pub fn name(self) -> &'static str {
        match self {
            ScoreKind::Reconstruction => "reconstruction",
            ScoreKind::Alignment => "alignment",
            ScoreKind::Fused => "fused",
        }
    }
}

/// One raw score's scaling as the graph computes it: `((v - min) * mul) / div`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    /// Subtracted first.
    pub min: f64,
    /// Then multiplied by (1, or 0 for today's zero-range rule).
    pub mul: f64,
    /// Then divided by (the calibration range).
    pub div: f64,
}

impl Scale {
    /// The calibration's min-max rule for a range `lo..hi` (daad-model's `Calibration::fuse`:
    /// a zero range maps every score to 0). The unit test below holds it to `fuse`.
    fn min_max(lo: f64, hi: f64) -> Self {
        let range = hi - lo;
        if range > 0.0 {
            Scale { min: lo, mul: 1.0, div: range }
        } else {
            Scale { min: lo, mul: 0.0, div: 1.0 }
        }
    }

    /// The scaled value in f64 (what the graph computes in f32).
    #[cfg(test)]
    pub fn apply(&self, v: f64) -> f64 {
        ((v - self.min) * self.mul) / self.div
    }
}

/// How the graph turns raw R (and L) into the score, and the verdict threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreSpec {
    /// Which score.
    pub kind: ScoreKind,
    /// Scaling of R.
    pub r: Scale,
    /// Scaling of L (None: the score ignores L).
    pub l: Option<Scale>,
    /// Weight of R' in the fused score.
    pub gamma: f64,
    /// Verdict threshold on the score (anomalous when `score >= threshold`); None: no verdict.
    pub threshold: Option<f64>,
    /// The calibration as stored in the run (for the metadata).
    pub calibration_json: String,
}

impl ScoreSpec {
    /// The score of raw `r`, `l` in f64 (the reference for tests).
    #[cfg(test)]
    pub fn score(&self, r: f64, l: Option<f64>) -> f64 {
        let rs = self.r.apply(r);
        match (self.kind, self.l, l) {
            (ScoreKind::Reconstruction, _, _) | (ScoreKind::Fused, None, _) => rs,
            (ScoreKind::Fused, Some(sl), Some(l)) => {
                self.gamma * rs + (1.0 - self.gamma) * sl.apply(l)
            }
            (ScoreKind::Alignment, Some(sl), Some(l)) => sl.apply(l),
            _ => f64::NAN,
        }
    }
}

/// The score spec of a calibration (today always the fused score A, as `daad predict` reports).
pub fn score_spec(cal: &Calibration, has_discriminator: bool) -> ScoreSpec {
    let l = match (has_discriminator, cal.l_min, cal.l_max) {
        (true, Some(lo), Some(hi)) => Some(Scale::min_max(lo, hi)),
        _ => None,
    };
    ScoreSpec {
        kind: ScoreKind::Fused,
        r: Scale::min_max(cal.r_min, cal.r_max),
        l,
        gamma: cal.gamma,
        threshold: cal.threshold,
        calibration_json: serde_json::to_string(cal).unwrap_or_default(),
    }
}

/// How `daad predict` turns error maps into anomaly maps (today daad-eval's default; a run
/// does not store its own yet).
pub fn map_config() -> AnomalyMapConfig {
    AnomalyMapConfig::default()
}

/// A run opened for export.
pub struct RunInfo {
    /// The run folder.
    pub path: PathBuf,
    /// The trained model (on the CPU; only its weights are read).
    pub model: DaadModel,
    /// The score and threshold.
    pub score: ScoreSpec,
    /// The daad version that trained the run.
    pub trained_with: String,
}

/// Opens the run in `dir` (config.json, model.safetensors) and reads its calibration.
pub fn open(dir: &Path) -> Result<RunInfo> {
    let run = daad_train::Run::load(dir, &Device::Cpu)?;
    let cal = run.calibration().ok_or_else(|| Error::NoCalibration { path: dir.to_path_buf() })?;
    let score = score_spec(cal, run.model.has_discriminator());
    Ok(RunInfo {
        path: dir.to_path_buf(),
        score,
        trained_with: run.config.crate_version.clone(),
        model: run.model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use daad_model::CalibrationSource;

    /// The graph's scaling must be the calibration's own (`Calibration::fuse` is the one home).
    #[test]
    fn scaling_matches_calibration_fuse() {
        let r = [0.01, 0.02, 0.05];
        let l = [1.0, 3.0, 2.0];
        let cases = [
            Calibration::fit(&r, Some(&l), 0.9, 0.99, CalibrationSource::Holdout),
            Calibration::fit(&r, None, 1.0, 0.99, CalibrationSource::Holdout),
            // Zero ranges.
            Calibration::fit(&[0.03], Some(&[2.0]), 0.9, 0.99, CalibrationSource::Train),
        ];
        for cal in &cases {
            let spec = score_spec(cal, cal.l_min.is_some());
            for (&rv, &lv) in [0.0, 0.015, 0.03, 0.2].iter().zip(&[0.5, 2.0, 2.5, 9.0]) {
                let lv = cal.l_min.map(|_| lv);
                let want = cal.fuse(rv, lv);
                let got = spec.score(rv, lv);
                assert!((want - got).abs() < 1e-12, "{cal:?}: r={rv} l={lv:?}: {want} vs {got}");
            }
        }
    }
}
