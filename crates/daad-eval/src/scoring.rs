//! Section 3.3 of the paper: min-max scaling of the raw scores R(x) and L(x) and their fusion
//! A(x) = g R(x) + (1 - g) L(x), plus the quantile threshold a deployed model uses.
//!
//! Two ways to fit the scaling ([`ScalingMode`]):
//! - over the test set, as the paper does (the scale statistics see the test images);
//! - from normal images only (a held-out slice of `train/good`), stored in the run, which is what
//!   a deployed model must do since it sees one image at a time **(choice)**.
//!
//! A zero range (one calibration image, or identical scores) maps `v` to `v - min`, keeping
//! order; it never maps every score to 0 (resolved in issue 12: daad-model's copy used 0).
//!
//! Scaled values are *not* clamped to [0, 1] **(choice)**: with stored statistics a test image may
//! fall outside the fitted range, and clamping would turn distinct scores into ties.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{check_finite, check_len, Error, Result};

/// The paper's weight g of the reconstruction score in the fusion (section 4.1).
pub const DEFAULT_GAMMA: f64 = 0.9;

/// The default quantile of held-out normal scores used as the verdict threshold **(choice)**.
pub const DEFAULT_THRESHOLD_QUANTILE: f64 = 0.99;

/// The fewest held-out images a verdict threshold is fitted on **(choice, issue 13)**: the
/// 0.99 quantile of fewer normal scores is their maximum plus noise. Below it
/// [`Calibration::fit`] sets no threshold (verdict [`Verdict::Unknown`]); training then fits the
/// scaling on the held-out and training images together so that the range is not degenerate.
pub const MIN_HOLDOUT_IMAGES: usize = 5;

/// A linear map of `[min, max]` onto `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MinMax {
    /// The value mapped to 0.
    pub min: f64,
    /// The value mapped to 1.
    pub max: f64,
}

impl MinMax {
    /// Fits min and max over `values` (errors on empty or non-finite input).
    pub fn fit(values: &[f64]) -> Result<Self> {
        if values.is_empty() {
            return Err(Error::Empty { what: "values to fit a min-max scaling".into() });
        }
        check_finite("values to fit a min-max scaling", values)?;
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for &v in values {
            min = min.min(v);
            max = max.max(v);
        }
        Ok(MinMax { min, max })
    }

    /// Maps `v` to `(v - min) / (max - min)`; a degenerate range (max == min) maps to `v - min`
    /// so that equal inputs still give equal outputs and order is kept.
    pub fn apply(&self, v: f64) -> f64 {
        let span = self.max - self.min;
        if span > 0.0 {
            (v - self.min) / span
        } else {
            v - self.min
        }
    }
}

/// Where the scaling statistics come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ScalingMode {
    /// Fit min and max over the scores being evaluated (the paper's protocol).
    TestSet,
    /// Use statistics fitted earlier on normal images and stored in the run.
    Stored(ScoreScaling),
}

/// The stored score scaling: min-max of R and (if the variant has one) of L, and the weight g.
///
/// Serialised into the run's `config.json` so that `predict` can score one image at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreScaling {
    /// Scaling of the reconstruction score R(x).
    pub r: MinMax,
    /// Scaling of the alignment score L(x); `None` for variants without a discriminator.
    pub l: Option<MinMax>,
    /// Weight g of R in the fusion; the score is the scaled R alone when `l` is `None`.
    pub gamma: f64,
}

impl ScoreScaling {
    /// Fits the scaling on raw scores (`l` is `None` for variants without a discriminator).
    pub fn fit(r: &[f64], l: Option<&[f64]>, gamma: f64) -> Result<Self> {
        check_gamma(gamma)?;
        let r_mm = MinMax::fit(r)?;
        let l_mm = match l {
            Some(l) => {
                check_len("R and L scores", r.len(), l.len())?;
                Some(MinMax::fit(l)?)
            }
            None => None,
        };
        Ok(ScoreScaling { r: r_mm, l: l_mm, gamma })
    }

    /// The fused anomaly score of one image from its raw R(x) and L(x).
    ///
    /// `l` is ignored when the scaling has no L statistics; it is required when it has.
    pub fn score(&self, r: f64, l: Option<f64>) -> Result<f64> {
        let rs = self.r.apply(r);
        match (&self.l, l) {
            (None, _) => Ok(rs),
            (Some(mm), Some(l)) => Ok(fuse(rs, mm.apply(l), self.gamma)),
            (Some(_), None) => Err(Error::invalid(
                "alignment score",
                "the scaling was fitted with L(x) but none was given for this image",
            )),
        }
    }

    /// Fused scores for many images (`l` must have the same length as `r` when given).
    pub fn scores(&self, r: &[f64], l: Option<&[f64]>) -> Result<Vec<f64>> {
        check_finite("R scores", r)?;
        if let Some(l) = l {
            check_len("R and L scores", r.len(), l.len())?;
            check_finite("L scores", l)?;
        }
        (0..r.len()).map(|i| self.score(r[i], l.map(|l| l[i]))).collect()
    }
}

/// A(x) = g R + (1 - g) L on already scaled scores (equation 7).
pub fn fuse(r_scaled: f64, l_scaled: f64, gamma: f64) -> f64 {
    gamma * r_scaled + (1.0 - gamma) * l_scaled
}

fn check_gamma(gamma: f64) -> Result<()> {
    if (0.0..=1.0).contains(&gamma) {
        Ok(())
    } else {
        Err(Error::invalid("gamma", format!("{gamma} is outside [0, 1] (the paper uses 0.9)")))
    }
}

/// The `q`-quantile of `values` with linear interpolation between order statistics (numpy's
/// default `method="linear"`), e.g. `q = 0.99` of held-out normal scores as the verdict threshold.
pub fn quantile(values: &[f64], q: f64) -> Result<f64> {
    if values.is_empty() {
        return Err(Error::Empty { what: "values for a quantile".into() });
    }
    if !(0.0..=1.0).contains(&q) {
        return Err(Error::invalid("quantile", format!("{q} is outside [0, 1]")));
    }
    check_finite("values for a quantile", values)?;
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Ok(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

/// The verdict threshold from held-out normal scores: their [`DEFAULT_THRESHOLD_QUANTILE`]
/// quantile, or `q` when given.
pub fn quantile_threshold(normal_scores: &[f64], q: Option<f64>) -> Result<f64> {
    quantile(normal_scores, q.unwrap_or(DEFAULT_THRESHOLD_QUANTILE))
}

/// Which score ranks and judges the images (Table 5's score columns, `--score`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreKind {
    /// A(x) = g R' + (1 - g) L' with the run's g (R' alone without a discriminator).
    #[default]
    Fused,
    /// R(x) only.
    Reconstruction,
    /// L(x) only (needs a discriminator).
    Alignment,
}

impl ScoreKind {
    /// The command-line name (`fused`, `r`, `l`).
    pub fn name(self) -> &'static str {
        match self {
            ScoreKind::Fused => "fused",
            ScoreKind::Reconstruction => "r",
            ScoreKind::Alignment => "l",
        }
    }

    /// The raw values this kind scores, as (primary, secondary) columns: (R, L) for fused,
    /// (R, None) for reconstruction, (L, None) for alignment (an error without L).
    pub fn columns(self, r: &[f64], l: Option<&[f64]>) -> Result<(Vec<f64>, Option<Vec<f64>>)> {
        Ok(match self {
            ScoreKind::Fused => (r.to_vec(), l.map(<[f64]>::to_vec)),
            ScoreKind::Reconstruction => (r.to_vec(), None),
            ScoreKind::Alignment => (l.ok_or_else(no_alignment)?.to_vec(), None),
        })
    }

    /// [`ScoreKind::columns`] for one image.
    pub fn select(self, r: f64, l: Option<f64>) -> Result<(f64, Option<f64>)> {
        Ok(match self {
            ScoreKind::Fused => (r, l),
            ScoreKind::Reconstruction => (r, None),
            ScoreKind::Alignment => (l.ok_or_else(no_alignment)?, None),
        })
    }
}

fn no_alignment() -> Error {
    Error::invalid(
        "score kind",
        "the alignment score L(x) needs a model with a discriminator: use fused or r",
    )
}

impl fmt::Display for ScoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScoreKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fused" | "a" => Ok(ScoreKind::Fused),
            "r" | "rec" | "reconstruction" => Ok(ScoreKind::Reconstruction),
            "l" | "ali" | "alignment" => Ok(ScoreKind::Alignment),
            other => Err(Error::invalid("--score", format!("`{other}`: use fused, r or l"))),
        }
    }
}

/// Where a test's min-max statistics come from (`--scaling`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scaling {
    /// Min-max over the test set itself: the paper's protocol (what `reproduce` uses).
    #[default]
    TestSet,
    /// The calibration stored in the run (held-out normal images): what a deployment sees.
    Stored,
}

impl fmt::Display for Scaling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scaling::TestSet => "test-set",
            Scaling::Stored => "stored",
        })
    }
}

impl FromStr for Scaling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "test-set" | "testset" | "test" => Ok(Scaling::TestSet),
            "stored" | "calibration" => Ok(Scaling::Stored),
            other => Err(Error::invalid("--scaling", format!("`{other}`: use test-set or stored"))),
        }
    }
}

/// The decision on one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Score below the threshold.
    Normal,
    /// Score at or above the threshold.
    Anomalous,
    /// No threshold is known (the calibration has none and none was given).
    Unknown,
}

/// Where a run's calibration statistics come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CalibrationSource {
    /// A seeded held-out slice of train/good (the default, `--val-fraction` > 0).
    Holdout,
    /// The training images themselves (`--val-fraction 0`): optimistic, scores of unseen
    /// normals run higher.
    Train,
}

/// The one score calibration (anomalib's post-processor shape): min-max scaling of R (and L),
/// the score kind, and the verdict threshold, fitted on normal images at the end of training,
/// stored in the run's config.json and used by `test --scaling stored`, `predict` and every
/// later consumer, so the same image gets the same score everywhere.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Min-max statistics of R (and L) over the calibration images, and g.
    pub scaling: ScoreScaling,
    /// The score that is thresholded (fused unless changed with [`Calibration::with_kind`]).
    pub kind: ScoreKind,
    /// The verdict threshold on the score: anomalous when score >= threshold; `None`: unknown.
    pub threshold: Option<f64>,
    /// The quantile of the calibration images' scores used for the threshold (default 0.99).
    pub quantile: f64,
    /// Which images the statistics come from.
    pub source: CalibrationSource,
    /// How many images the statistics come from.
    pub n_images: usize,
}

impl Calibration {
    /// Fits the scaling on normal images' raw scores (fused kind) and puts the threshold at
    /// their `quantile` in the scaled score space, with two small-data rules (issue 13):
    /// - [`CalibrationSource::Holdout`] with fewer than [`MIN_HOLDOUT_IMAGES`] images: no
    ///   threshold (verdict unknown) rather than one that is a single image's score;
    /// - [`CalibrationSource::Train`]: the threshold is strictly above every calibration score,
    ///   so no training image is judged anomalous by construction (a quantile below 1 would put
    ///   the highest training images at or above it).
    pub fn fit(
        r: &[f64],
        l: Option<&[f64]>,
        gamma: f64,
        quantile: f64,
        source: CalibrationSource,
    ) -> Result<Self> {
        let scaling = ScoreScaling::fit(r, l, gamma)?;
        let scores = scaling.scores(r, l)?;
        let q = self::quantile(&scores, quantile)?;
        let threshold = match source {
            CalibrationSource::Holdout if r.len() < MIN_HOLDOUT_IMAGES => None,
            CalibrationSource::Holdout => Some(q),
            CalibrationSource::Train => {
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                Some(if q > max { q } else { next_up(max) })
            }
        };
        Ok(Calibration {
            scaling,
            kind: ScoreKind::Fused,
            threshold,
            quantile,
            source,
            n_images: r.len(),
        })
    }

    /// This calibration scoring `kind` instead; the threshold (fitted on the fused score) is
    /// kept only when the kind does not change.
    pub fn with_kind(&self, kind: ScoreKind) -> Result<Self> {
        self.scaling_for(kind)?;
        let threshold = if kind == self.kind { self.threshold } else { None };
        Ok(Calibration { kind, threshold, ..self.clone() })
    }

    /// The scaling of the columns [`ScoreKind::columns`] gives for `kind`.
    pub fn scaling_for(&self, kind: ScoreKind) -> Result<ScoreScaling> {
        let s = &self.scaling;
        Ok(match kind {
            ScoreKind::Fused => s.clone(),
            ScoreKind::Reconstruction => ScoreScaling { r: s.r, l: None, gamma: 1.0 },
            ScoreKind::Alignment => {
                ScoreScaling { r: s.l.ok_or_else(no_alignment)?, l: None, gamma: 1.0 }
            }
        })
    }

    /// The score of one image from its raw R(x) and L(x) (L required for fused scores of a
    /// model with a discriminator, and for the alignment kind).
    pub fn score(&self, r: f64, l: Option<f64>) -> Result<f64> {
        let (a, b) = self.kind.select(r, l)?;
        self.scaling_for(self.kind)?.score(a, b)
    }

    /// The verdict on a score by the stored threshold.
    pub fn verdict(&self, score: f64) -> Verdict {
        verdict(score, self.threshold)
    }
}

/// The smallest f64 above a finite `x` (`f64::next_up`, stable only from Rust 1.86).
fn next_up(x: f64) -> f64 {
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let bits = x.to_bits();
    f64::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
}

/// The verdict on `score` by `threshold` (`Unknown` without one).
pub fn verdict(score: f64, threshold: Option<f64>) -> Verdict {
    match threshold {
        None => Verdict::Unknown,
        Some(t) if score >= t => Verdict::Anomalous,
        Some(_) => Verdict::Normal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_maps_range_to_unit_interval() {
        let mm = MinMax::fit(&[2.0, 4.0, 3.0]).unwrap();
        assert_eq!(mm.apply(2.0), 0.0);
        assert_eq!(mm.apply(4.0), 1.0);
        assert_eq!(mm.apply(3.0), 0.5);
        // Not clamped: a stored scaling may see values outside the fitted range.
        assert_eq!(mm.apply(6.0), 2.0);
    }

    #[test]
    fn degenerate_range_keeps_order() {
        let mm = MinMax::fit(&[1.0, 1.0]).unwrap();
        assert_eq!(mm.apply(1.0), 0.0);
        assert!(mm.apply(1.5) > mm.apply(1.2));
    }

    #[test]
    fn fusion_follows_equation_7() {
        let s = ScoreScaling::fit(&[0.0, 10.0], Some(&[1.0, 3.0]), 0.9).unwrap();
        // R scaled 0.5, L scaled 1.0 -> 0.9 * 0.5 + 0.1 * 1.0
        let a = s.score(5.0, Some(3.0)).unwrap();
        assert!((a - 0.55).abs() < 1e-12);
        assert!(s.score(5.0, None).is_err());
        let r_only = ScoreScaling::fit(&[0.0, 10.0], None, 0.9).unwrap();
        assert_eq!(r_only.score(5.0, None).unwrap(), 0.5);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(MinMax::fit(&[]).is_err());
        assert!(MinMax::fit(&[1.0, f64::NAN]).is_err());
        assert!(ScoreScaling::fit(&[1.0], None, 1.5).is_err());
        assert!(ScoreScaling::fit(&[1.0, 2.0], Some(&[1.0]), 0.9).is_err());
    }

    #[test]
    fn calibration_thresholds_at_the_normal_quantile() {
        let r: Vec<f64> = (0..101).map(|i| i as f64).collect();
        let c =
            Calibration::fit(&r, None, DEFAULT_GAMMA, 0.99, CalibrationSource::Holdout).unwrap();
        // Scaled scores are i / 100, so the 0.99 quantile is 0.99.
        assert!((c.threshold.unwrap() - 0.99).abs() < 1e-12);
        assert_eq!(c.score(100.0, None).unwrap(), 1.0);
        assert_eq!(c.verdict(1.0), Verdict::Anomalous);
        assert_eq!(c.verdict(c.score(50.0, None).unwrap()), Verdict::Normal);
        assert_eq!(c.n_images, 101);
        let none = Calibration { threshold: None, ..c };
        assert_eq!(none.verdict(5.0), Verdict::Unknown);
    }

    // Moved from daad-model's score.rs (its copy of the calibration is gone).
    #[test]
    fn quantile_and_fusion() {
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.5).unwrap(), 2.0);
        assert!((quantile(&[0.0, 10.0], 0.99).unwrap() - 9.9).abs() < 1e-12);
        let s = ScoreScaling::fit(&[1.0, 3.0], Some(&[10.0, 20.0]), 0.9).unwrap();
        assert_eq!(s.scores(&[1.0, 3.0], Some(&[10.0, 20.0])).unwrap(), vec![0.0, 1.0]);
        // Five held-out images (MIN_HOLDOUT_IMAGES): scaled i / 4, threshold at 0.99.
        let r = [1.0, 2.0, 3.0, 4.0, 5.0];
        let cal = Calibration::fit(&r, None, 1.0, 0.99, CalibrationSource::Holdout).unwrap();
        assert_eq!(cal.score(3.0, None).unwrap(), 0.5);
        assert!((cal.threshold.unwrap() - 0.99).abs() < 1e-12);
    }

    // The disagreement of issue 12: a zero range keeps order (v - min), never maps to 0.
    #[test]
    fn zero_range_calibration_keeps_order() {
        let cal = Calibration::fit(&[1.0], None, 1.0, 0.99, CalibrationSource::Train).unwrap();
        assert_eq!(cal.score(5.0, None).unwrap(), 4.0);
        assert!(cal.score(3.0, None).unwrap() < cal.score(5.0, None).unwrap());
        // Issue 13: just above the training image's score (0), which is not anomalous.
        assert!(cal.threshold.unwrap() > 0.0 && cal.threshold.unwrap() < 1e-300);
        assert_eq!(cal.verdict(cal.score(1.0, None).unwrap()), Verdict::Normal);
    }

    #[test]
    fn kinds_select_their_columns() {
        let cal =
            Calibration::fit(&[0.0, 10.0], Some(&[1.0, 3.0]), 0.9, 0.5, CalibrationSource::Holdout)
                .unwrap();
        assert!((cal.score(5.0, Some(3.0)).unwrap() - 0.55).abs() < 1e-12);
        let r = cal.with_kind(ScoreKind::Reconstruction).unwrap();
        assert_eq!(r.score(5.0, Some(3.0)).unwrap(), 0.5);
        assert_eq!(r.threshold, None);
        let l = cal.with_kind(ScoreKind::Alignment).unwrap();
        assert_eq!(l.score(5.0, Some(2.0)).unwrap(), 0.5);
        assert!(l.score(5.0, None).is_err());
        let r_only =
            Calibration::fit(&[0.0, 1.0], None, 0.9, 0.5, CalibrationSource::Train).unwrap();
        assert!(r_only.with_kind(ScoreKind::Alignment).is_err());
        let json = serde_json::to_string(&cal).unwrap();
        assert_eq!(serde_json::from_str::<Calibration>(&json).unwrap(), cal);
    }

    #[test]
    fn option_names_parse() {
        assert_eq!("test-set".parse::<Scaling>().unwrap(), Scaling::TestSet);
        assert_eq!("stored".parse::<Scaling>().unwrap(), Scaling::Stored);
        assert!("minmax".parse::<Scaling>().is_err());
        for k in [ScoreKind::Fused, ScoreKind::Reconstruction, ScoreKind::Alignment] {
            assert_eq!(k.to_string().parse::<ScoreKind>().unwrap(), k);
        }
        assert!("x".parse::<ScoreKind>().is_err());
    }

    #[test]
    fn scaling_round_trips_through_json() {
        let s = ScoreScaling::fit(&[0.1, 0.3], Some(&[2.0, 5.0]), 0.9).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        let back: ScoreScaling = serde_json::from_str(&json).unwrap();
        assert_eq!(s, back);
    }

    // Expected values from numpy 1.x/2.x `np.quantile(x, q)` (method="linear"):
    // np.quantile([1, 2, 3, 4], 0.5) = 2.5, np.quantile([1, 2, 3, 4], 0.99) = 3.97.
    #[test]
    fn quantile_matches_numpy_linear() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert!((quantile(&v, 0.5).unwrap() - 2.5).abs() < 1e-12);
        assert!((quantile(&v, 0.99).unwrap() - 3.97).abs() < 1e-12);
        assert_eq!(quantile(&v, 0.0).unwrap(), 1.0);
        assert_eq!(quantile(&v, 1.0).unwrap(), 4.0);
        assert!(quantile(&v, 1.5).is_err());
    }

    #[test]
    fn few_held_out_images_give_no_threshold_and_no_zero_range() {
        // One held-out image (14 good images at --val-fraction 0.1): no threshold, and the
        // scores of other images are not all 0.
        let c = Calibration::fit(&[0.5], None, DEFAULT_GAMMA, 0.99, CalibrationSource::Holdout)
            .unwrap();
        assert_eq!(c.threshold, None);
        assert_eq!(c.verdict(c.score(0.5, None).unwrap()), Verdict::Unknown);
        assert!(c.score(0.7, None).unwrap() > c.score(0.6, None).unwrap());
        let four: Vec<f64> = (0..MIN_HOLDOUT_IMAGES - 1).map(|i| i as f64).collect();
        let c =
            Calibration::fit(&four, None, DEFAULT_GAMMA, 0.99, CalibrationSource::Holdout).unwrap();
        assert_eq!(c.threshold, None);
        let five: Vec<f64> = (0..MIN_HOLDOUT_IMAGES).map(|i| i as f64).collect();
        let c =
            Calibration::fit(&five, None, DEFAULT_GAMMA, 0.99, CalibrationSource::Holdout).unwrap();
        assert!(c.threshold.is_some());
    }

    #[test]
    fn no_training_image_is_anomalous_by_construction() {
        for n in [1usize, 2, 8, 200] {
            let r: Vec<f64> = (0..n).map(|i| 0.1 + 0.01 * i as f64).collect();
            let l: Vec<f64> = (0..n).map(|i| 1.0 - 0.003 * i as f64).collect();
            let c = Calibration::fit(&r, Some(&l), DEFAULT_GAMMA, 0.99, CalibrationSource::Train)
                .unwrap();
            for i in 0..n {
                let s = c.score(r[i], Some(l[i])).unwrap();
                assert_eq!(c.verdict(s), Verdict::Normal, "n {n}, image {i}: {s} vs {c:?}");
            }
        }
    }
}
