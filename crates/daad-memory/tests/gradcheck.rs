//! Finite-difference gradient checks (f64) of both implementations on small shapes, through
//! both outputs (mixed queries and weights), for every shrink mode.

mod common;

use candle_core::{DType, Tensor, Var};
use daad_memory::{divide, sparse_attention, Backend, Rates, Shrink};

/// loss(f, bank) = sum(out * r_out) + sum(w * r_w), in f64.
fn loss(
    f: &Tensor,
    bank: &Tensor,
    rates: Rates,
    shrink: Shrink,
    t: f64,
    backend: Backend,
    r: &(Tensor, Tensor),
) -> anyhow::Result<Tensor> {
    let q = divide(f, rates)?;
    let (out, w) = sparse_attention(&q, bank, shrink, t, backend)?;
    Ok(((&out * &r.0)?.sum_all()? + (&w * &r.1)?.sum_all()?)?)
}

fn perturbed(x: &Tensor, idx: usize, h: f64) -> anyhow::Result<Tensor> {
    let mut v = x.flatten_all()?.to_vec1::<f64>()?;
    v[idx] += h;
    Ok(Tensor::from_vec(v, x.dims(), x.device())?)
}

fn gradcheck(backend: Backend, shrink: Shrink, t: f64, seed: u64) -> anyhow::Result<()> {
    let (b, c, hh, ww) = (2, 4, 6, 6);
    let rates = Rates::new(3, 2, 2);
    let n = 7;
    let d = rates.item_dim(c, hh, ww)?;
    let f = common::randn(seed, &[b, c, hh, ww], DType::F64)?;
    let bank = common::randn(seed + 1, &[n, d], DType::F64)?;
    let m = b * rates.blocks();
    let r = (
        common::randn(seed + 2, &[m, d], DType::F64)?,
        common::randn(seed + 3, &[m, n], DType::F64)?,
    );
    // No softmax entry may sit within the finite-difference step of the drop threshold.
    let (_, kept) = common::safe_rows(&divide(&f, rates)?, &bank, t, 1e-4)?;
    assert_eq!(kept, m, "seed {seed}: an entry sits at the drop threshold; pick another seed");

    let fv = Var::from_tensor(&f)?;
    let bv = Var::from_tensor(&bank)?;
    let grads = loss(fv.as_tensor(), bv.as_tensor(), rates, shrink, t, backend, &r)?.backward()?;
    let h = 1e-6;
    for (x, g, is_f) in [
        (&f, grads.get(&fv).expect("grad f"), true),
        (&bank, grads.get(&bv).expect("grad bank"), false),
    ] {
        let g = g.flatten_all()?.to_vec1::<f64>()?;
        let scale = g.iter().fold(0f64, |a, v| a.max(v.abs()));
        for idx in (0..x.elem_count()).step_by(5) {
            let eval = |delta: f64| -> anyhow::Result<f64> {
                let xp = perturbed(x, idx, delta)?;
                let (fp, bp) = if is_f { (&xp, &bank) } else { (&f, &xp) };
                Ok(loss(fp, bp, rates, shrink, t, backend, &r)?.to_scalar::<f64>()?)
            };
            let fd = (eval(h)? - eval(-h)?) / (2.0 * h);
            let err = (fd - g[idx]).abs() / scale.max(1e-12);
            assert!(
                err < 1e-6,
                "{backend:?} {shrink:?} T={t}: d/d{}[{idx}] analytic {} vs finite difference {fd} (rel {err:.2e})",
                if is_f { "f" } else { "bank" },
                g[idx]
            );
        }
    }
    Ok(())
}

#[test]
fn finite_differences_reference() -> anyhow::Result<()> {
    for shrink in [Shrink::Renormalize, Shrink::Drop, Shrink::memae(7)] {
        gradcheck(Backend::Reference, shrink, 1.0, 7)?;
        gradcheck(Backend::Reference, shrink, 0.2, 17)?;
    }
    Ok(())
}

#[test]
fn finite_differences_fused_cpu() -> anyhow::Result<()> {
    for shrink in [Shrink::Renormalize, Shrink::Drop, Shrink::memae(7)] {
        gradcheck(Backend::FusedCpu, shrink, 1.0, 7)?;
        gradcheck(Backend::FusedCpu, shrink, 0.2, 17)?;
    }
    Ok(())
}

/// The block op that `BlockMemory` runs on CPU (divide + attention + assemble in one op),
/// checked by finite differences in f64 through both outputs.
#[test]
fn finite_differences_block_memory_fused() -> anyhow::Result<()> {
    use candle_core::Device;
    use candle_nn::{VarBuilder, VarMap};
    use daad_memory::{BlockMemory, MemoryConfig};

    let (b, c, hh, ww) = (2, 4, 6, 4);
    let rates = Rates::new(3, 2, 2);
    let n = 6;
    for shrink in [Shrink::Renormalize, Shrink::memae(n)] {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F64, &Device::Cpu);
        let cfg = MemoryConfig {
            n_items: n,
            rates,
            shrink,
            temperature: 0.5,
            backend: Backend::FusedCpu,
            ..Default::default()
        };
        let mem = BlockMemory::new(c, hh, ww, &cfg, vb)?;
        let bank = vm.data().lock().unwrap().get("bank").unwrap().clone();
        bank.set(&common::randn(30, &[n, mem.item_dim()], DType::F64)?)?;
        let f = common::randn(31, &[b, c, hh, ww], DType::F64)?;
        let (_, kept) = common::safe_rows(&divide(&f, rates)?, bank.as_tensor(), 0.5, 1e-4)?;
        assert_eq!(kept, b * rates.blocks(), "an entry sits at the drop threshold");
        let r_out = common::randn(32, &[b, c, hh, ww], DType::F64)?;
        let r_w = common::randn(33, &[b * rates.blocks(), n], DType::F64)?;
        let loss = |f: &Tensor| -> anyhow::Result<Tensor> {
            let (out, w) = mem.forward_with_weights(f)?;
            Ok(((&out * &r_out)?.sum_all()? + (&w * &r_w)?.sum_all()?)?)
        };
        let fv = Var::from_tensor(&f)?;
        let grads = loss(fv.as_tensor())?.backward()?;
        let h = 1e-6;
        // d/df
        let g = grads.get(&fv).expect("grad f").flatten_all()?.to_vec1::<f64>()?;
        let scale = g.iter().fold(0f64, |a, v| a.max(v.abs()));
        for idx in (0..f.elem_count()).step_by(3) {
            let fd = (loss(&perturbed(&f, idx, h)?)?.to_scalar::<f64>()?
                - loss(&perturbed(&f, idx, -h)?)?.to_scalar::<f64>()?)
                / (2.0 * h);
            assert!(
                (fd - g[idx]).abs() < 1e-6 * scale,
                "{shrink:?} d/df[{idx}]: {} vs {fd}",
                g[idx]
            );
        }
        // d/dbank
        let gb = grads.get(&bank).expect("grad bank").flatten_all()?.to_vec1::<f64>()?;
        let scale = gb.iter().fold(0f64, |a, v| a.max(v.abs()));
        let b0 = bank.as_tensor().copy()?;
        for idx in (0..b0.elem_count()).step_by(3) {
            bank.set(&perturbed(&b0, idx, h)?)?;
            let lp = loss(&f)?.to_scalar::<f64>()?;
            bank.set(&perturbed(&b0, idx, -h)?)?;
            let lm = loss(&f)?.to_scalar::<f64>()?;
            bank.set(&b0)?;
            let fd = (lp - lm) / (2.0 * h);
            assert!(
                (fd - gb[idx]).abs() < 1e-6 * scale,
                "{shrink:?} d/dbank[{idx}]: {} vs {fd}",
                gb[idx]
            );
        }
    }
    Ok(())
}
