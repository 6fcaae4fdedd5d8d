//! The fused CPU op agrees with the reference (values and gradients of f and the bank) within
//! 1e-5 relative, at the four paper scales of a 256 input and on odd small shapes.

mod common;

use candle_core::{DType, Tensor, Var};
use daad_memory::{divide, sparse_attention, Backend, Rates, Shrink};

const TOL: f64 = 1e-5;

struct Run {
    out: Tensor,
    w: Tensor,
    grad_f: Tensor,
    grad_bank: Tensor,
}

/// Forward + backward of `sum(out * r_out + w * r_w)` through divide and the op.
#[allow(clippy::too_many_arguments)]
fn run(
    f: &Tensor,
    bank: &Tensor,
    rates: Rates,
    shrink: Shrink,
    temperature: f64,
    backend: Backend,
    r_out: &Tensor,
    r_w: &Tensor,
) -> anyhow::Result<Run> {
    let f = Var::from_tensor(f)?;
    let bank = Var::from_tensor(bank)?;
    let q = divide(f.as_tensor(), rates)?;
    let (out, w) = sparse_attention(&q, bank.as_tensor(), shrink, temperature, backend)?;
    let loss = ((&out * r_out)?.sum_all()? + (&w * r_w)?.sum_all()?)?;
    let grads = loss.backward()?;
    Ok(Run {
        out: out.detach(),
        w: w.detach(),
        grad_f: grads.get(&f).expect("grad of f").clone(),
        grad_bank: grads.get(&bank).expect("grad of bank").clone(),
    })
}

#[allow(clippy::too_many_arguments)]
fn check(
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
    let r_out =
        common::randn(seed + 2, &[m, d], DType::F32)?.broadcast_mul(&keep.to_dtype(DType::F32)?)?;
    let r_w =
        common::randn(seed + 3, &[m, n], DType::F32)?.broadcast_mul(&keep.to_dtype(DType::F32)?)?;
    let fused = run(&f, &bank, rates, shrink, temperature, Backend::FusedCpu, &r_out, &r_w)?;
    let refr = run(&f, &bank, rates, shrink, temperature, Backend::Reference, &r_out, &r_w)?;
    let keep32 = keep.to_dtype(DType::F32)?;
    let masked = |t: &Tensor| t.broadcast_mul(&keep32);
    let errs = [
        ("out", rel_err(&masked(&fused.out)?, &masked(&refr.out)?)?),
        ("weights", rel_err(&masked(&fused.w)?, &masked(&refr.w)?)?),
        ("grad f", rel_err(&fused.grad_f, &refr.grad_f)?),
        ("grad bank", rel_err(&fused.grad_bank, &refr.grad_bank)?),
    ];
    for (what, e) in errs {
        assert!(
            e <= TOL,
            "{what}: relative error {e:.3e} > {TOL:e} at f {:?}, {rates:?}, N={n}, {shrink:?}, T={temperature}",
            (b, c, h, w)
        );
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

fn rel_err(a: &Tensor, b: &Tensor) -> anyhow::Result<f64> {
    common::rel_err(a, b)
}

#[test]
fn paper_scales_of_a_256_input() -> anyhow::Result<()> {
    for (i, (c, s)) in [(64, 128), (128, 64), (256, 32), (512, 16)].into_iter().enumerate() {
        check(10 * i as u64, (2, c, s, s), Rates::default(), 500, Shrink::Renormalize, 1.0)?;
    }
    Ok(())
}

#[test]
fn odd_small_shapes_all_shrinks() -> anyhow::Result<()> {
    let cases = [
        ((3, 6, 10, 14), Rates::new(5, 7, 3), 37),
        ((1, 5, 9, 9), Rates::new(3, 1, 5), 11),
        ((2, 3, 7, 5), Rates::new(1, 1, 1), 1),
        ((2, 4, 8, 8), Rates::new(4, 8, 2), 64),
    ];
    for (k, (shape, rates, n)) in cases.into_iter().enumerate() {
        for shrink in [Shrink::Renormalize, Shrink::Drop, Shrink::memae(n)] {
            for t in [1.0, 0.1] {
                check(100 + k as u64, shape, rates, n, shrink, t)?;
            }
        }
    }
    Ok(())
}

/// The block op (divide + attention + assemble fused, what BlockMemory runs on CPU) against
/// the reference BlockMemory with the same bank.
fn check_block_memory(
    seed: u64,
    (b, c, h, w): (usize, usize, usize, usize),
    rates: Rates,
    n: usize,
    shrink: Shrink,
) -> anyhow::Result<()> {
    use candle_core::Device;
    use candle_nn::{VarBuilder, VarMap};
    use daad_memory::{BlockMemory, MemoryConfig};

    let f = common::randn(seed, &[b, c, h, w], DType::F32)?;
    let q = divide(&f, rates)?;
    let mut runs = Vec::new();
    let mut keep = None;
    for backend in [Backend::FusedCpu, Backend::Reference] {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        let cfg = MemoryConfig { n_items: n, rates, shrink, backend, ..Default::default() };
        let mem = BlockMemory::new(c, h, w, &cfg, vb)?;
        let bank_var = vm.data().lock().unwrap().get("bank").unwrap().clone();
        bank_var.set(&(common::randn(seed + 1, &[n, mem.item_dim()], DType::F32)? * 0.05)?)?;
        let (keep_rows, kept) = match &keep {
            Some(k) => k,
            None => keep.insert(common::safe_rows(&q, mem.bank(), 1.0, margin(shrink))?),
        };
        assert!(kept * 2 >= q.dim(0)?);
        let keep32 = keep_rows.to_dtype(DType::F32)?;
        // upstream gradient zero on the blocks of rows left out
        let r_q = common::randn(seed + 2, q.dims(), DType::F32)?.broadcast_mul(&keep32)?;
        let r_out = daad_memory::assemble(&r_q, rates, (b, c, h, w))?;
        let r_w = common::randn(seed + 3, &[q.dim(0)?, n], DType::F32)?.broadcast_mul(&keep32)?;
        let fv = Var::from_tensor(&f)?;
        let (out, wts) = mem.forward_with_weights(fv.as_tensor())?;
        let loss = ((&out * &r_out)?.sum_all()? + (&wts * &r_w)?.sum_all()?)?;
        let grads = loss.backward()?;
        runs.push(Run {
            out: divide(&out, rates)?.broadcast_mul(&keep32)?,
            w: wts.broadcast_mul(&keep32)?,
            grad_f: grads.get(&fv).expect("grad f").clone(),
            grad_bank: grads.get(&bank_var).expect("grad bank").clone(),
        });
    }
    let (fu, re) = (&runs[0], &runs[1]);
    for (what, x, y) in [
        ("out", &fu.out, &re.out),
        ("weights", &fu.w, &re.w),
        ("grad f", &fu.grad_f, &re.grad_f),
        ("grad bank", &fu.grad_bank, &re.grad_bank),
    ] {
        let e = rel_err(x, y)?;
        assert!(
            e <= TOL,
            "block op {what}: relative error {e:.3e} at {:?} {rates:?}",
            (b, c, h, w)
        );
    }
    Ok(())
}

#[test]
fn block_op_matches_reference_block_memory() -> anyhow::Result<()> {
    check_block_memory(200, (2, 64, 32, 32), Rates::default(), 500, Shrink::Renormalize)?;
    check_block_memory(201, (3, 6, 10, 14), Rates::new(5, 7, 3), 37, Shrink::Drop)?;
    check_block_memory(202, (2, 8, 12, 8), Rates::new(3, 2, 4), 16, Shrink::memae(16))?;
    Ok(())
}
