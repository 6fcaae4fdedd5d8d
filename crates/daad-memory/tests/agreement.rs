//! The fused op agrees with the reference (values and gradients of f and the bank) within 1e-5
//! relative, at the four paper scales of a 256 input and on odd small shapes: one suite, run
//! once per available device (`test_device!`: the CPU always, GPU 0 with feature `cuda`). On
//! each device the fused op (`Backend::Auto`: FusedCpu on the CPU, Cuda on a GPU) is compared
//! with the reference on that device; off the CPU it is also compared with the fused CPU op.

#[macro_use]
mod common;

use candle_core::{DType, Device, Tensor, Var};
use daad_memory::{divide, resolve_backend, sparse_attention, Backend, Rates, Shrink};

const TOL: f64 = 1e-5;

/// Outputs and gradients of one run, moved back to the CPU.
struct Run {
    out: Tensor,
    w: Tensor,
    grad_f: Tensor,
    grad_bank: Tensor,
}

/// The fused backend `Auto` resolves to on `device`; the suite fails rather than compare the
/// reference with itself.
fn fused(device: &Device) -> anyhow::Result<Backend> {
    let b = resolve_backend(Backend::Auto, device, DType::F32)?;
    anyhow::ensure!(b != Backend::Reference, "no fused backend on {device:?}");
    Ok(b)
}

/// Forward + backward of `sum(out * r_out + w * r_w)` through divide and the op on `device`.
#[allow(clippy::too_many_arguments)]
fn run(
    device: &Device,
    f: &Tensor,
    bank: &Tensor,
    rates: Rates,
    shrink: Shrink,
    temperature: f64,
    backend: Backend,
    (r_out, r_w): (&Tensor, &Tensor),
) -> anyhow::Result<Run> {
    let f = Var::from_tensor(&f.to_device(device)?)?;
    let bank = Var::from_tensor(&bank.to_device(device)?)?;
    let q = divide(f.as_tensor(), rates)?;
    let (out, w) = sparse_attention(&q, bank.as_tensor(), shrink, temperature, backend)?;
    let loss = ((&out * r_out.to_device(device)?)?.sum_all()?
        + (&w * r_w.to_device(device)?)?.sum_all()?)?;
    let grads = loss.backward()?;
    let cpu = |t: &Tensor| t.to_device(&Device::Cpu);
    Ok(Run {
        out: cpu(&out.detach())?,
        w: cpu(&w.detach())?,
        grad_f: cpu(grads.get(&f).expect("grad of f"))?,
        grad_bank: cpu(grads.get(&bank).expect("grad of bank"))?,
    })
}

/// Asserts that `a` and `b` agree within [`TOL`] on the kept rows (outputs, weights) and
/// everywhere (gradients).
fn assert_close(a: &Run, b: &Run, keep: &Tensor, what: &str) -> anyhow::Result<()> {
    let keep32 = keep.to_dtype(DType::F32)?;
    let masked = |t: &Tensor| t.broadcast_mul(&keep32);
    let errs = [
        ("out", common::rel_err(&masked(&a.out)?, &masked(&b.out)?)?),
        ("weights", common::rel_err(&masked(&a.w)?, &masked(&b.w)?)?),
        ("grad f", common::rel_err(&a.grad_f, &b.grad_f)?),
        ("grad bank", common::rel_err(&a.grad_bank, &b.grad_bank)?),
    ];
    for (name, e) in errs {
        assert!(e <= TOL, "{name}: relative error {e:.3e} > {TOL:e} at {what}");
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn check(
    device: &Device,
    seed: u64,
    (b, c, h, w): (usize, usize, usize, usize),
    rates: Rates,
    n: usize,
    shrink: Shrink,
    temperature: f64,
) -> anyhow::Result<()> {
    let f = common::randn(seed, &[b, c, h, w], DType::F32)?;
    let d = rates.item_dim(c, h, w)?;
    let bank = (common::randn(seed + 1, &[n, d], DType::F32)? * (1.0 / (d as f64).sqrt()))?;
    let q = divide(&f, rates)?;
    let m = q.dim(0)?;
    // Rows with a softmax entry within 1e-5 relative of 1/N may flip their drop mask under f32
    // rounding; they are left out of the comparison (their upstream gradient is zero).
    // (see `margin` for the hard shrinkage).
    let (keep, kept) = common::safe_rows(&q, &bank, temperature, margin(shrink))?;
    assert!(kept * 2 >= m, "too few comparable rows: {kept} of {m}");
    let keep32 = keep.to_dtype(DType::F32)?;
    let r_out = common::randn(seed + 2, &[m, d], DType::F32)?.broadcast_mul(&keep32)?;
    let r_w = common::randn(seed + 3, &[m, n], DType::F32)?.broadcast_mul(&keep32)?;
    let r = (&r_out, &r_w);
    let what = format!("f {:?}, {rates:?}, N={n}, {shrink:?}, T={temperature}", (b, c, h, w));
    let fast = run(device, &f, &bank, rates, shrink, temperature, fused(device)?, r)?;
    let refr = run(device, &f, &bank, rates, shrink, temperature, Backend::Reference, r)?;
    assert_close(&fast, &refr, &keep, &format!("{what}, {device:?} vs reference"))?;
    if !device.is_cpu() {
        let cpu = run(&Device::Cpu, &f, &bank, rates, shrink, temperature, Backend::FusedCpu, r)?;
        assert_close(&fast, &cpu, &keep, &format!("{what}, {device:?} vs fused CPU"))?;
    }
    Ok(())
}

/// Relative distance to 1/N below which a row is left out of comparisons. With the hard
/// shrinkage the reference's autograd of relu(a) p / (|a| + eps), a = p - lambda, subtracts
/// two terms of size p/a that cancel to p eps/(a + eps)^2: in f32 that loses about 1e-7 p/a,
/// so rows with an entry within 0.3 % of lambda (= 1/N here) are left out too.
fn margin(shrink: Shrink) -> f64 {
    match shrink {
        Shrink::HardShrink { .. } => 3e-3,
        _ => 1e-5,
    }
}

fn paper_scales_of_a_256_input(device: &Device) -> anyhow::Result<()> {
    for (i, (c, s)) in [(64, 128), (128, 64), (256, 32), (512, 16)].into_iter().enumerate() {
        let seed = 10 * i as u64;
        check(device, seed, (2, c, s, s), Rates::default(), 500, Shrink::Renormalize, 1.0)?;
    }
    Ok(())
}

fn odd_small_shapes_all_shrinks(device: &Device) -> anyhow::Result<()> {
    let cases = [
        ((3, 6, 10, 14), Rates::new(5, 7, 3), 37),
        ((1, 5, 9, 9), Rates::new(3, 1, 5), 11),
        ((2, 3, 7, 5), Rates::new(1, 1, 1), 1),
        ((2, 4, 8, 8), Rates::new(4, 8, 2), 64),
    ];
    for (k, (shape, rates, n)) in cases.into_iter().enumerate() {
        for shrink in [Shrink::Renormalize, Shrink::Drop, Shrink::memae(n)] {
            for t in [1.0, 0.1] {
                check(device, 100 + k as u64, shape, rates, n, shrink, t)?;
            }
        }
    }
    Ok(())
}

/// `BlockMemory` with the fused backend (on the CPU: divide + attention + assemble fused in one
/// op) against the reference `BlockMemory` with the same bank, on `device`.
fn check_block_memory(
    device: &Device,
    seed: u64,
    (b, c, h, w): (usize, usize, usize, usize),
    rates: Rates,
    n: usize,
    shrink: Shrink,
) -> anyhow::Result<()> {
    use candle_nn::{VarBuilder, VarMap};
    use daad_memory::{BlockMemory, MemoryConfig};

    let f = common::randn(seed, &[b, c, h, w], DType::F32)?;
    let q = divide(&f, rates)?;
    let mut runs = Vec::new();
    let mut keep = None;
    for backend in [fused(device)?, Backend::Reference] {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, device);
        let cfg = MemoryConfig { n_items: n, rates, shrink, backend, ..Default::default() };
        let mem = BlockMemory::new(c, h, w, &cfg, vb)?;
        let bank_var = vm.data().lock().unwrap().get("bank").unwrap().clone();
        let bank = (common::randn(seed + 1, &[n, mem.item_dim()], DType::F32)? * 0.05)?;
        bank_var.set(&bank.to_device(device)?)?;
        let (keep_rows, kept) = match &keep {
            Some(k) => k,
            None => keep.insert(common::safe_rows(&q, &bank, 1.0, margin(shrink))?),
        };
        assert!(kept * 2 >= q.dim(0)?);
        let keep32 = keep_rows.to_dtype(DType::F32)?;
        // upstream gradient zero on the blocks of rows left out
        let r_q = common::randn(seed + 2, q.dims(), DType::F32)?.broadcast_mul(&keep32)?;
        let r_out = daad_memory::assemble(&r_q, rates, (b, c, h, w))?.to_device(device)?;
        let r_w = common::randn(seed + 3, &[q.dim(0)?, n], DType::F32)?.broadcast_mul(&keep32)?;
        let fv = Var::from_tensor(&f.to_device(device)?)?;
        let (out, wts) = mem.forward_with_weights(fv.as_tensor())?;
        let loss = ((&out * &r_out)?.sum_all()? + (&wts * r_w.to_device(device)?)?.sum_all()?)?;
        let grads = loss.backward()?;
        let cpu = |t: &Tensor| t.to_device(&Device::Cpu);
        runs.push(Run {
            out: divide(&cpu(&out)?, rates)?,
            w: cpu(&wts)?,
            grad_f: cpu(grads.get(&fv).expect("grad f"))?,
            grad_bank: cpu(grads.get(&bank_var).expect("grad bank"))?,
        });
    }
    let what = format!("block op {:?} {rates:?} on {device:?}", (b, c, h, w));
    assert_close(&runs[0], &runs[1], &keep.expect("set in the loop").0, &what)
}

fn block_op_matches_reference_block_memory(device: &Device) -> anyhow::Result<()> {
    let d = device;
    check_block_memory(d, 200, (2, 64, 32, 32), Rates::default(), 500, Shrink::Renormalize)?;
    check_block_memory(d, 201, (3, 6, 10, 14), Rates::new(5, 7, 3), 37, Shrink::Drop)?;
    check_block_memory(d, 202, (2, 8, 12, 8), Rates::new(3, 2, 4), 16, Shrink::memae(16))?;
    Ok(())
}

/// `Auto` picks the device's fused backend, and an explicit backend of another device is an error.
fn auto_picks_the_devices_fused_backend(device: &Device) -> anyhow::Result<()> {
    let (mine, other) = match device {
        Device::Cpu => (Backend::FusedCpu, Backend::Cuda),
        _ => (Backend::Cuda, Backend::FusedCpu),
    };
    assert_eq!(resolve_backend(Backend::Auto, device, DType::F32)?, mine);
    assert!(resolve_backend(other, device, DType::F32).is_err());
    Ok(())
}

test_device!(paper_scales_of_a_256_input, cpu_paper_scales, cuda_paper_scales);
test_device!(odd_small_shapes_all_shrinks, cpu_odd_shapes, cuda_odd_shapes);
test_device!(block_op_matches_reference_block_memory, cpu_block_op, cuda_block_op);
test_device!(auto_picks_the_devices_fused_backend, cpu_auto_backend, cuda_auto_backend);
