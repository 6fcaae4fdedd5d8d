//! Shared helpers for daad-nn's integration tests: seeded tensors and a relative comparison.
#![allow(dead_code)]

use anyhow::{ensure, Result};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A tensor of uniform values in [-1, 1) from a seeded ChaCha8 stream.
pub fn rand_tensor(seed: u64, shape: &[usize]) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
}

/// Max |a - b| divided by max |b| (element-wise relative error is meaningless near zero).
pub fn rel_err(a: &Tensor, b: &Tensor) -> Result<f32> {
    ensure!(a.dims() == b.dims(), "shape {:?} vs {:?}", a.dims(), b.dims());
    let diff = (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    let scale = b.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    Ok(diff / scale.max(1e-12))
}

/// Fails with `what` and the error when `a` and `b` differ by more than `tol` relative.
pub fn assert_close(what: &str, a: &Tensor, b: &Tensor, tol: f32) -> Result<()> {
    let e = rel_err(a, b)?;
    ensure!(e <= tol, "{what}: relative error {e:e} > {tol:e}");
    Ok(())
}
