//! Statistics over repeated runs: mean ± std over seeds, and the paired difference of two
//! variants with a seeded percentile-bootstrap interval. A difference is a win only when its
//! interval excludes 0; otherwise it is a tie (inside the noise).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Bootstrap resamples used by the tables **(choice)**: enough for a stable 95 % percentile
/// interval (the 2.5 % tail holds 50 resample means).
pub const DEFAULT_RESAMPLES: usize = 2000;
/// Confidence level of the tables' intervals.
pub const DEFAULT_LEVEL: f64 = 0.95;
/// Seed of the tables' bootstrap, so a table is the same every time it is built.
pub const DEFAULT_BOOTSTRAP_SEED: u64 = 0x5eed;

/// Mean and sample standard deviation (n - 1 in the denominator; 0 for one value) of n values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation.
    pub std: f64,
}

/// Mean ± std of the finite values of `values` (NaN and infinities are left out); `None` if none.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    Some(Summary { n, mean, std })
}

impl fmt::Display for Summary {
    /// `0.812 ± 0.013 (n=3)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3} ± {:.3} (n={})", self.mean, self.std, self.n)
    }
}

/// A bootstrap interval of a mean.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Number of values resampled.
    pub n: usize,
    /// Mean of the values.
    pub mean: f64,
    /// Lower end of the interval.
    pub lo: f64,
    /// Upper end of the interval.
    pub hi: f64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
}

/// How a paired difference (variant minus baseline) reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The whole interval is above 0: the variant beats the baseline.
    Win,
    /// The whole interval is below 0: the baseline beats the variant.
    Loss,
    /// The interval contains 0: the difference is inside the noise.
    Tie,
}

impl Interval {
    /// Win when the interval excludes 0 from above, loss from below, tie otherwise.
    pub fn outcome(&self) -> Outcome {
        if self.lo > 0.0 {
            Outcome::Win
        } else if self.hi < 0.0 {
            Outcome::Loss
        } else {
            Outcome::Tie
        }
    }
}

impl fmt::Display for Interval {
    /// `+0.031 [+0.004, +0.060] (n=6)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:+.3} [{:+.3}, {:+.3}] (n={})", self.mean, self.lo, self.hi, self.n)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Win => "win",
            Outcome::Loss => "loss",
            Outcome::Tie => "tie",
        })
    }
}

/// SplitMix64: a tiny, well-mixed seeded generator (the bootstrap needs only uniform indices,
/// and a fixed algorithm keeps tables identical across rand versions).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0; the modulo bias is below 2^-50 for the n used here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Percentile-bootstrap interval of the mean of `values` (finite ones only): `resamples` means of
/// n draws with replacement, seeded by `seed`; the interval is the (1-level)/2 and (1+level)/2
/// order statistics of the sorted means (index floor(q (B - 1))). `None` without finite values
/// or with `resamples == 0` or `level` outside (0, 1).
pub fn bootstrap_mean(values: &[f64], resamples: usize, level: f64, seed: u64) -> Option<Interval> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() || resamples == 0 || !(level > 0.0 && level < 1.0) {
        return None;
    }
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let mut rng = SplitMix64(seed);
    let mut means: Vec<f64> =
        (0..resamples).map(|_| (0..n).map(|_| v[rng.below(n)]).sum::<f64>() / n as f64).collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (resamples - 1) as f64).floor() as usize).min(resamples - 1)];
    let tail = (1.0 - level) / 2.0;
    Some(Interval { n, mean, lo: at(tail), hi: at(1.0 - tail), level })
}

/// The paired differences `variant - baseline` over the keys (e.g. (category, seed)) both have,
/// in the order of `variant`; keys present on one side only are left out.
pub fn paired_differences<K: PartialEq>(variant: &[(K, f64)], baseline: &[(K, f64)]) -> Vec<f64> {
    variant
        .iter()
        .filter_map(|(k, v)| baseline.iter().find(|(kb, _)| kb == k).map(|(_, b)| v - b))
        .filter(|d| d.is_finite())
        .collect()
}

/// The paired difference of `variant` against `baseline` with the tables' bootstrap settings
/// ([`DEFAULT_RESAMPLES`], [`DEFAULT_LEVEL`], [`DEFAULT_BOOTSTRAP_SEED`]).
pub fn paired_interval<K: PartialEq>(
    variant: &[(K, f64)],
    baseline: &[(K, f64)],
) -> Option<Interval> {
    bootstrap_mean(
        &paired_differences(variant, baseline),
        DEFAULT_RESAMPLES,
        DEFAULT_LEVEL,
        DEFAULT_BOOTSTRAP_SEED,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_by_hand() {
        // 1, 2, 3, 4: mean 2.5; sum of squares 5; sample variance 5/3.
        let s = summarize(&[1.0, 2.0, f64::NAN, 3.0, 4.0]).unwrap();
        assert_eq!(s.n, 4);
        assert_eq!(s.mean, 2.5);
        assert!((s.std - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(summarize(&[0.7]).unwrap(), Summary { n: 1, mean: 0.7, std: 0.0 });
        assert_eq!(summarize(&[f64::NAN]), None);
        assert_eq!(format!("{}", summarize(&[0.5, 0.7]).unwrap()), "0.600 ± 0.141 (n=2)");
    }

    #[test]
    fn bootstrap_of_constant_values_is_a_point() {
        let i = bootstrap_mean(&[0.02; 5], 500, 0.95, 1).unwrap();
        assert_eq!((i.lo, i.mean, i.hi), (0.02, 0.02, 0.02));
        assert_eq!(i.outcome(), Outcome::Win);
        let i = bootstrap_mean(&[-0.02; 5], 500, 0.95, 1).unwrap();
        assert_eq!(i.outcome(), Outcome::Loss);
    }

    #[test]
    fn bootstrap_of_two_values_has_the_known_interval() {
        // Resample means of {0, 1} with n = 2 are 0, 0.5, 1 with probability 1/4, 1/2, 1/4: the
        // 2.5 % and 97.5 % quantiles of 2000 of them are 0 and 1 (each end holds ~500 means).
        let i = bootstrap_mean(&[0.0, 1.0], 2000, 0.95, 7).unwrap();
        assert_eq!((i.lo, i.mean, i.hi), (0.0, 0.5, 1.0));
        assert_eq!(i.outcome(), Outcome::Tie);
        // A 40 % interval of the same: 0.3 and 0.7 quantiles both fall on the 0.5 atom.
        let i = bootstrap_mean(&[0.0, 1.0], 2000, 0.4, 7).unwrap();
        assert_eq!((i.lo, i.hi), (0.5, 0.5));
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_mean() {
        let d = [0.03, 0.05, -0.01, 0.04, 0.02, 0.06];
        let a = bootstrap_mean(&d, 2000, 0.95, 3).unwrap();
        assert_eq!(a, bootstrap_mean(&d, 2000, 0.95, 3).unwrap());
        assert!(a.lo <= a.mean && a.mean <= a.hi);
        assert!(a.lo >= -0.01 && a.hi <= 0.06);
        // Mean 0.0317, sd 0.0264, se 0.0108: the interval is about mean ± 2 se, above 0.
        assert!(a.lo > 0.0 && a.lo < 0.02 && a.hi > 0.04, "{a}");
        assert_eq!(a.outcome(), Outcome::Win);
        assert!(bootstrap_mean(&[], 10, 0.95, 0).is_none());
        assert!(bootstrap_mean(&[1.0], 0, 0.95, 0).is_none());
        assert!(bootstrap_mean(&[1.0], 10, 1.0, 0).is_none());
    }

    #[test]
    fn paired_differences_match_keys() {
        let daad = [(("a", 0), 0.8), (("a", 1), 0.9), (("b", 0), 0.7)];
        let ae = [(("a", 1), 0.85), (("a", 0), 0.75), (("c", 0), 0.1)];
        let d = paired_differences(&daad, &ae);
        assert_eq!(d.len(), 2);
        assert!((d[0] - 0.05).abs() < 1e-12 && (d[1] - 0.05).abs() < 1e-12);
        let i = paired_interval(&daad, &ae).unwrap();
        assert_eq!(i.n, 2);
        assert_eq!(format!("{}", i.outcome()), "win");
    }
}
