//! CUDA kernel vs the reference (on the GPU) and vs the fused CPU op, same tolerances as on CPU.
//! Built only with feature `cuda`; ignored by default because CI has no GPU:
//! `cargo test -p daad-memory --features cuda -- --ignored` on a GPU machine.
#![cfg(feature = "cuda")]

mod common;

use candle_core::{DType, Device, Tensor, Var};
use daad_memory::{divide, resolve_backend, sparse_attention, Backend, Rates, Shrink};

const TOL: f64 = 1e-5;

fn gpu() -> anyhow::Result<Device> {
    Ok(Device::new_cuda(0)?)
}

/// (out, w, grad f, grad bank) of sum(out * r_out + w * r_w), all moved back to the CPU.
fn run(
    device: &Device,
    f: &Tensor,
    bank: &Tensor,
    rates: Rates,
    shrink: Shrink,
    backend: Backend,
    r: (&Tensor, &Tensor),
) -> anyhow::Result<[Tensor; 4]> {
    let f = Var::from_tensor(&f.to_device(device)?)?;
    let bank = Var::from_tensor(&bank.to_device(device)?)?;
    let q = divide(f.as_tensor(), rates)?;
    let (out, w) = sparse_attention(&q, bank.as_tensor(), shrink, 1.0, backend)?;
    let loss = ((&out * r.0.to_device(device)?)?.sum_all()?
        + (&w * r.1.to_device(device)?)?.sum_all()?)?;
    let grads = loss.backward()?;
    let cpu = |t: &Tensor| t.to_device(&Device::Cpu);
    Ok([
        cpu(&out)?,
        cpu(&w)?,
        cpu(grads.get(&f).expect("grad f"))?,
        cpu(grads.get(&bank).expect("grad bank"))?,
    ])
}

fn check(
    seed: u64,
    shape: (usize, usize, usize, usize),
    rates: Rates,
    n: usize,
    shrink: Shrink,
) -> anyhow::Result<()> {
    let device = gpu()?;
    let (b, c, h, w) = shape;
    let f = common::randn(seed, &[b, c, h, w], DType::F32)?;
    let d = rates.item_dim(c, h, w)?;
    let bank = (common::randn(seed + 1, &[n, d], DType::F32)? * (1.0 / (d as f64).sqrt()))?;
    let q = divide(&f, rates)?;
    let margin = if matches!(shrink, Shrink::HardShrink { .. }) { 3e-3 } else { 1e-5 };
    let (keep, _) = common::safe_rows(&q, &bank, 1.0, margin)?;
    let keep = keep.to_dtype(DType::F32)?;
    let r_out = common::randn(seed + 2, &[q.dim(0)?, d], DType::F32)?.broadcast_mul(&keep)?;
    let r_w = common::randn(seed + 3, &[q.dim(0)?, n], DType::F32)?.broadcast_mul(&keep)?;
    let cuda = run(&device, &f, &bank, rates, shrink, Backend::Cuda, (&r_out, &r_w))?;
    let refr = run(&device, &f, &bank, rates, shrink, Backend::Reference, (&r_out, &r_w))?;
    let cpu = run(&Device::Cpu, &f, &bank, rates, shrink, Backend::FusedCpu, (&r_out, &r_w))?;
    for (i, what) in ["out", "weights", "grad f", "grad bank"].iter().enumerate() {
        let (a, b2, c2) = if i < 2 {
            (
                cuda[i].broadcast_mul(&keep)?,
                refr[i].broadcast_mul(&keep)?,
                cpu[i].broadcast_mul(&keep)?,
            )
        } else {
            (cuda[i].clone(), refr[i].clone(), cpu[i].clone())
        };
        let e_ref = common::rel_err(&a, &b2)?;
        let e_cpu = common::rel_err(&a, &c2)?;
        assert!(e_ref <= TOL && e_cpu <= TOL, "{what}: CUDA vs reference {e_ref:.2e}, vs fused CPU {e_cpu:.2e} at {shape:?} {rates:?} N={n} {shrink:?}");
    }
    Ok(())
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn cuda_matches_reference_at_paper_scales() -> anyhow::Result<()> {
    for (i, (c, s)) in [(64, 128), (128, 64), (256, 32), (512, 16)].into_iter().enumerate() {
        check(300 + i as u64, (2, c, s, s), Rates::default(), 500, Shrink::Renormalize)?;
    }
    Ok(())
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn cuda_matches_reference_on_odd_shapes_all_shrinks() -> anyhow::Result<()> {
    for shrink in [Shrink::Renormalize, Shrink::Drop, Shrink::memae(37)] {
        check(400, (3, 6, 10, 14), Rates::new(5, 7, 3), 37, shrink)?;
    }
    Ok(())
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn auto_picks_cuda_on_a_gpu() -> anyhow::Result<()> {
    let device = gpu()?;
    assert_eq!(resolve_backend(Backend::Auto, &device, DType::F32)?, Backend::Cuda);
    assert!(resolve_backend(Backend::FusedCpu, &device, DType::F32).is_err());
    Ok(())
}
