//! Reductions shared by the conv bias gradient and the fused batch norm.

use rayon::prelude::*;

/// `db[c] = sum over batch and positions of x[b, c, :]` for `x (B, C, L)`.
pub(crate) fn channel_sum(x: &[f32], batch: usize, c: usize) -> Vec<f32> {
    let l = x.len() / (batch * c).max(1);
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let mut s = 0f64;
            for b in 0..batch {
                s += lane_sum(&x[(b * c + ch) * l..(b * c + ch + 1) * l]) as f64;
            }
            s as f32
        })
        .collect()
}

/// Sum with 8 independent lanes so the compiler vectorises it.
#[inline]
pub(crate) fn lane_sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for ch in chunks {
        for i in 0..8 {
            acc[i] += ch[i];
        }
    }
    acc.iter().sum::<f32>() + rest.iter().sum::<f32>()
}
