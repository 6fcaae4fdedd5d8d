//! F1-max: the best F1 score over all thresholds on the image scores, and that threshold.

use serde::{Deserialize, Serialize};

use crate::error::{check_finite, check_len, Error, Result};

/// The maximum F1 over thresholds (an item is anomalous when its score is >= `threshold`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct F1Max {
    /// The best F1 score.
    pub f1: f64,
    /// The threshold reaching it; among equal F1 values the lowest threshold, as
    /// `argmax` over scikit-learn's increasing `precision_recall_curve` thresholds picks.
    pub threshold: f64,
    /// Precision at that threshold.
    pub precision: f64,
    /// Recall at that threshold.
    pub recall: f64,
}

/// F1-max of `scores` (higher = more anomalous) against `labels` (`true` = anomalous).
///
/// Errors when there is no anomalous item (F1 is then undefined).
pub fn f1_max(scores: &[f64], labels: &[bool]) -> Result<F1Max> {
    check_len("scores and labels", scores.len(), labels.len())?;
    check_finite("scores", scores)?;
    let pos = labels.iter().filter(|&&l| l).count();
    if pos == 0 {
        return Err(Error::OneClass {
            what: "F1-max".into(),
            positives: 0,
            negatives: labels.len() as u64,
        });
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    // F1 = 2 tp / (tp + fp + P); compared as exact fractions (num, den) so ties are ties.
    let mut best: Option<(usize, usize, f64)> = None;
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
        let better = match best {
            None => true,
            // >= : thresholds decrease, so the last maximum is the lowest threshold.
            Some((btp, bfp, _)) => {
                (2 * tp) as u128 * (btp + bfp + pos) as u128
                    >= (2 * btp) as u128 * (tp + fp + pos) as u128
            }
        };
        if better && tp > 0 {
            best = Some((tp, fp, t));
        }
    }
    let (tp, fp, threshold) = best.expect("pos > 0 so some threshold has tp > 0");
    Ok(F1Max {
        f1: 2.0 * tp as f64 / (tp + fp + pos) as f64,
        threshold,
        precision: tp as f64 / (tp + fp) as f64,
        recall: tp as f64 / pos as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_separation_gives_one_at_the_lowest_anomalous_score() {
        let r = f1_max(&[0.1, 0.2, 0.7, 0.9], &[false, false, true, true]).unwrap();
        assert_eq!(r.f1, 1.0);
        assert_eq!(r.threshold, 0.7);
    }

    #[test]
    fn by_hand() {
        // Thresholds 0.8: tp 1 fp 0 -> 2/3; 0.4: tp 1 fp 1 -> 1/2; 0.35: tp 2 fp 1 -> 4/5; 0.1: 4/6.
        let r = f1_max(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!((r.f1 - 0.8).abs() < 1e-12);
        assert_eq!(r.threshold, 0.35);
        assert!((r.precision - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.recall, 1.0);
    }

    #[test]
    fn no_anomalies_is_an_error() {
        assert!(f1_max(&[0.1, 0.2], &[false, false]).is_err());
    }
}
