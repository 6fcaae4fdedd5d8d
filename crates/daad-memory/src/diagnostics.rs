//! How a memory bank is addressed: per scale, the fraction of items a query keeps after the 1/N
//! drop, the entropy of its kept weights, and how many distinct items a whole epoch uses.
//!
//! The paper says that after the drop "only a small number of memory items can be addressed";
//! these numbers show whether that holds for a trained model. They are computed from the
//! addressing weights (M, N) that [`crate::BlockMemory::forward_with_weights`] returns.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Addressing statistics of one memory bank over a set of queries.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryDiagnostics {
    /// Mean over queries of (items with a non-zero weight) / N: 1/N means one item per query,
    /// 1 means nothing was dropped.
    pub kept_fraction: f64,
    /// Mean over queries of the entropy (nats) of the kept weights, renormalised to sum to 1:
    /// 0 for one item, ln(k) for k equal weights.
    pub entropy: f64,
    /// Distinct items that got a non-zero weight from at least one query.
    pub items_used: usize,
    /// Items in the bank (N).
    pub n_items: usize,
    /// Queries seen.
    pub queries: usize,
}

impl MemoryDiagnostics {
    /// `kept 4.2 % of 500, entropy 2.31 nats, 380 items used`.
    pub fn describe(&self) -> String {
        format!(
            "kept {:.1} % of {}, entropy {:.2} nats, {} items used",
            100.0 * self.kept_fraction,
            self.n_items,
            self.entropy,
            self.items_used
        )
    }
}

/// [`MemoryDiagnostics`] of the memory at one scale of a model (f1..f4 = 1..4).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleDiagnostics {
    /// The scale, 1-based (f1..f4).
    pub scale: usize,
    /// Its statistics.
    #[serde(flatten)]
    pub stats: MemoryDiagnostics,
}

impl ScaleDiagnostics {
    /// One line per scale: `f2: kept 4.2 % of 500, ...`.
    pub fn describe_all(all: &[ScaleDiagnostics]) -> String {
        all.iter()
            .map(|d| format!("f{}: {}", d.scale, d.stats.describe()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Accumulates [`MemoryDiagnostics`] over batches (e.g. one epoch) of weight matrices.
#[derive(Clone, Debug)]
pub struct DiagnosticsAccumulator {
    used: Vec<bool>,
    queries: usize,
    kept_sum: f64,
    entropy_sum: f64,
}

impl DiagnosticsAccumulator {
    /// An empty accumulator for a bank of `n_items` items.
    pub fn new(n_items: usize) -> Self {
        Self { used: vec![false; n_items], queries: 0, kept_sum: 0.0, entropy_sum: 0.0 }
    }

    /// Items in the bank (N).
    pub fn n_items(&self) -> usize {
        self.used.len()
    }

    /// Adds the rows of a row-major (M, N) weight matrix given as a slice.
    pub fn update_rows(&mut self, weights: &[f32]) -> Result<()> {
        let n = self.used.len();
        if n == 0 || !weights.len().is_multiple_of(n) {
            return Err(Error::Shape {
                what: "diagnostics weights",
                expected: format!("(M, {n}) values"),
                got: vec![weights.len()],
            });
        }
        for row in weights.chunks_exact(n) {
            let total: f64 = row.iter().map(|&w| w.max(0.0) as f64).sum();
            let mut kept = 0usize;
            let mut entropy = 0.0;
            for (j, &w) in row.iter().enumerate() {
                if w > 0.0 {
                    kept += 1;
                    self.used[j] = true;
                    let p = w as f64 / total;
                    entropy -= p * p.ln();
                }
            }
            self.kept_sum += kept as f64 / n as f64;
            self.entropy_sum += entropy;
            self.queries += 1;
        }
        Ok(())
    }

    /// Adds a (M, N) weight tensor (any float dtype, any device: it is copied to the host).
    pub fn update(&mut self, weights: &Tensor) -> Result<()> {
        let (_, n) = weights.dims2()?;
        if n != self.used.len() {
            return Err(Error::Shape {
                what: "diagnostics weights",
                expected: format!("(M, {})", self.used.len()),
                got: weights.dims().to_vec(),
            });
        }
        let flat = weights.detach().to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        self.update_rows(&flat)
    }

    /// The statistics so far (`None` before any query).
    pub fn finish(&self) -> Option<MemoryDiagnostics> {
        (self.queries > 0).then(|| MemoryDiagnostics {
            kept_fraction: self.kept_sum / self.queries as f64,
            entropy: self.entropy_sum / self.queries as f64,
            items_used: self.used.iter().filter(|&&u| u).count(),
            n_items: self.used.len(),
            queries: self.queries,
        })
    }
}

/// The statistics of one (M, N) weight matrix.
pub fn diagnostics(weights: &Tensor) -> Result<MemoryDiagnostics> {
    let (m, n) = weights.dims2()?;
    let mut acc = DiagnosticsAccumulator::new(n);
    acc.update(weights)?;
    acc.finish().ok_or(Error::Shape {
        what: "diagnostics weights",
        expected: "at least one row".into(),
        got: vec![m, n],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn hand_made_weights() -> Result<()> {
        // Row 0 keeps one item (entropy 0), row 1 two equal ones (ln 2), row 2 all four equal
        // (ln 4); items 0..3 are all used.
        let w = Tensor::new(
            &[[1f32, 0., 0., 0.], [0., 0.5, 0.5, 0.], [0.25, 0.25, 0.25, 0.25]],
            &Device::Cpu,
        )?;
        let d = diagnostics(&w)?;
        assert_eq!(d.queries, 3);
        assert_eq!(d.n_items, 4);
        assert_eq!(d.items_used, 4);
        assert!((d.kept_fraction - (0.25 + 0.5 + 1.0) / 3.0).abs() < 1e-12);
        assert!((d.entropy - (0.0 + 2f64.ln() + 4f64.ln()) / 3.0).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn accumulates_distinct_items_and_renormalises_dropped_rows() -> Result<()> {
        let mut acc = DiagnosticsAccumulator::new(5);
        assert!(acc.finish().is_none());
        // A Shrink::Drop row (sums to 0.6): entropy of (0.2, 0.4)/0.6.
        acc.update_rows(&[0.0, 0.2, 0.0, 0.4, 0.0])?;
        acc.update_rows(&[0.0, 1.0, 0.0, 0.0, 0.0])?;
        let d = acc.finish().unwrap();
        assert_eq!(d.items_used, 2);
        let (a, b) = (1.0f64 / 3.0, 2.0f64 / 3.0);
        assert!((d.entropy - (-(a * a.ln() + b * b.ln())) / 2.0).abs() < 1e-6);
        assert!((d.kept_fraction - (0.4 + 0.2) / 2.0).abs() < 1e-12);
        assert!(acc.update_rows(&[1.0, 0.0]).is_err());
        Ok(())
    }
}
