//! Fused CPU custom op: cosine similarities, softmax, drop, renormalisation and mixing in one
//! op, with its own backward (a second custom op), rayon over query rows and `gemm` for the
//! three products.
//!
//! The forward op returns one packed tensor (M, D + 2N) = `[out | w | p]`: the mixed queries,
//! the (shrunk) weights and the softmax before the drop. `p` is kept because the softmax
//! backward needs it at the dropped entries too; saving it avoids recomputing the (M, N, D)
//! similarity product in backward. Callers only see narrowed views of `out` and `w`.

use candle_core::{
    backend::BackendStorage, bail, CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Storage, Tensor,
};
use gemm::Parallelism;
use rayon::prelude::*;

use crate::config::Shrink;
use crate::error::Result;
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

fn contiguous<'a, T: Real>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&T::slice(s)?[a..b]),
        None => bail!("daad-memory fused op: {what} must be contiguous"),
    }
}

fn par() -> Parallelism {
    Parallelism::Rayon(rayon::current_num_threads().max(1))
}

/// `sqrt(|row|^2 + NORM_EPS)` for each row of `x` (rows, d), accumulated in f64.
fn row_norms<T: Real>(x: &[T], d: usize) -> Vec<f64> {
    x.par_chunks(d)
        .map(|r| (r.iter().map(|v| v.to_f64() * v.to_f64()).sum::<f64>() + NORM_EPS).sqrt())
        .collect()
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

/// Forward of the fused op: packed (m, d + 2n) = [out | w | p].
fn forward<T: Real>(
    q: &[T],
    bank: &[T],
    m: usize,
    n: usize,
    d: usize,
    shrink: Shrink,
    t: f64,
) -> Vec<T> {
    let stride = d + 2 * n;
    let mut packed = vec![T::ZERO; m * stride];
    let nq = row_norms(q, d);
    let nm = row_norms(bank, d);
    let inv_nm: Vec<T> = nm.iter().map(|v| T::from_f64(1.0 / v)).collect();
    // raw dots Q M^T into the p region
    unsafe {
        matmul(
            m,
            n,
            d,
            packed.as_mut_ptr().add(d + n),
            stride,
            false,
            q.as_ptr(),
            (d, 1),
            bank.as_ptr(),
            (1, d),
        );
    }
    packed.par_chunks_mut(stride).zip(nq.par_iter()).for_each(|(row, &nqi)| {
        let (_, rest) = row.split_at_mut(d);
        let (w, p) = rest.split_at_mut(n);
        let scale = T::from_f64(1.0 / (nqi * t));
        let mut max = T::from_f64(f64::NEG_INFINITY);
        for (pj, &inm) in p.iter_mut().zip(&inv_nm) {
            *pj = *pj * scale * inm;
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
        shrink_row(p, w, shrink);
    });
    // out = W M
    let base = packed.as_mut_ptr();
    unsafe {
        matmul(m, d, n, base, stride, false, base.add(d), (stride, 1), bank.as_ptr(), (d, 1));
    }
    packed
}

/// Backward of the fused op: packed (m + n, d) = [dL/dq ; dL/dbank].
#[allow(clippy::too_many_arguments)]
fn backward<T: Real>(
    q: &[T],
    bank: &[T],
    res: &[T],
    grad: &[T],
    m: usize,
    n: usize,
    d: usize,
    shrink: Shrink,
    t: f64,
) -> Vec<T> {
    let stride = d + 2 * n;
    let nq = row_norms(q, d);
    let nm = row_norms(bank, d);
    // g = dL/dw = G_out M^T + G_w
    let mut g = vec![T::ZERO; m * n];
    g.par_chunks_mut(n)
        .zip(grad.par_chunks(stride))
        .for_each(|(gr, gres)| gr.copy_from_slice(&gres[d..d + n]));
    unsafe {
        matmul(m, n, d, g.as_mut_ptr(), n, true, grad.as_ptr(), (stride, 1), bank.as_ptr(), (1, d));
    }
    // g := dL/ds / (|q_i| |M_j|)
    let inv_t = 1.0 / t;
    g.par_chunks_mut(n).zip(res.par_chunks(stride)).zip(nq.par_iter()).for_each(
        |((gr, rr), &nqi)| {
            let w = &rr[d..d + n];
            let p = &rr[d + n..];
            shrink_softmax_bwd_row(gr, p, w, shrink);
            let s = inv_t / nqi;
            for (gj, &nmj) in gr.iter_mut().zip(&nm) {
                *gj = *gj * T::from_f64(s / nmj);
            }
        },
    );
    let mut out = vec![T::ZERO; (m + n) * d];
    let (gq, gm) = out.split_at_mut(m * d);
    unsafe {
        // gA = g M ; gB = g^T Q
        matmul(m, d, n, gq.as_mut_ptr(), d, false, g.as_ptr(), (n, 1), bank.as_ptr(), (d, 1));
        matmul(n, d, m, gm.as_mut_ptr(), d, false, g.as_ptr(), (1, n), q.as_ptr(), (d, 1));
    }
    // normalisation backward: dx = gA - x <x, gA> / |x|^2 (the |x| factors are folded into g)
    let norm_bwd = |gx: &mut [T], x: &[T], nx: f64| {
        let dot: f64 = gx.iter().zip(x).map(|(a, b)| a.to_f64() * b.to_f64()).sum();
        let c = T::from_f64(dot / (nx * nx));
        gx.iter_mut().zip(x).for_each(|(a, &b)| *a = *a - b * c);
    };
    gq.par_chunks_mut(d)
        .zip(q.par_chunks(d))
        .zip(nq.par_iter())
        .for_each(|((gx, x), &nx)| norm_bwd(gx, x, nx));
    gm.par_chunks_mut(d)
        .zip(bank.par_chunks(d))
        .zip(nm.par_iter())
        .for_each(|((gx, x), &nx)| norm_bwd(gx, x, nx));
    // + W^T G_out
    unsafe {
        matmul(
            n,
            d,
            m,
            gm.as_mut_ptr(),
            d,
            true,
            res.as_ptr().add(d),
            (1, stride),
            grad.as_ptr(),
            (stride, 1),
        );
    }
    out
}

/// The forward custom op over (q (M, D), bank (N, D)).
pub(crate) struct AttnFwd {
    pub(crate) shrink: Shrink,
    pub(crate) temperature: f64,
}

impl CustomOp2 for AttnFwd {
    fn name(&self) -> &'static str {
        "daad-sparse-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, d) = l1.shape().dims2()?;
        let (n, d2) = l2.shape().dims2()?;
        if d != d2 {
            bail!("daad-memory fused op: queries ({m}, {d}) and bank ({n}, {d2}) differ in D")
        }
        let shape = Shape::from((m, d + 2 * n));
        let st = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => f32::storage(forward::<f32>(
                contiguous(s1, l1, "queries")?,
                contiguous(s2, l2, "bank")?,
                m,
                n,
                d,
                self.shrink,
                self.temperature,
            )),
            (CpuStorage::F64(_), CpuStorage::F64(_)) => f64::storage(forward::<f64>(
                contiguous(s1, l1, "queries")?,
                contiguous(s2, l2, "bank")?,
                m,
                n,
                d,
                self.shrink,
                self.temperature,
            )),
            _ => bail!(
                "daad-memory fused op: f32 or f64 queries and bank of one dtype, got {:?} and {:?}",
                s1.dtype(),
                s2.dtype()
            ),
        };
        Ok((st, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::forward(s1, l1, s2, l2, self.shrink, self.temperature)
    }

    fn bwd(
        &self,
        q: &Tensor,
        bank: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (m, _) = q.dims2()?;
        let (n, _) = bank.dims2()?;
        let op =
            AttnBwd { res: res.contiguous()?, shrink: self.shrink, temperature: self.temperature };
        let packed = q.apply_op3_no_bwd(bank, &grad_res.contiguous()?, &op)?;
        Ok((Some(packed.narrow(0, 0, m)?), Some(packed.narrow(0, m, n)?)))
    }
}

/// The backward custom op over (q, bank, grad of the packed output); holds the packed output.
pub(crate) struct AttnBwd {
    pub(crate) res: Tensor,
    pub(crate) shrink: Shrink,
    pub(crate) temperature: f64,
}

impl CustomOp3 for AttnBwd {
    fn name(&self) -> &'static str {
        "daad-sparse-attention-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, d) = l1.shape().dims2()?;
        let (n, _) = l2.shape().dims2()?;
        if l3.shape().dims() != [m, d + 2 * n] {
            bail!(
                "daad-memory fused op backward: gradient shape {:?}, expected ({m}, {})",
                l3.shape(),
                d + 2 * n
            )
        }
        let (res_storage, res_layout) = self.res.storage_and_layout();
        let Storage::Cpu(rs) = &*res_storage else {
            bail!("daad-memory fused op backward: saved output is not on the CPU")
        };
        let shape = Shape::from((m + n, d));
        let st = match s1 {
            CpuStorage::F32(_) => f32::storage(backward::<f32>(
                contiguous(s1, l1, "queries")?,
                contiguous(s2, l2, "bank")?,
                contiguous(rs, res_layout, "saved output")?,
                contiguous(s3, l3, "gradient")?,
                m,
                n,
                d,
                self.shrink,
                self.temperature,
            )),
            CpuStorage::F64(_) => f64::storage(backward::<f64>(
                contiguous(s1, l1, "queries")?,
                contiguous(s2, l2, "bank")?,
                contiguous(rs, res_layout, "saved output")?,
                contiguous(s3, l3, "gradient")?,
                m,
                n,
                d,
                self.shrink,
                self.temperature,
            )),
            _ => bail!("daad-memory fused op backward: f32 or f64 only, got {:?}", s1.dtype()),
        };
        Ok((st, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (res_storage, res_layout) = self.res.storage_and_layout();
        let Storage::Cuda(rs) = &*res_storage else {
            bail!("daad-memory CUDA op backward: saved output is not on the GPU")
        };
        crate::cuda::backward(s1, l1, s2, l2, rs, res_layout, s3, l3, self.shrink, self.temperature)
    }
}

/// Runs the fused op: `(out (M, D), weights (M, N))` as narrowed views of the packed output.
pub(crate) fn apply(
    q: &Tensor,
    bank: &Tensor,
    shrink: Shrink,
    temperature: f64,
) -> Result<(Tensor, Tensor)> {
    let (_, d) = q.dims2()?;
    let (n, _) = bank.dims2()?;
    let packed = q.contiguous()?.apply_op2(&bank.contiguous()?, AttnFwd { shrink, temperature })?;
    Ok((packed.narrow(1, 0, d)?, packed.narrow(1, d, n)?))
}

pub(crate) use apply as sparse_attention;
