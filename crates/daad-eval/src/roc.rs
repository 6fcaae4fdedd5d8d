//! The ROC curve's points: one per distinct score threshold, from (0, 0) to (1, 1).

use serde::{Deserialize, Serialize};

use crate::error::{check_finite, check_len, Error, Result};

/// ROC curve points in order of decreasing threshold (an item is called anomalous when its
/// score is >= the threshold). The first point is (0, 0) at threshold +inf, as in scikit-learn's
/// `roc_curve(..., drop_intermediate=False)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    /// False positive rates, non-decreasing.
    pub fpr: Vec<f64>,
    /// True positive rates, non-decreasing.
    pub tpr: Vec<f64>,
    /// The threshold of each point (the first is +inf, which JSON writes as null and cannot read back).
    pub thresholds: Vec<f64>,
}

impl RocCurve {
    /// Area under the curve by the trapezoid rule (equals [`crate::image_auroc`], ties included).
    pub fn auc(&self) -> f64 {
        self.fpr
            .windows(2)
            .zip(self.tpr.windows(2))
            .map(|(x, y)| (x[1] - x[0]) * (y[1] + y[0]) * 0.5)
            .sum()
    }
}

/// The ROC curve of `scores` (higher = more anomalous) against `labels` (`true` = anomalous).
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Result<RocCurve> {
    check_len("scores and labels", scores.len(), labels.len())?;
    check_finite("scores", scores)?;
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return Err(Error::OneClass {
            what: "ROC curve".into(),
            positives: pos as u64,
            negatives: neg as u64,
        });
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut curve = RocCurve { fpr: vec![0.0], tpr: vec![0.0], thresholds: vec![f64::INFINITY] };
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let t = scores[idx[i]];
        while i < idx.len() && scores[idx[i]] == t {
            if labels[idx[i]] {
                tp += 1
            } else {
                fp += 1
            }
            i += 1;
        }
        curve.fpr.push(fp as f64 / neg as f64);
        curve.tpr.push(tp as f64 / pos as f64);
        curve.thresholds.push(t);
    }
    Ok(curve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_curve_by_hand() {
        let c = roc_curve(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert_eq!(c.fpr, vec![0.0, 0.0, 0.5, 0.5, 1.0]);
        assert_eq!(c.tpr, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        assert_eq!(c.thresholds[1..], [0.8, 0.4, 0.35, 0.1]);
        assert!((c.auc() - 0.75).abs() < 1e-12);
    }

    #[test]
    fn ties_make_one_point() {
        let c = roc_curve(&[0.5; 4], &[false, true, false, true]).unwrap();
        assert_eq!(c.fpr, vec![0.0, 1.0]);
        assert_eq!(c.auc(), 0.5);
    }
}
