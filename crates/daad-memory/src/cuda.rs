//! CUDA kernels (feature `cuda`), called from [`crate::op`]'s `cuda_fwd` for forward and backward.
//!
//! The row work (norms, cosine scaling, softmax, drop, renormalisation or hard shrinkage, and
//! their backward) runs in our kernels (`kernels/attention.cu`, compiled to PTX by `build.rs`
//! and loaded through candle's device); the three dense products per pass go through cuBLAS on
//! candle's own handle **(choice: a hand-written GEMM would be several times slower)**. The
//! packed layouts are the CPU op's: forward `[out | w | s]`, backward `[d q | d bank]`.

use candle_core::cuda_backend::cudarc::cublas::{
    sys::cublasOperation_t, CudaBlas, Gemm, GemmConfig,
};
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::WrapErr;
use candle_core::{bail, CudaDevice, CudaStorage, Layout, Shape};

use crate::config::Shrink;
use crate::reference::{NORM_EPS, SHRINK_EPS};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/attention.ptx"));
const MODULE: &str = "daad_memory_attention";
const BLOCK: u32 = 256;
/// Largest N whose softmax row fits the default 48 KiB of dynamic shared memory.
const MAX_ITEMS: usize = 12 * 1024;

/// Scalar kernel arguments of the shrinkage.
struct ShrinkArgs {
    mode: i32,
    lambda: f32,
    thr: f32,
    inv_t: f32,
    eps: f32,
}

fn shrink_args(shrink: Shrink, n: usize, temperature: f64) -> ShrinkArgs {
    let (mode, lambda) = match shrink {
        Shrink::Renormalize => (0, 0.0),
        Shrink::Drop => (1, 0.0),
        Shrink::HardShrink { lambda } => (2, lambda as f32),
    };
    ShrinkArgs {
        mode,
        lambda,
        thr: (1.0 / n as f64) as f32,
        inv_t: (1.0 / temperature) as f32,
        eps: SHRINK_EPS as f32,
    }
}

fn view<'a>(s: &'a CudaStorage, l: &Layout, what: &str) -> candle_core::Result<CudaView<'a, f32>> {
    let slice = s.as_cuda_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(slice.slice(a..b)),
        None => bail!("daad-memory CUDA op: {what} must be contiguous"),
    }
}

fn row_cfg(rows: usize, n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: (n * std::mem::size_of::<f32>()) as u32,
    }
}

fn flat_cfg(total: usize) -> LaunchConfig {
    let blocks = total.div_ceil(BLOCK as usize).clamp(1, 65_535);
    LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
}

/// `sqrt(|row|^2 + NORM_EPS)` of each row of `x` (rows, d).
fn norms(
    dev: &CudaDevice,
    x: &CudaView<'_, f32>,
    rows: usize,
    d: usize,
) -> candle_core::Result<CudaSlice<f32>> {
    let mut out = dev.alloc_zeros::<f32>(rows)?;
    let func = dev.get_or_load_custom_func("daad_row_norms", MODULE, PTX)?;
    let (d_i, eps) = (d as i32, NORM_EPS as f32);
    let mut b = func.builder();
    b.arg(x);
    b.arg(&mut out);
    b.arg(&d_i);
    b.arg(&eps);
    let cfg = LaunchConfig { shared_mem_bytes: 0, ..row_cfg(rows, 0) };
    unsafe { b.launch(cfg) }.w()?;
    Ok(out)
}

/// Row-major `c (m x n, row stride ldc) = a (m x k) b (k x n) + beta c`. Each operand is
/// `(buffer, row stride, stored transposed)`. cuBLAS is column-major, so it computes
/// c^T = b^T a^T with the operands swapped.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_rm<A: DevicePtr<f32>, B: DevicePtr<f32>, C: DevicePtrMut<f32>>(
    blas: &CudaBlas,
    (m, n, k): (usize, usize, usize),
    a: (&A, usize, bool),
    b: (&B, usize, bool),
    c: (&mut C, usize),
    beta: f32,
) -> candle_core::Result<()> {
    let op = |t: bool| {
        if t {
            cublasOperation_t::CUBLAS_OP_T
        } else {
            cublasOperation_t::CUBLAS_OP_N
        }
    };
    let cfg = GemmConfig {
        transa: op(b.2),
        transb: op(a.2),
        m: n as i32,
        n: m as i32,
        k: k as i32,
        alpha: 1.0f32,
        lda: b.1 as i32,
        ldb: a.1 as i32,
        beta,
        ldc: c.1 as i32,
    };
    blas.gemm(cfg, b.0, a.0, c.0).w()
}

/// Forward: packed `[out (m*d) | w (m*n) | s (m*n)]` for queries (m, d) and bank (n, d).
pub(crate) fn forward(
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
    shrink: Shrink,
    temperature: f64,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let dev = s1.device.clone();
    let (m, d) = l1.shape().dims2()?;
    let (n, d2) = l2.shape().dims2()?;
    if d != d2 {
        bail!("daad-memory CUDA op: queries ({m}, {d}) and bank ({n}, {d2}) differ in D")
    }
    if n > MAX_ITEMS {
        bail!("daad-memory CUDA op: at most {MAX_ITEMS} memory items, got {n}")
    }
    let q = view(s1, l1, "queries")?;
    let bank = view(s2, l2, "bank")?;
    let nq = norms(&dev, &q, m, d)?;
    let nm = norms(&dev, &bank, n, d)?;
    let blas = dev.cublas_handle();
    let sa = shrink_args(shrink, n, temperature);
    let mut packed = dev.alloc_zeros::<f32>(m * d + 2 * m * n)?;
    {
        let (mut out, mut ws) = packed.split_at_mut(m * d);
        let (mut w, mut s) = ws.split_at_mut(m * n);
        unsafe { gemm_rm(&blas, (m, n, d), (&q, d, false), (&bank, d, true), (&mut s, n), 0.0)? };
        {
            let func = dev.get_or_load_custom_func("daad_attn_fwd_rows", MODULE, PTX)?;
            let n_i = n as i32;
            let mut b = func.builder();
            b.arg(&mut s);
            b.arg(&mut w);
            b.arg(&nq);
            b.arg(&nm);
            b.arg(&n_i);
            b.arg(&sa.inv_t);
            b.arg(&sa.thr);
            b.arg(&sa.mode);
            b.arg(&sa.lambda);
            b.arg(&sa.eps);
            unsafe { b.launch(row_cfg(m, n)) }.w()?;
        }
        unsafe {
            gemm_rm(&blas, (m, d, n), (&w, n, false), (&bank, d, false), (&mut out, d), 0.0)?
        };
    }
    let len = packed.len();
    Ok((CudaStorage::wrap_cuda_slice(packed, dev), Shape::from(len)))
}

/// Backward: packed `[d q (m*d) | d bank (n*d)]` from the forward's packed output `res` and the
/// gradient `grad` of that packed output.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
    rs: &CudaStorage,
    rl: &Layout,
    s3: &CudaStorage,
    l3: &Layout,
    shrink: Shrink,
    temperature: f64,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let dev = s1.device.clone();
    let (m, d) = l1.shape().dims2()?;
    let (n, _) = l2.shape().dims2()?;
    let (k, mn) = (m * d, m * n);
    let q = view(s1, l1, "queries")?;
    let bank = view(s2, l2, "bank")?;
    let res = view(rs, rl, "saved output")?;
    let grad = view(s3, l3, "gradient")?;
    if res.len() != k + 2 * mn || grad.len() != k + 2 * mn {
        bail!(
            "daad-memory CUDA op backward: packed sizes {} / {}, expected {}",
            res.len(),
            grad.len(),
            k + 2 * mn
        )
    }
    let (w, s) = (res.slice(k..k + mn), res.slice(k + mn..k + 2 * mn));
    let blas = dev.cublas_handle();
    let sa = shrink_args(shrink, n, temperature);
    // qg = [q ; dL/d out] (2m, d), lg = [dL/dw ; w] (2m, n)
    let mut qg = unsafe { dev.alloc::<f32>(2 * k)? };
    {
        let (mut a, mut b) = qg.split_at_mut(k);
        dev.memcpy_dtod(&q, &mut a)?;
        dev.memcpy_dtod(&grad.slice(0..k), &mut b)?;
    }
    let mut lg = unsafe { dev.alloc::<f32>(2 * mn)? };
    {
        let (mut a, mut b) = lg.split_at_mut(mn);
        dev.memcpy_dtod(&grad.slice(k..k + mn), &mut a)?;
        dev.memcpy_dtod(&w, &mut b)?;
    }
    let nq = norms(&dev, &q, m, d)?;
    let nm = norms(&dev, &bank, n, d)?;
    let mut gss = dev.alloc_zeros::<f32>(mn)?;
    let mut c = dev.alloc_zeros::<f32>(m)?;
    let mut e = dev.alloc_zeros::<f32>(n)?;
    {
        let (mut g, _) = lg.split_at_mut(mn);
        let g_out = qg.slice(k..2 * k);
        // dL/dw += dL/d out M^T
        unsafe {
            gemm_rm(&blas, (m, n, d), (&g_out, d, false), (&bank, d, true), (&mut g, n), 1.0)?
        };
        let func = dev.get_or_load_custom_func("daad_attn_bwd_rows", MODULE, PTX)?;
        let n_i = n as i32;
        let mut b = func.builder();
        b.arg(&mut g);
        b.arg(&mut gss);
        b.arg(&mut c);
        b.arg(&w);
        b.arg(&s);
        b.arg(&nq);
        b.arg(&nm);
        b.arg(&n_i);
        b.arg(&sa.inv_t);
        b.arg(&sa.thr);
        b.arg(&sa.mode);
        b.arg(&sa.lambda);
        b.arg(&sa.eps);
        unsafe { b.launch(row_cfg(m, n)) }.w()?;
    }
    {
        let func = dev.get_or_load_custom_func("daad_col_sums", MODULE, PTX)?;
        let (m_i, n_i) = (m as i32, n as i32);
        let mut b = func.builder();
        b.arg(&gss);
        b.arg(&mut e);
        b.arg(&m_i);
        b.arg(&n_i);
        unsafe { b.launch(flat_cfg(n)) }.w()?;
    }
    let mut packed = unsafe { dev.alloc::<f32>(k + n * d)? };
    {
        let (mut gq, mut gb) = packed.split_at_mut(k);
        let func = dev.get_or_load_custom_func("daad_neg_scale_rows", MODULE, PTX)?;
        for (dst, x, coef, nx, rows) in [(&mut gq, &q, &c, &nq, m), (&mut gb, &bank, &e, &nm, n)] {
            let (r_i, d_i) = (rows as i32, d as i32);
            let mut b = func.builder();
            b.arg(dst);
            b.arg(x);
            b.arg(coef);
            b.arg(nx);
            b.arg(&r_i);
            b.arg(&d_i);
            unsafe { b.launch(flat_cfg(rows * d)) }.w()?;
        }
        let g1 = lg.slice(0..mn);
        unsafe {
            // dq += G1 M ; d bank += [G1 ; W]^T [q ; dL/d out]
            gemm_rm(&blas, (m, d, n), (&g1, n, false), (&bank, d, false), (&mut gq, d), 1.0)?;
            gemm_rm(&blas, (n, d, 2 * m), (&lg, n, true), (&qg, d, false), (&mut gb, d), 1.0)?;
        }
    }
    let len = packed.len();
    Ok((CudaStorage::wrap_cuda_slice(packed, dev), Shape::from(len)))
}
