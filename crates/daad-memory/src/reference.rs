//! Reference implementation of the sparse thresholded cosine attention in composed candle ops.
//!
//! Autograd comes for free; this is the ground truth the fused CPU op and the CUDA kernel are
//! tested against. The drop mask is computed from detached weights, so it is a constant for
//! the gradient (as the design asks).

use candle_core::{DType, Tensor, D};

use crate::config::{Shrink, Similarity};

/// Added to the squared L2 norm before the square root when normalising rows for the cosine
/// similarity: `x / sqrt(|x|^2 + NORM_EPS)` **(choice)**; keeps zero rows finite and smooth.
pub const NORM_EPS: f64 = 1e-8;

/// MemAE's epsilon in the hard shrinkage and in its L1 normalisation (`1e-12` in MemAE's code).
pub const SHRINK_EPS: f64 = 1e-12;

/// Rows of `x` (R, D) divided by `sqrt(|row|^2 + NORM_EPS)`.
pub fn normalize_rows(x: &Tensor) -> candle_core::Result<Tensor> {
    let norm = (x.sqr()?.sum_keepdim(D::Minus1)? + NORM_EPS)?.sqrt()?;
    x.broadcast_div(&norm)
}

/// Softmax over N of the cosine similarities divided by the temperature: p (M, N), before any drop.
pub fn addressing(q: &Tensor, bank: &Tensor, temperature: f64) -> candle_core::Result<Tensor> {
    addressing_with(q, bank, temperature, Similarity::Cosine)
}

/// Softmax over N of the similarities (cosine or dot product) divided by the temperature.
pub fn addressing_with(
    q: &Tensor,
    bank: &Tensor,
    temperature: f64,
    similarity: Similarity,
) -> candle_core::Result<Tensor> {
    let s = match similarity {
        Similarity::Cosine => normalize_rows(q)?.matmul(&normalize_rows(bank)?.t()?)?,
        Similarity::Dot => q.matmul(&bank.t()?)?,
    };
    let z = (s / temperature)?;
    // The max is a constant shift; detaching it keeps the graph small and the gradient exact.
    let max = z.max_keepdim(D::Minus1)?.detach();
    let e = z.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Applies the drop / shrinkage to softmax weights `p` (M, N) over `n` items.
pub fn shrink_weights(p: &Tensor, shrink: Shrink) -> candle_core::Result<Tensor> {
    let n = p.dim(D::Minus1)?;
    let threshold = 1.0 / n as f64;
    match shrink {
        Shrink::Renormalize => {
            let mask = p.detach().ge(threshold)?.to_dtype(p.dtype())?;
            let kept = (p * mask)?;
            kept.broadcast_div(&kept.sum_keepdim(D::Minus1)?)
        }
        Shrink::Drop => {
            let mask = p.detach().ge(threshold)?.to_dtype(p.dtype())?;
            p * mask
        }
        Shrink::HardShrink { lambda } => {
            let shifted = (p - lambda)?;
            let h = (shifted.relu()? * p)?.div(&(shifted.abs()? + SHRINK_EPS)?)?;
            let l1 = h.sum_keepdim(D::Minus1)?.maximum(SHRINK_EPS)?;
            h.broadcast_div(&l1)
        }
    }
}

/// The whole op in candle ops: `(w M, w)` for queries `q` (M, D) and bank (N, D).
pub fn sparse_attention(
    q: &Tensor,
    bank: &Tensor,
    shrink: Shrink,
    temperature: f64,
) -> candle_core::Result<(Tensor, Tensor)> {
    sparse_attention_with(q, bank, shrink, temperature, Similarity::Cosine)
}

/// [`sparse_attention`] with a choice of similarity (the only implementation of [`Similarity::Dot`]).
pub fn sparse_attention_with(
    q: &Tensor,
    bank: &Tensor,
    shrink: Shrink,
    temperature: f64,
    similarity: Similarity,
) -> candle_core::Result<(Tensor, Tensor)> {
    let p = addressing_with(q, bank, temperature, similarity)?;
    let w = shrink_weights(&p, shrink)?;
    let out = w.matmul(bank)?;
    Ok((out, w))
}

/// Whether the reference supports this dtype (float types only).
pub(crate) fn supports(dtype: DType) -> bool {
    dtype.is_float()
}
