//! `sparse_attention`: argument checks and the choice of implementation.

use candle_core::{DType, Device, Tensor};

use crate::config::{check_shrink, check_temperature, Backend, Shrink};
use crate::error::{Error, Result};
use crate::{op, reference};

fn device_name(d: &Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

/// The implementation `requested` resolves to for inputs on `device` with `dtype`.
///
/// `Auto` picks FusedCpu on CPU (f32/f64), Cuda on CUDA (f32, feature `cuda`), Reference
/// otherwise. An explicit backend that cannot run there is an error (no silent fallback).
pub fn resolve_backend(requested: Backend, device: &Device, dtype: DType) -> Result<Backend> {
    let fused_dtype = matches!(dtype, DType::F32 | DType::F64);
    let unavailable = |hint| Error::BackendUnavailable {
        backend: requested,
        device: format!("{} ({dtype:?})", device_name(device)),
        hint,
    };
    match requested {
        Backend::Auto => Ok(match device {
            Device::Cpu if fused_dtype => Backend::FusedCpu,
            Device::Cuda(_) if cfg!(feature = "cuda") && dtype == DType::F32 => Backend::Cuda,
            _ => Backend::Reference,
        }),
        Backend::Reference => Ok(Backend::Reference),
        Backend::FusedCpu => match device {
            Device::Cpu if fused_dtype => Ok(Backend::FusedCpu),
            Device::Cpu => Err(unavailable("the fused CPU op takes f32 or f64; use Reference")),
            _ => {
                Err(unavailable("the fused CPU op runs on CPU tensors only; use Auto or Reference"))
            }
        },
        Backend::Cuda => match device {
            Device::Cuda(_) if cfg!(feature = "cuda") && dtype == DType::F32 => Ok(Backend::Cuda),
            Device::Cuda(_) if cfg!(feature = "cuda") => {
                Err(unavailable("the CUDA kernel takes f32; use Reference"))
            }
            Device::Cuda(_) => {
                Err(unavailable("this build has no CUDA kernel; rebuild with `--features cuda`"))
            }
            _ => Err(unavailable(
                "the CUDA kernel needs tensors on a CUDA device; use Auto or FusedCpu",
            )),
        },
    }
}

fn check_args(q: &Tensor, bank: &Tensor) -> Result<()> {
    let (m, d) = q.dims2().map_err(|_| Error::Shape {
        what: "sparse_attention queries",
        expected: "(M, D)".into(),
        got: q.dims().to_vec(),
    })?;
    let (n, dm) = bank.dims2().map_err(|_| Error::Shape {
        what: "sparse_attention bank",
        expected: "(N, D)".into(),
        got: bank.dims().to_vec(),
    })?;
    if dm != d || n == 0 || d == 0 {
        return Err(Error::Shape {
            what: "sparse_attention bank",
            expected: format!("(N > 0, D = {d}) to match queries ({m}, {d})"),
            got: bank.dims().to_vec(),
        });
    }
    if q.dtype() != bank.dtype() || !q.dtype().is_float() {
        return Err(Error::InvalidConfig(format!(
            "queries ({:?}) and bank ({:?}) need the same float dtype",
            q.dtype(),
            bank.dtype()
        )));
    }
    if !q.device().same_device(bank.device()) {
        return Err(Error::InvalidConfig(
            "queries and bank live on different devices; move them to one".into(),
        ));
    }
    Ok(())
}

/// Sparse thresholded cosine attention of queries `q` (M, D) over `bank` (N, D).
///
/// Returns `(out (M, D), weights (M, N))` with `w = shrink(softmax(cos(q, bank) / temperature))`
/// and `out = w bank`. Gradients reach `q` and `bank` through both outputs.
pub fn sparse_attention(
    q: &Tensor,
    bank: &Tensor,
    shrink: Shrink,
    temperature: f64,
    backend: Backend,
) -> candle_core::Result<(Tensor, Tensor)> {
    let run = || -> Result<(Tensor, Tensor)> {
        check_args(q, bank)?;
        check_temperature(temperature)?;
        check_shrink(shrink)?;
        Ok(match resolve_backend(backend, q.device(), q.dtype())? {
            // One custom op: its cpu_fwd / cuda_fwd pick the kernels of the tensors' device.
            Backend::FusedCpu | Backend::Cuda => {
                op::sparse_attention(q, bank, shrink, temperature)?
            }
            _ => {
                debug_assert!(reference::supports(q.dtype()));
                reference::sparse_attention(q, bank, shrink, temperature)?
            }
        })
    };
    run().map_err(Error::into_candle)
}
