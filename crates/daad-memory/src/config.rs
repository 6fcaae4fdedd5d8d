//! Configuration of the block-wise memory: division rates, shrinkage, temperature, backend.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Division rates (r_h, r_w, r_c): the feature map is cut into r_h x r_w x r_c blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    /// Blocks along the height (r_h).
    pub h: usize,
    /// Blocks along the width (r_w).
    pub w: usize,
    /// Blocks along the channels (r_c).
    pub c: usize,
}

impl Default for Rates {
    /// The paper's best setting, (8, 8, 1).
    fn default() -> Self {
        Rates { h: 8, w: 8, c: 1 }
    }
}

impl Rates {
    /// Rates (h, w, c).
    pub fn new(h: usize, w: usize, c: usize) -> Self {
        Rates { h, w, c }
    }

    /// Number of blocks (queries) per sample, Q = r_h * r_w * r_c.
    pub fn blocks(&self) -> usize {
        self.h * self.w * self.c
    }

    /// Checks that the rates divide a (C, H, W) feature map; the error names both shapes.
    pub fn check(&self, channels: usize, height: usize, width: usize) -> Result<()> {
        let ok = self.h > 0
            && self.w > 0
            && self.c > 0
            && height.is_multiple_of(self.h)
            && width.is_multiple_of(self.w)
            && channels.is_multiple_of(self.c);
        if ok {
            Ok(())
        } else {
            Err(Error::RatesDoNotDivide { rates: *self, channels, height, width })
        }
    }

    /// Item dimension D = (C/r_c)(H/r_h)(W/r_w) for a (C, H, W) map (rates must divide it).
    pub fn item_dim(&self, channels: usize, height: usize, width: usize) -> Result<usize> {
        self.check(channels, height, width)?;
        Ok((channels / self.c) * (height / self.h) * (width / self.w))
    }
}

/// What happens to addressing weights below the threshold 1/N.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub enum Shrink {
    /// **(choice, default)** drop weights below 1/N, then renormalise the kept ones to sum to 1.
    #[default]
    Renormalize,
    /// Drop weights below 1/N and leave the others as they are (rows sum to at most 1).
    Drop,
    /// MemAE's hard shrinkage instead of the 1/N drop:
    /// `w' = relu(w - lambda) * w / (|w - lambda| + 1e-12)`, then `w' / max(sum w', 1e-12)`.
    /// MemAE suggests lambda in [1/N, 3/N]; [`Shrink::memae`] gives lambda = 1/N **(choice)**.
    HardShrink {
        /// The shrinkage threshold.
        lambda: f64,
    },
}

impl Shrink {
    /// MemAE's hard shrinkage with lambda = 1/N **(choice)**.
    pub fn memae(n_items: usize) -> Self {
        Shrink::HardShrink { lambda: 1.0 / n_items.max(1) as f64 }
    }
}

/// How a query is compared with the memory items before the softmax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Similarity {
    /// Cosine similarity (the paper's, eq. 2): scores in [-1, 1], so at temperature 1 the
    /// weights of one query differ by at most e^2.
    #[default]
    Cosine,
    /// Plain dot product q . m (MemAE's code, `F.linear(input, weight)`): unbounded scores.
    Dot,
}

impl Similarity {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Similarity::Cosine => "cosine",
            Similarity::Dot => "dot",
        }
    }
}

/// Which implementation of the sparse attention runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Backend {
    /// FusedCpu on CPU, Cuda on CUDA (when built with feature `cuda`), Reference otherwise.
    #[default]
    Auto,
    /// Composed candle ops (autograd for free); the ground truth.
    Reference,
    /// The fused CPU custom op (rayon + gemm), forward and backward.
    FusedCpu,
    /// The CUDA kernel (feature `cuda`).
    Cuda,
}

/// Configuration of one [`crate::BlockMemory`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryConfig {
    /// Number of memory items N (default 500, the paper's).
    pub n_items: usize,
    /// Division rates (default (8, 8, 1)).
    pub rates: Rates,
    /// Shrinkage of the addressing weights (default [`Shrink::Renormalize`]).
    pub shrink: Shrink,
    /// Softmax temperature (default 1: the paper has none).
    pub temperature: f64,
    /// Implementation to run (default [`Backend::Auto`]).
    pub backend: Backend,
    /// Query-item similarity (default cosine, the paper's). Only the reference implementation
    /// has [`Similarity::Dot`]: with it every backend falls back to the reference (see
    /// [`crate::BlockMemory::forward_with_weights`]). Absent in configs written before it
    /// existed, which load as cosine.
    #[serde(default)]
    pub similarity: Similarity,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            n_items: 500,
            rates: Rates::default(),
            shrink: Shrink::default(),
            temperature: 1.0,
            backend: Backend::Auto,
            similarity: Similarity::Cosine,
        }
    }
}

impl MemoryConfig {
    /// Checks the values that do not depend on a feature shape.
    pub fn validate(&self) -> Result<()> {
        if self.n_items == 0 {
            return Err(Error::InvalidConfig(
                "n_items is 0; the bank needs at least one item (the paper uses 500)".into(),
            ));
        }
        check_temperature(self.temperature)?;
        check_shrink(self.shrink)
    }
}

pub(crate) fn check_temperature(t: f64) -> Result<()> {
    if !(t.is_finite() && t > 0.0) {
        return Err(Error::InvalidConfig(format!(
            "temperature {t} must be finite and > 0 (1.0 is the paper's)"
        )));
    }
    Ok(())
}

pub(crate) fn check_shrink(s: Shrink) -> Result<()> {
    if let Shrink::HardShrink { lambda } = s {
        if !(lambda.is_finite() && (0.0..=1.0).contains(&lambda)) {
            return Err(Error::InvalidConfig(format!(
                "hard-shrink lambda {lambda} must be in [0, 1] (MemAE uses 1/N to 3/N)"
            )));
        }
    }
    Ok(())
}
