//! CPU kernels of the fused op (called from [`crate::op`]'s `cpu_fwd`): cosine similarities,
//! softmax, drop, renormalisation and mixing with rayon over query rows and `gemm` for the
//! products, and their backward. Inputs are queries (M, D) or, with a [`BlockGeom`], a
//! (B, C, H, W) map gathered into queries inside the kernel.
//!
//! Packed layouts: forward `[x_out | w (M, N) | s (M, N)]`, backward `[d input | d bank]`.

mod blocks;
pub(crate) mod math;

use candle_core::{backend::BackendStorage, bail, CpuStorage, Layout};
use daad_nn::Precision;

pub(crate) use blocks::BlockGeom;
use math::{backward_core, forward_core, row_norm, row_norms, Real};

use crate::config::Shrink;

/// A CPU storage with its layout.
type Arg<'a> = (&'a CpuStorage, &'a Layout);

fn contiguous<'a, T: Real>((s, l): Arg<'a>, what: &str) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&T::slice(s)?[a..b]),
        None => bail!("daad-memory fused op: {what} must be contiguous"),
    }
}

/// Forward kernel: packed `[x_out | w | s]` for input `x` and `bank` of one float dtype.
pub(crate) fn forward(
    x: Arg<'_>,
    bank: Arg<'_>,
    mnd: (usize, usize, usize),
    geom: Option<BlockGeom>,
    shrink: Shrink,
    temperature: f64,
    precision: Precision,
) -> candle_core::Result<CpuStorage> {
    fn typed<T: Real>(
        x: Arg<'_>,
        bank: Arg<'_>,
        mnd: (usize, usize, usize),
        geom: Option<BlockGeom>,
        shrink: Shrink,
        temperature: f64,
        precision: Precision,
    ) -> candle_core::Result<CpuStorage> {
        let (x, bank) = (contiguous::<T>(x, "input")?, contiguous::<T>(bank, "bank")?);
        Ok(T::storage(fwd_typed(x, bank, mnd, geom, shrink, temperature, precision)))
    }
    match (x.0, bank.0) {
        (CpuStorage::F32(_), CpuStorage::F32(_)) => {
            typed::<f32>(x, bank, mnd, geom, shrink, temperature, precision)
        }
        (CpuStorage::F64(_), CpuStorage::F64(_)) if precision == Precision::F32 => {
            typed::<f64>(x, bank, mnd, geom, shrink, temperature, precision)
        }
        (CpuStorage::F64(_), CpuStorage::F64(_)) => {
            bail!("daad-memory fused op: bf16 products take f32 tensors, got f64")
        }
        _ => bail!(
            "daad-memory fused op: f32 or f64 input and bank of one dtype, got {:?} and {:?}",
            x.0.dtype(),
            bank.0.dtype()
        ),
    }
}

/// Backward kernel over `[input, bank, saved packed output, gradient of the packed output]`:
/// packed `[d input | d bank]`.
pub(crate) fn backward(
    args: [Arg<'_>; 4],
    mnd: (usize, usize, usize),
    geom: Option<BlockGeom>,
    shrink: Shrink,
    temperature: f64,
) -> candle_core::Result<CpuStorage> {
    fn typed<T: Real>(
        [x, bank, res, grad]: [Arg<'_>; 4],
        mnd: (usize, usize, usize),
        geom: Option<BlockGeom>,
        shrink: Shrink,
        temperature: f64,
    ) -> candle_core::Result<CpuStorage> {
        Ok(T::storage(bwd_typed::<T>(
            contiguous(x, "input")?,
            contiguous(bank, "bank")?,
            contiguous(res, "saved output")?,
            contiguous(grad, "gradient")?,
            mnd,
            geom,
            shrink,
            temperature,
        )))
    }
    match args[0].0 {
        CpuStorage::F32(_) => typed::<f32>(args, mnd, geom, shrink, temperature),
        CpuStorage::F64(_) => typed::<f64>(args, mnd, geom, shrink, temperature),
        s => bail!("daad-memory fused op backward: f32 or f64 only, got {:?}", s.dtype()),
    }
}

fn fwd_typed<T: Real>(
    x: &[T],
    bank: &[T],
    mnd: (usize, usize, usize),
    geom: Option<BlockGeom>,
    shrink: Shrink,
    temperature: f64,
    precision: Precision,
) -> Vec<T> {
    let (m, n, d) = mnd;
    let mut packed = vec![T::ZERO; x.len() + 2 * m * n];
    let (x_out, ws) = packed.split_at_mut(x.len());
    let (w, s) = ws.split_at_mut(m * n);
    match geom {
        None => {
            let nq = row_norms(x, d);
            forward_core((x, &nq), bank, mnd, shrink, temperature, precision, x_out, w, s)
        }
        Some(geom) => {
            let mut q = vec![T::ZERO; m * d];
            let nq = geom.gather_then(x, &mut q, row_norm);
            let mut out = vec![T::ZERO; m * d];
            forward_core((&q, &nq), bank, mnd, shrink, temperature, precision, &mut out, w, s);
            geom.scatter(&out, x_out);
        }
    }
    packed
}

#[allow(clippy::too_many_arguments)]
fn bwd_typed<T: Real>(
    x: &[T],
    bank: &[T],
    res: &[T],
    grad: &[T],
    mnd: (usize, usize, usize),
    geom: Option<BlockGeom>,
    shrink: Shrink,
    temperature: f64,
) -> Vec<T> {
    let (m, n, d) = mnd;
    let k = x.len();
    let ws = (&res[k..k + m * n], &res[k + m * n..k + 2 * m * n]);
    let g_w = &grad[k..k + m * n];
    let mut packed = vec![T::ZERO; k + n * d];
    let (gx, gbank) = packed.split_at_mut(k);
    // [q ; dL/d out] stacked in one buffer
    let mut qg = vec![T::ZERO; 2 * m * d];
    let (q, g_out) = qg.split_at_mut(m * d);
    match geom {
        None => {
            q.copy_from_slice(x);
            g_out.copy_from_slice(&grad[..k]);
            let nq = row_norms(q, d);
            backward_core((&qg, &nq), bank, mnd, shrink, temperature, ws, g_w, gx, gbank);
        }
        Some(geom) => {
            let nq = geom.gather_then(x, q, row_norm);
            geom.gather(&grad[..k], g_out);
            let mut gq = vec![T::ZERO; m * d];
            backward_core((&qg, &nq), bank, mnd, shrink, temperature, ws, g_w, &mut gq, gbank);
            geom.scatter(&gq, gx);
        }
    }
    packed
}
