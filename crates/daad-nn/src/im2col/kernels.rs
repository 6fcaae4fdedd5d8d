//! The three kernels every convolution, transposed convolution and their gradients reduce to,
//! one batch item per product (see [`super::batched`] for small maps).

use rayon::prelude::*;

use crate::Precision;

use super::batched::{batched, gemm_col2im_batched, im2col_gemm_batched, weight_grad_batched};
use super::geom::Geom;
use super::matmul::{matmul, plan, Mat, Plan};
use super::patches::{col2im_add, im2col};

/// Fills each `m`-row block of one output item with the per-row bias (or zeros).
pub(super) fn init_rows(out: &mut [f32], rows: usize, bias: Option<&[f32]>) {
    match bias {
        None => out.fill(0.0),
        Some(b) => {
            let per = out.len() / rows;
            for (r, chunk) in out.chunks_exact_mut(per).enumerate() {
                chunk.fill(b[r]);
            }
        }
    }
}

/// `out[b] (M, OH*OW) = W (M, C*k*k) @ im2col(img[b]) (+ bias per row)` for every batch item,
/// the products at `prec`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn im2col_gemm(
    g: &Geom,
    batch: usize,
    img: &[f32],
    w: &[f32],
    m: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
    prec: Precision,
) {
    if batched(g, batch) {
        return im2col_gemm_batched(g, batch, img, w, m, bias, out, prec);
    }
    let (kd, n) = (g.rows(), g.cols());
    let il = g.img_len();
    let wm = Mat { data: w, rs: kd, cs: 1 };
    let one = |b: usize, out_b: &mut [f32], buf: &mut Vec<f32>, par: usize| {
        let x = &img[b * il..(b + 1) * il];
        if bias.is_some() {
            init_rows(out_b, m, bias);
        }
        let cols: &[f32] = if g.identity() {
            x
        } else {
            buf.resize(kd * n, 0.0);
            im2col(g, x, buf);
            buf
        };
        let cm = Mat { data: cols, rs: n, cs: 1 };
        matmul(prec, (m, n, kd), out_b, bias.is_some(), wm, cm, par);
    };
    match plan(batch) {
        Plan::PerItem => out
            .par_chunks_mut(m * n)
            .enumerate()
            .for_each_init(Vec::new, |buf, (b, o)| one(b, o, buf, 1)),
        Plan::InsideGemm(t) => {
            let mut buf = Vec::new();
            for (b, o) in out.chunks_mut(m * n).enumerate() {
                one(b, o, &mut buf, t);
            }
        }
    }
}

/// `img[b] = col2im(W^T @ cols[b]) (+ bias per image channel)` for every batch item;
/// `cols` is `(B, M, OH*OW)`, `W` is `(M, C*k*k)`; the products at `prec`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_col2im(
    g: &Geom,
    batch: usize,
    cols: &[f32],
    w: &[f32],
    m: usize,
    bias: Option<&[f32]>,
    img: &mut [f32],
    prec: Precision,
) {
    if batched(g, batch) {
        return gemm_col2im_batched(g, batch, cols, w, m, bias, img, prec);
    }
    let (kd, n) = (g.rows(), g.cols());
    let wt = Mat { data: w, rs: 1, cs: kd };
    let one = |b: usize, img_b: &mut [f32], buf: &mut Vec<f32>, par: usize| {
        let cb = Mat { data: &cols[b * m * n..(b + 1) * m * n], rs: n, cs: 1 };
        init_rows(img_b, g.c, bias);
        if g.identity() {
            matmul(prec, (kd, n, m), img_b, true, wt, cb, par);
        } else {
            buf.resize(kd * n, 0.0);
            matmul(prec, (kd, n, m), buf, false, wt, cb, par);
            col2im_add(g, buf, img_b);
        }
    };
    match plan(batch) {
        Plan::PerItem => img
            .par_chunks_mut(g.img_len())
            .enumerate()
            .for_each_init(Vec::new, |buf, (b, o)| one(b, o, buf, 1)),
        Plan::InsideGemm(t) => {
            let mut buf = Vec::new();
            for (b, o) in img.chunks_mut(g.img_len()).enumerate() {
                one(b, o, &mut buf, t);
            }
        }
    }
}

/// `dW (M, C*k*k) = sum_b cols[b] (M, OH*OW) @ im2col(img[b])^T` (always f32: training).
pub(crate) fn weight_grad(g: &Geom, batch: usize, img: &[f32], cols: &[f32], m: usize) -> Vec<f32> {
    if batched(g, batch) {
        return weight_grad_batched(g, batch, img, cols, m);
    }
    let (kd, n) = (g.rows(), g.cols());
    let il = g.img_len();
    let acc = |b: usize, dw: &mut [f32], buf: &mut Vec<f32>, first: bool, par: usize| {
        let x = &img[b * il..(b + 1) * il];
        let patches: &[f32] = if g.identity() {
            x
        } else {
            buf.resize(kd * n, 0.0);
            im2col(g, x, buf);
            buf
        };
        let a = Mat { data: &cols[b * m * n..(b + 1) * m * n], rs: n, cs: 1 };
        let bt = Mat { data: patches, rs: 1, cs: n };
        matmul(Precision::F32, (m, kd, n), dw, !first, a, bt, par);
    };
    let mut dw = vec![0f32; m * kd];
    match plan(batch) {
        Plan::PerItem => {
            let nt = rayon::current_num_threads().min(batch).max(1);
            let per = batch.div_ceil(nt);
            let parts: Vec<Vec<f32>> = (0..nt)
                .into_par_iter()
                .map(|t| {
                    let mut part = vec![0f32; m * kd];
                    let mut buf = Vec::new();
                    for (i, b) in (t * per..((t + 1) * per).min(batch)).enumerate() {
                        acc(b, &mut part, &mut buf, i == 0, 1);
                    }
                    part
                })
                .collect();
            for part in &parts {
                for (d, p) in dw.iter_mut().zip(part) {
                    *d += p;
                }
            }
        }
        Plan::InsideGemm(t) => {
            let mut buf = Vec::new();
            for b in 0..batch {
                acc(b, &mut dw, &mut buf, b == 0, t);
            }
        }
    }
    dw
}
