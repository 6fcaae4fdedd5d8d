//! Shared helpers of the daad-memory tests: seeded tensors and error measures.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Seeded normal(0, 1) tensor (Box-Muller on ChaCha8) in `dtype`.
pub fn randn(seed: u64, shape: &[usize], dtype: DType) -> anyhow::Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|_| {
            let u1: f64 = rng.random::<f64>().max(1e-300);
            let u2: f64 = rng.random::<f64>();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?.to_dtype(dtype)?)
}

/// max |a - b| / max |b| (0 when both are 0).
pub fn rel_err(a: &Tensor, b: &Tensor) -> anyhow::Result<f64> {
    let a = a.to_dtype(DType::F64)?.flatten_all()?;
    let b = b.to_dtype(DType::F64)?.flatten_all()?;
    let diff = (&a - &b)?.abs()?.max(0)?.to_scalar::<f64>()?;
    let scale = b.abs()?.max(0)?.to_scalar::<f64>()?;
    Ok(if scale == 0.0 { diff } else { diff / scale })
}

/// Rows of the softmax p (M, N) (computed in f64) with an entry within `rel` * (1/N) of the
/// drop threshold 1/N: there f32 rounding may legitimately flip the drop mask between two
/// implementations, so comparisons leave those rows out. Returns a (M, 1) 0/1 mask of the
/// rows to keep and their count.
pub fn safe_rows(
    q: &Tensor,
    bank: &Tensor,
    temperature: f64,
    rel: f64,
) -> anyhow::Result<(Tensor, usize)> {
    let p = daad_memory::reference::addressing(
        &q.to_dtype(DType::F64)?,
        &bank.to_dtype(DType::F64)?,
        temperature,
    )?;
    let n = p.dim(1)?;
    let thr = 1.0 / n as f64;
    let rows = p.to_vec2::<f64>()?;
    let keep: Vec<f64> = rows
        .iter()
        // With N = 1 the softmax is exactly 1 = 1/N: no rounding can flip anything.
        .map(|r| {
            let near = n > 1 && r.iter().any(|&v| (v - thr).abs() < rel * thr);
            if near {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    let count = keep.iter().filter(|&&k| k > 0.0).count();
    let m = keep.len();
    Ok((Tensor::from_vec(keep, (m, 1), &Device::Cpu)?, count))
}

/// One test per available device, as candle's `test_device!`: `$name(&Device)` runs as
/// `$cpu` on the CPU and, with feature `cuda`, as `$cuda` on GPU 0 (which must exist: a CUDA
/// build's tests fail, never skip, without one).
#[allow(unused_macros)]
macro_rules! test_device {
    ($name:ident, $cpu:ident, $cuda:ident) => {
        #[test]
        fn $cpu() -> anyhow::Result<()> {
            $name(&candle_core::Device::Cpu)
        }

        #[cfg(feature = "cuda")]
        #[test]
        fn $cuda() -> anyhow::Result<()> {
            $name(&candle_core::Device::new_cuda(0)?)
        }
    };
}
