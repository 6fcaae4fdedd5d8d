//! Per-image anomaly score primitives shared by the trainer (calibration) and the evaluator.
//!
//! R(x) = mean over pixels of (x - x_hat)^2, L(x) = mean of (f_D(x) - f_D(x_hat))^2 (paper eq. 4,
//! 6, 7); both are min-max scaled to [0, 1] before A(x) = g R(x) + (1 - g) L(x).

use candle_core::{Tensor, D};
use serde::{Deserialize, Serialize};

/// R(x) per image: (B, ...) x, x_hat -> (B,) mean of the squared error over all but the batch dim.
pub fn reconstruction_score(x: &Tensor, x_hat: &Tensor) -> candle_core::Result<Tensor> {
    per_image_mse(x, x_hat)
}

/// L(x) per image: (B, ...) f_D(x), f_D(x_hat) -> (B,) mean squared feature difference.
pub fn alignment_score(fx: &Tensor, fx_hat: &Tensor) -> candle_core::Result<Tensor> {
    per_image_mse(fx, fx_hat)
}

fn per_image_mse(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let b_sz = a.dim(0)?;
    (a - b)?.sqr()?.reshape((b_sz, ()))?.mean(D::Minus1)
}

/// Per-pixel error map: (B, C, H, W) -> (B, 1, H, W), the channel mean of (x - x_hat)^2.
pub fn error_map(x: &Tensor, x_hat: &Tensor) -> candle_core::Result<Tensor> {
    (x - x_hat)?.sqr()?.mean_keepdim(1)
}

/// Where a run's score scaling statistics come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CalibrationSource {
    /// A seeded held-out slice of train/good (the default, `--val-fraction` > 0).
    Holdout,
    /// The training images themselves (`--val-fraction 0`): optimistic, scores of unseen normals run higher.
    Train,
}

/// Score scaling from normal images only, and a verdict threshold (stored in a run's config.json).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Smallest R over the calibration images.
    pub r_min: f64,
    /// Largest R over the calibration images.
    pub r_max: f64,
    /// Smallest L (None without a discriminator).
    pub l_min: Option<f64>,
    /// Largest L (None without a discriminator).
    pub l_max: Option<f64>,
    /// Weight of scaled R in the fused score.
    pub gamma: f64,
    /// Fused-score threshold: the `quantile` of the calibration images' fused scores.
    pub threshold: Option<f64>,
    /// Quantile used for the threshold (default 0.99).
    pub quantile: f64,
    /// Which images the statistics come from.
    pub source: CalibrationSource,
    /// How many images the statistics come from.
    pub n_images: usize,
}

fn scale(v: f64, lo: f64, hi: f64) -> f64 {
    // A zero range (one image, or identical scores) maps everything to 0 rather than NaN.
    let range = hi - lo;
    if range > 0.0 {
        (v - lo) / range
    } else {
        0.0
    }
}

impl Calibration {
    /// Fits the scaling to normal images' raw scores and sets the threshold at `quantile` of their fused scores.
    pub fn fit(
        r: &[f64],
        l: Option<&[f64]>,
        gamma: f64,
        quantile: f64,
        source: CalibrationSource,
    ) -> Self {
        let (r_min, r_max) = min_max(r);
        let (l_min, l_max) = match l {
            Some(l) => {
                let (a, b) = min_max(l);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        let mut cal = Calibration {
            r_min,
            r_max,
            l_min,
            l_max,
            gamma,
            threshold: None,
            quantile,
            source,
            n_images: r.len(),
        };
        if !r.is_empty() {
            let fused: Vec<f64> = (0..r.len()).map(|i| cal.fuse(r[i], l.map(|l| l[i]))).collect();
            cal.threshold = Some(quantile_of(&fused, quantile));
        }
        cal
    }

    /// A(x) = g R' + (1 - g) L' with R', L' scaled by the stored min/max (R' alone without L).
    pub fn fuse(&self, r: f64, l: Option<f64>) -> f64 {
        let rs = scale(r, self.r_min, self.r_max);
        match (l, self.l_min, self.l_max) {
            (Some(l), Some(lo), Some(hi)) => {
                self.gamma * rs + (1.0 - self.gamma) * scale(l, lo, hi)
            }
            _ => rs,
        }
    }
}

/// Min and max of a slice ((0, 0) when empty).
pub fn min_max(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)))
}

/// The q-quantile with linear interpolation between order statistics (numpy's default).
pub fn quantile_of(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

/// The paper's fusion: min-max scale R and L over the given set (the test set in the paper), then
/// g R' + (1 - g) L'; R' alone when `l` is None.
pub fn fuse_scores(r: &[f64], l: Option<&[f64]>, gamma: f64) -> Vec<f64> {
    let (rl, rh) = min_max(r);
    match l {
        Some(l) => {
            let (ll, lh) = min_max(l);
            r.iter()
                .zip(l)
                .map(|(&r, &l)| gamma * scale(r, rl, rh) + (1.0 - gamma) * scale(l, ll, lh))
                .collect()
        }
        None => r.iter().map(|&r| scale(r, rl, rh)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn scores_by_hand() -> candle_core::Result<()> {
        let x = Tensor::new(&[[[[1f32, 1.], [1., 1.]]], [[[0f32, 0.], [0., 2.]]]], &Device::Cpu)?;
        let y = Tensor::zeros((2, 1, 2, 2), candle_core::DType::F32, &Device::Cpu)?;
        // image 0: four errors of 1 -> 1; image 1: one error of 4 -> 1.
        assert_eq!(reconstruction_score(&x, &y)?.to_vec1::<f32>()?, vec![1.0, 1.0]);
        assert_eq!(error_map(&x, &y)?.dims(), &[2, 1, 2, 2]);
        assert_eq!(alignment_score(&x, &x)?.to_vec1::<f32>()?, vec![0.0, 0.0]);
        Ok(())
    }

    #[test]
    fn quantile_and_fusion() {
        assert_eq!(quantile_of(&[3.0, 1.0, 2.0], 0.5), 2.0);
        assert!((quantile_of(&[0.0, 10.0], 0.99) - 9.9).abs() < 1e-12);
        let f = fuse_scores(&[1.0, 3.0], Some(&[10.0, 20.0]), 0.9);
        assert_eq!(f, vec![0.0, 1.0]);
        let cal = Calibration::fit(&[1.0, 2.0, 3.0], None, 1.0, 0.99, CalibrationSource::Holdout);
        assert_eq!(cal.fuse(2.0, None), 0.5);
        assert!((cal.threshold.unwrap() - 0.99).abs() < 1e-12);
        // A zero range does not produce NaN.
        assert_eq!(
            Calibration::fit(&[1.0], None, 1.0, 0.99, CalibrationSource::Train).fuse(5.0, None),
            0.0
        );
    }
}
