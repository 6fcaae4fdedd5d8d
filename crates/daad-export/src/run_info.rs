//! Everything the exporter reads from a run folder, in ONE module: opening the run
//! (`daad_train::RunDir`), its calibration (`daad_eval::Calibration`) and how that calibration
//! scales R and L, as the graph computes it.

use std::path::{Path, PathBuf};

use candle_core::Device;
use daad_eval::{AnomalyMapConfig, Calibration, MinMax, ScoreKind};
use daad_model::DaadModel;

use crate::error::{Error, Result};

/// One raw score's scaling as the graph computes it: `(v - min) / div`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    /// Subtracted first.
    pub min: f64,
    /// Then divided by (the calibration range, or 1 for a zero range).
    pub div: f64,
}

impl Scale {
    /// daad-eval's `MinMax::apply` as two graph constants: `(v - min) / (max - min)`, and a zero
    /// range maps to `v - min` (order kept), never to 0.
    fn of(mm: &MinMax) -> Self {
        let span = mm.max - mm.min;
        Scale { min: mm.min, div: if span > 0.0 { span } else { 1.0 } }
    }

    /// The scaled value in f64 (what the graph computes in f32).
    #[cfg(test)]
    pub fn apply(&self, v: f64) -> f64 {
        (v - self.min) / self.div
    }
}

/// How the graph turns raw R (and L) into the score, and the verdict threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreSpec {
    /// Which score (the calibration's kind).
    pub kind: ScoreKind,
    /// Scaling of R.
    pub r: Scale,
    /// Scaling of L (None: no discriminator).
    pub l: Option<Scale>,
    /// Weight of R' in the fused score.
    pub gamma: f64,
    /// Verdict threshold on the score (anomalous when `score >= threshold`); None: no verdict.
    pub threshold: Option<f64>,
    /// The calibration as stored in the run (for the metadata).
    pub calibration_json: String,
}

impl ScoreSpec {
    /// The score of raw `r`, `l` in f64, as the graph computes it (the tests hold it to
    /// `Calibration::score`).
    #[cfg(test)]
    pub fn score(&self, r: f64, l: Option<f64>) -> f64 {
        let rs = self.r.apply(r);
        match (self.kind, self.l, l) {
            (ScoreKind::Reconstruction, _, _) | (ScoreKind::Fused, None, _) => rs,
            (ScoreKind::Fused, Some(sl), Some(l)) => daad_eval::fuse(rs, sl.apply(l), self.gamma),
            (ScoreKind::Alignment, Some(sl), Some(l)) => sl.apply(l),
            _ => f64::NAN,
        }
    }
}

/// The score spec of a calibration: its kind, scaling and threshold.
pub fn score_spec(cal: &Calibration, has_discriminator: bool) -> Result<ScoreSpec> {
    let l = match (has_discriminator, &cal.scaling.l) {
        (true, Some(mm)) => Some(Scale::of(mm)),
        _ => None,
    };
    if cal.kind == ScoreKind::Alignment && l.is_none() {
        return Err(Error::Unsupported(
            "the calibration scores L(x) but the model has no discriminator or no L scaling".into(),
        ));
    }
    Ok(ScoreSpec {
        kind: cal.kind,
        r: Scale::of(&cal.scaling.r),
        l,
        gamma: cal.scaling.gamma,
        threshold: cal.threshold,
        calibration_json: serde_json::to_string(cal).unwrap_or_default(),
    })
}

/// How `daad predict` turns error maps into anomaly maps (daad-eval's default; a run does not
/// store its own).
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

/// Opens the run in `dir` (through `daad_train::RunDir`) and reads its calibration.
pub fn open(dir: &Path) -> Result<RunInfo> {
    let run = daad_train::RunDir::open(dir)?;
    let cal = run.calibration().ok_or_else(|| Error::NoCalibration { path: dir.to_path_buf() })?;
    let model = run.load_model(&Device::Cpu)?;
    let score = score_spec(cal, model.has_discriminator())?;
    Ok(RunInfo {
        path: dir.to_path_buf(),
        score,
        trained_with: run.config().crate_version.clone(),
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use daad_eval::CalibrationSource;

    /// The graph's scaling must be the calibration's own (`Calibration::score` is the one home),
    /// for every kind and for zero ranges (v - min, not 0).
    #[test]
    fn scaling_matches_calibration_score() {
        let r = [0.01, 0.02, 0.05];
        let l = [1.0, 3.0, 2.0];
        let fit = |r: &[f64], l: Option<&[f64]>, g| {
            Calibration::fit(r, l, g, 0.99, CalibrationSource::Holdout).unwrap()
        };
        let mut cases = vec![
            fit(&r, Some(&l), 0.9),
            fit(&r, None, 1.0),
            // Zero ranges.
            fit(&[0.03], Some(&[2.0]), 0.9),
        ];
        for c in cases.clone() {
            cases.push(c.with_kind(ScoreKind::Reconstruction).unwrap());
            if c.scaling.l.is_some() {
                cases.push(c.with_kind(ScoreKind::Alignment).unwrap());
            }
        }
        for cal in &cases {
            let spec = score_spec(cal, cal.scaling.l.is_some()).unwrap();
            assert_eq!(spec.kind, cal.kind);
            for (&rv, &lv) in [0.0, 0.015, 0.03, 0.2].iter().zip(&[0.5, 2.0, 2.5, 9.0]) {
                let lv = cal.scaling.l.map(|_| lv);
                let want = cal.score(rv, lv).unwrap();
                let got = spec.score(rv, lv);
                assert!((want - got).abs() < 1e-12, "{cal:?}: r={rv} l={lv:?}: {want} vs {got}");
            }
        }
        // A zero range keeps order: two different scores stay different.
        let zero = score_spec(&cases[2], true).unwrap();
        assert!(zero.score(0.04, Some(2.0)) > zero.score(0.03, Some(2.0)));
    }
}
