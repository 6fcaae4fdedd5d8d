//! The kernels with the whole batch folded into one product (`N = B*OH*OW`), faster than one
//! skinny product per item when the maps are small.

use rayon::prelude::*;

use crate::Precision;

use super::geom::Geom;
use super::matmul::{matmul, threads, Mat};
use super::patches::{col2im_row, im2col_all};

/// Per-item spatial size (OH*OW) below which the batched layout is used: one gemm over the whole
/// batch (`N = B*OH*OW`) instead of one skinny gemm per item. `DAAD_NN_BATCHED_MAX_COLS`
/// overrides it (for benchmarking).
pub(super) fn batched(g: &Geom, batch: usize) -> bool {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let limit = *LIMIT.get_or_init(|| {
        std::env::var("DAAD_NN_BATCHED_MAX_COLS").ok().and_then(|v| v.parse().ok()).unwrap_or(2048)
    });
    batch > 1 && g.cols() < limit
}

/// `(B, M, N)` -> `(M, B*N)`.
fn to_batched(x: &[f32], batch: usize, m: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(batch * n).enumerate().for_each(|(r, dst)| {
        for b in 0..batch {
            dst[b * n..(b + 1) * n].copy_from_slice(&x[(b * m + r) * n..(b * m + r + 1) * n]);
        }
    });
    out
}

/// Batched [`im2col_gemm`].
#[allow(clippy::too_many_arguments)]
pub(super) fn im2col_gemm_batched(
    g: &Geom,
    batch: usize,
    img: &[f32],
    w: &[f32],
    m: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
    prec: Precision,
) {
    let (kd, n) = (g.rows(), g.cols());
    let bn = batch * n;
    let cols = im2col_all(g, batch, img);
    let mut res = vec![0f32; m * bn];
    let wm = Mat { data: w, rs: kd, cs: 1 };
    let cm = Mat { data: &cols, rs: bn, cs: 1 };
    matmul(prec, (m, bn, kd), &mut res, false, wm, cm, threads());
    out.par_chunks_mut(n).enumerate().for_each(|(p, o)| {
        let (b, r) = (p / m, p % m);
        let src = &res[r * bn + b * n..r * bn + (b + 1) * n];
        match bias {
            Some(bias) => o.iter_mut().zip(src).for_each(|(o, v)| *o = v + bias[r]),
            None => o.copy_from_slice(src),
        }
    });
}

/// Batched [`gemm_col2im`].
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_col2im_batched(
    g: &Geom,
    batch: usize,
    cols: &[f32],
    w: &[f32],
    m: usize,
    bias: Option<&[f32]>,
    img: &mut [f32],
    prec: Precision,
) {
    let (k, kd, n, hw) = (g.p.k, g.rows(), g.cols(), g.h * g.w);
    let bn = batch * n;
    let ct = to_batched(cols, batch, m, n);
    let mut dcols = vec![0f32; kd * bn];
    let wt = Mat { data: w, rs: 1, cs: kd };
    let cm = Mat { data: &ct, rs: bn, cs: 1 };
    matmul(prec, (kd, bn, m), &mut dcols, false, wt, cm, threads());
    img.par_chunks_mut(hw).enumerate().for_each(|(p, plane)| {
        let (b, c) = (p / g.c, p % g.c);
        plane.fill(bias.map_or(0.0, |bias| bias[c]));
        for kh in 0..k {
            for kw in 0..k {
                let row = (c * k + kh) * k + kw;
                col2im_row(g, &dcols[row * bn + b * n..row * bn + (b + 1) * n], kh, kw, plane);
            }
        }
    });
}

/// Batched [`weight_grad`].
pub(super) fn weight_grad_batched(
    g: &Geom,
    batch: usize,
    img: &[f32],
    cols: &[f32],
    m: usize,
) -> Vec<f32> {
    let (kd, n) = (g.rows(), g.cols());
    let bn = batch * n;
    let patches = im2col_all(g, batch, img);
    let ct = to_batched(cols, batch, m, n);
    let mut dw = vec![0f32; m * kd];
    matmul(
        Precision::F32,
        (m, kd, bn),
        &mut dw,
        false,
        Mat { data: &ct, rs: bn, cs: 1 },
        Mat { data: &patches, rs: 1, cs: bn },
        threads(),
    );
    dw
}
