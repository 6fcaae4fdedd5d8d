//! Row kernels and the two cores of the fused op (forward and backward over a query matrix).
//!
//! Products go through `gemm` (rayon-parallel, any strides), the two forward ones optionally
//! through daad-nn's bf16 kernel; everything per row (softmax, drop, renormalisation and their
//! backward) runs in one pass per row with rayon.

use std::any::TypeId;

use candle_core::CpuStorage;
use daad_nn::gemm::Mat;
use daad_nn::Precision;
use gemm::Parallelism;
use rayon::prelude::*;

use crate::config::Shrink;
use crate::reference::{NORM_EPS, SHRINK_EPS};

/// Float types the fused kernels run on (f32, f64).
pub(crate) trait Real:
    Copy
    + Send
    + Sync
    + 'static
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::AddAssign
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn slice(s: &CpuStorage) -> candle_core::Result<&[Self]>;
    fn storage(v: Vec<Self>) -> CpuStorage;
}

macro_rules! real {
    ($t:ty, $variant:ident) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn slice(s: &CpuStorage) -> candle_core::Result<&[Self]> {
                s.as_slice::<$t>()
            }
            fn storage(v: Vec<Self>) -> CpuStorage {
                CpuStorage::$variant(v)
            }
        }
    };
}
real!(f32, F32);
real!(f64, F64);

fn par() -> Parallelism {
    Parallelism::Rayon(rayon::current_num_threads().max(1))
}

/// `sqrt(|row|^2 + NORM_EPS)` for each row of `x` (rows, d), accumulated in f64.
pub(crate) fn row_norms<T: Real>(x: &[T], d: usize) -> Vec<f64> {
    x.par_chunks(d).map(row_norm).collect()
}

/// `sqrt(|r|^2 + NORM_EPS)`, accumulated in f64.
pub(crate) fn row_norm<T: Real>(r: &[T]) -> f64 {
    (r.iter().map(|v| v.to_f64() * v.to_f64()).sum::<f64>() + NORM_EPS).sqrt()
}

/// `dst (m x n) := beta_dst * dst + lhs (m x k) * rhs (k x n)`, all strides in elements.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_rs: usize,
    accumulate: bool,
    lhs: *const T,
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: *const T,
    (rhs_rs, rhs_cs): (usize, usize),
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        lhs,
        lhs_cs as isize,
        lhs_rs as isize,
        rhs,
        rhs_cs as isize,
        rhs_rs as isize,
        if accumulate { T::ONE } else { T::ZERO },
        T::ONE,
        false,
        false,
        false,
        par(),
    )
}

/// `v` as f32 when `T` is f32 (the bf16 products take f32 operands only).
fn as_f32<T: Real>(v: &[T]) -> Option<&[f32]> {
    // SAFETY: the cast happens only when T is f32, so layout and validity are the same.
    (TypeId::of::<T>() == TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<f32>(), v.len()) })
}

/// [`as_f32`] for a mutable slice.
fn as_f32_mut<T: Real>(v: &mut [T]) -> Option<&mut [f32]> {
    // SAFETY: as in as_f32; the borrow of `v` moves into the result.
    (TypeId::of::<T>() == TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<f32>(), v.len()) })
}

/// A forward product `dst (m x n) = lhs (m x k) @ rhs (k x n)` (strides `(rs, cs)`), at
/// `precision`: bf16 rounds the operands and accumulates in f32 (daad-nn's kernel; f32 only,
/// which [`super::forward`] checks before the kernels run).
fn forward_product<T: Real>(
    precision: Precision,
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    (lhs, lhs_strides): (&[T], (usize, usize)),
    (rhs, rhs_strides): (&[T], (usize, usize)),
) {
    if let (Precision::Bf16, Some(l), Some(r)) = (precision, as_f32(lhs), as_f32(rhs)) {
        let dst = as_f32_mut(dst).expect("dst has the operands' type");
        let (a, b) = (
            Mat { data: l, rs: lhs_strides.0, cs: lhs_strides.1 },
            Mat { data: r, rs: rhs_strides.0, cs: rhs_strides.1 },
        );
        daad_nn::gemm::matmul(precision, (m, n, k), dst, false, a, b, rayon::current_num_threads());
        return;
    }
    debug_assert!(dst.len() >= m * n);
    debug_assert!(lhs.len() > (m - 1) * lhs_strides.0 + (k - 1) * lhs_strides.1);
    debug_assert!(rhs.len() > (k - 1) * rhs_strides.0 + (n - 1) * rhs_strides.1);
    // SAFETY: the callers size every buffer for its (rows, cols, strides) (asserted above in
    // debug builds); dst does not alias the operands (a distinct &mut slice).
    unsafe {
        matmul(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            n,
            false,
            lhs.as_ptr(),
            lhs_strides,
            rhs.as_ptr(),
            rhs_strides,
        )
    }
}

/// Turns the softmax `p` of one row into shrunk weights `w`.
pub(crate) fn shrink_row<T: Real>(p: &[T], w: &mut [T], shrink: Shrink) {
    let n = p.len();
    let thr = T::from_f64(1.0 / n as f64);
    match shrink {
        Shrink::Renormalize | Shrink::Drop => {
            let mut kept = T::ZERO;
            for (wj, &pj) in w.iter_mut().zip(p) {
                *wj = if pj >= thr { pj } else { T::ZERO };
                kept += *wj;
            }
            if shrink == Shrink::Renormalize {
                // The largest p is >= 1/N, so `kept` > 0.
                let inv = T::ONE / kept;
                w.iter_mut().for_each(|v| *v = *v * inv);
            }
        }
        Shrink::HardShrink { lambda } => {
            let lam = T::from_f64(lambda);
            let eps = T::from_f64(SHRINK_EPS);
            let mut sum = T::ZERO;
            for (wj, &pj) in w.iter_mut().zip(p) {
                let a = pj - lam;
                *wj = if a > T::ZERO { a * pj / (a + eps) } else { T::ZERO };
                sum += *wj;
            }
            let denom = if sum > eps { sum } else { eps };
            w.iter_mut().for_each(|v| *v = *v / denom);
        }
    }
}

/// Backward of shrink + softmax for one row: `g` holds dL/dw on entry and dL/dz on exit
/// (z = the logits s / T), given `p` and `w` of the forward.
pub(crate) fn shrink_softmax_bwd_row<T: Real>(g: &mut [T], p: &[T], w: &[T], shrink: Shrink) {
    let n = p.len();
    let thr = T::from_f64(1.0 / n as f64);
    // g := dL/dp
    match shrink {
        Shrink::Renormalize => {
            let mut kept = T::ZERO;
            let mut gw = T::ZERO;
            for j in 0..n {
                if p[j] >= thr {
                    kept += p[j];
                    gw += g[j] * w[j];
                }
            }
            let inv = T::ONE / kept;
            for j in 0..n {
                g[j] = if p[j] >= thr { (g[j] - gw) * inv } else { T::ZERO };
            }
        }
        Shrink::Drop => {
            for j in 0..n {
                if p[j] < thr {
                    g[j] = T::ZERO;
                }
            }
        }
        Shrink::HardShrink { lambda } => {
            let lam = T::from_f64(lambda);
            let eps = T::from_f64(SHRINK_EPS);
            let mut sum = T::ZERO;
            let mut gy = T::ZERO;
            for j in 0..n {
                let a = p[j] - lam;
                if a > T::ZERO {
                    sum += a * p[j] / (a + eps);
                }
                gy += g[j] * w[j];
            }
            let (denom, gy) = if sum > eps { (sum, gy) } else { (eps, T::ZERO) };
            let inv = T::ONE / denom;
            for j in 0..n {
                let a = p[j] - lam;
                g[j] = if a > T::ZERO {
                    let b = a + eps;
                    let dh = (p[j] * eps + a * a + a * eps) / (b * b);
                    (g[j] - gy) * inv * dh
                } else {
                    T::ZERO
                };
            }
        }
    }
    // softmax backward: dz = p (dp - <dp, p>)
    let mut c = T::ZERO;
    for j in 0..n {
        c += g[j] * p[j];
    }
    for j in 0..n {
        g[j] = p[j] * (g[j] - c);
    }
}

/// `p = softmax(s * inv_t)` for one row. Forward and backward both call this, so the drop
/// mask recomputed in backward is bit-identical to the forward's.
pub(crate) fn softmax_row<T: Real>(s: &[T], inv_t: T, p: &mut [T]) {
    let mut max = T::from_f64(f64::NEG_INFINITY);
    for (pj, &sj) in p.iter_mut().zip(s) {
        *pj = sj * inv_t;
        if *pj > max {
            max = *pj;
        }
    }
    let mut sum = T::ZERO;
    for pj in p.iter_mut() {
        *pj = (*pj - max).exp();
        sum += *pj;
    }
    let inv = T::ONE / sum;
    p.iter_mut().for_each(|v| *v = *v * inv);
}

/// Forward over queries `q` (m, d) with row norms `nq` and `bank` (n, d): fills `out` (m, d)
/// = w bank, `w` (m, n) (shrunk weights) and `s` (m, n) (cosine similarities, kept for
/// backward).
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_core<T: Real>(
    (q, nq): (&[T], &[f64]),
    bank: &[T],
    (m, n, d): (usize, usize, usize),
    shrink: Shrink,
    temperature: f64,
    precision: Precision,
    out: &mut [T],
    w: &mut [T],
    s: &mut [T],
) {
    debug_assert!(q.len() == m * d && bank.len() == n * d && out.len() == m * d);
    debug_assert!(w.len() == m * n && s.len() == m * n && nq.len() == m);
    let inv_nm: Vec<T> = row_norms(bank, d).iter().map(|v| T::from_f64(1.0 / v)).collect();
    // raw dots q M^T into s, then cosine, softmax and shrinkage row by row
    forward_product(precision, (m, n, d), s, (q, (d, 1)), (bank, (1, d)));
    let inv_t = T::from_f64(1.0 / temperature);
    s.par_chunks_mut(n).zip(w.par_chunks_mut(n)).zip(nq.par_iter()).for_each_init(
        || vec![T::ZERO; n],
        |p, ((s, w), &nqi)| {
            let inq = T::from_f64(1.0 / nqi);
            for (sj, &inm) in s.iter_mut().zip(&inv_nm) {
                *sj = *sj * inq * inm;
            }
            softmax_row(s, inv_t, p);
            shrink_row(p, w, shrink);
        },
    );
    forward_product(precision, (m, d, n), out, (w, (n, 1)), (bank, (d, 1)));
}

/// Backward over queries. `qg` (2m, d) stacks the queries and the upstream gradient of the
/// output (one buffer, so the bank gradient is a single product); `nq` are the query norms,
/// `(w, s)` the forward's weights and similarities, `g_w` (m, n) the upstream gradient of the
/// weights. Fills `gq` (m, d) and `gbank` (n, d).
///
/// With a = q/|q|, b = M/|M|, s = a.b and gs = dL/ds:
/// `dL/dq_i = sum_j gs_ij M_j/(|q_i||M_j|) - q_i c_i/|q_i|^2`, `c_i = sum_j gs_ij s_ij` (and
/// the same for the bank with column sums), so the normalisation backward needs no extra pass over (m, d) or (n, d) buffers:
/// the correction is written first and the products accumulate onto it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_core<T: Real>(
    (qg, nq): (&[T], &[f64]),
    bank: &[T],
    (m, n, d): (usize, usize, usize),
    shrink: Shrink,
    temperature: f64,
    (w, s): (&[T], &[T]),
    g_w: &[T],
    gq: &mut [T],
    gbank: &mut [T],
) {
    let (q, g_out) = qg.split_at(m * d);
    let nm = row_norms(bank, d);
    // lg = [g ; W] (2m, n) with g = dL/dw = G_out M^T + G_w, turned into the scaled dL/ds below
    let mut lg = vec![T::ZERO; 2 * m * n];
    lg[..m * n].copy_from_slice(g_w);
    lg[m * n..].copy_from_slice(w);
    unsafe {
        matmul(m, n, d, lg.as_mut_ptr(), n, true, g_out.as_ptr(), (d, 1), bank.as_ptr(), (1, d));
    }
    let inv_t = T::from_f64(1.0 / temperature);
    let inv_nm: Vec<f64> = nm.iter().map(|v| 1.0 / v).collect();
    // per row: dL/ds (kept in `gs` scaled by s for the column sums) and c_i
    let mut gss = vec![T::ZERO; m * n];
    let c: Vec<f64> = lg[..m * n]
        .par_chunks_mut(n)
        .zip(gss.par_chunks_mut(n))
        .zip(w.par_chunks(n).zip(s.par_chunks(n)))
        .zip(nq.par_iter())
        .map_init(
            || vec![T::ZERO; n],
            |p, (((gr, gsr), (w, s)), &nqi)| {
                softmax_row(s, inv_t, p);
                shrink_softmax_bwd_row(gr, p, w, shrink);
                let mut ci = 0f64;
                for j in 0..n {
                    let gs = gr[j] * inv_t;
                    gsr[j] = gs * s[j];
                    ci += gsr[j].to_f64();
                    gr[j] = gs * T::from_f64(inv_nm[j] / nqi);
                }
                ci
            },
        )
        .collect();
    let mut e = vec![0f64; n];
    for row in gss.chunks(n) {
        for (ej, v) in e.iter_mut().zip(row) {
            *ej += v.to_f64();
        }
    }
    // corrections first, products accumulate onto them
    gq.par_chunks_mut(d).zip(q.par_chunks(d)).zip(c.par_iter().zip(nq.par_iter())).for_each(
        |((gx, x), (&ci, &nx))| {
            let k = T::from_f64(-ci / (nx * nx));
            gx.iter_mut().zip(x).for_each(|(a, &b)| *a = b * k);
        },
    );
    gbank.par_chunks_mut(d).zip(bank.par_chunks(d)).zip(e.par_iter().zip(nm.par_iter())).for_each(
        |((gx, x), (&ej, &nx))| {
            let k = T::from_f64(-ej / (nx * nx));
            gx.iter_mut().zip(x).for_each(|(a, &b)| *a = b * k);
        },
    );
    unsafe {
        // dq += G1 M ; dM += [G1 ; W]^T [Q ; G_out]
        matmul(m, d, n, gq.as_mut_ptr(), d, true, lg.as_ptr(), (n, 1), bank.as_ptr(), (d, 1));
        matmul(n, d, 2 * m, gbank.as_mut_ptr(), d, true, lg.as_ptr(), (1, n), qg.as_ptr(), (d, 1));
    }
}
