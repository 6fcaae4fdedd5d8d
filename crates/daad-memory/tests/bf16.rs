//! bf16 forward products of the fused CPU op (`BlockMemory::set_precision`): close to the f32
//! op wherever rounding does not move a weight across the 1/N drop, rounding really happens,
//! gradients still flow, and the paths that cannot run bf16 say so.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use daad_memory::{
    divide, Backend, BlockMemory, Error, MemoryConfig, Precision, Rates, Similarity,
};

const CHW: (usize, usize, usize) = (16, 16, 16);

fn memory(cfg: &MemoryConfig, dtype: DType) -> anyhow::Result<(VarMap, BlockMemory)> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, dtype, &Device::Cpu);
    let mem = BlockMemory::new(CHW.0, CHW.1, CHW.2, cfg, vb)?;
    Ok((vm, mem))
}

fn config() -> MemoryConfig {
    MemoryConfig { n_items: 50, rates: Rates::new(4, 4, 1), ..Default::default() }
}

/// Relative L2 distance |a - b| / |b| over the rows selected by `rows` (M, 1) 0/1.
fn rel_l2_rows(a: &Tensor, b: &Tensor, rows: &Tensor) -> anyhow::Result<f64> {
    let d = a.sub(b)?.broadcast_mul(rows)?.sqr()?.sum_all()?.to_scalar::<f32>()?;
    let n = b.broadcast_mul(rows)?.sqr()?.sum_all()?.to_scalar::<f32>()?;
    Ok((d / n).sqrt() as f64)
}

#[test]
fn bf16_products_match_f32_where_the_drop_mask_agrees() -> anyhow::Result<()> {
    let (_vm, mut mem) = memory(&config(), DType::F32)?;
    let f = common::randn(3, &[2, CHW.0, CHW.1, CHW.2], DType::F32)?;
    let (out32, w32) = mem.forward_with_weights(&f)?;
    mem.set_precision(Precision::Bf16)?;
    assert_eq!(mem.precision(), Precision::Bf16);
    let (out16, w16) = mem.forward_with_weights(&f)?;

    // Rows (queries) whose drop mask is the same in both: there the output differs only by the
    // rounding of the operands (about 2^-8 relative each).
    let same_mask = w32.gt(0f32)?.eq(&w16.gt(0f32)?)?.to_dtype(DType::F32)?.min_keepdim(1)?;
    let kept = same_mask.sum_all()?.to_scalar::<f32>()? as usize;
    let rows = w32.dim(0)?;
    let q32 = divide(&out32, mem.config().rates)?;
    let q16 = divide(&out16, mem.config().rates)?;
    let out_err = rel_l2_rows(&q16, &q32, &same_mask)?;
    let w_err = rel_l2_rows(&w16, &w32, &same_mask)?;
    println!(
        "rows with the same mask {kept}/{rows}, output rel L2 {out_err:.2e}, weights {w_err:.2e}"
    );
    assert!(kept * 2 >= rows, "only {kept} of {rows} rows kept their drop mask");
    assert!(out_err < 1e-2 && w_err < 1e-2, "output {out_err:.2e}, weights {w_err:.2e}");
    assert!(out_err > 1e-5, "bf16 output equals f32 to {out_err:.1e}: no rounding happened");
    Ok(())
}

#[test]
fn gradients_flow_through_a_bf16_forward() -> anyhow::Result<()> {
    let (_vm, mut mem) = memory(&config(), DType::F32)?;
    let f = Var::from_tensor(&common::randn(4, &[2, CHW.0, CHW.1, CHW.2], DType::F32)?)?;
    let grad = |mem: &BlockMemory| -> anyhow::Result<(Tensor, Tensor)> {
        let (out, w) = mem.forward_with_weights(f.as_tensor())?;
        let g = out.sqr()?.sum_all()?.backward()?.get(f.as_tensor()).expect("gradient").clone();
        Ok((divide(&g, mem.config().rates)?, w))
    };
    let (g32, w32) = grad(&mem)?;
    mem.set_precision(Precision::Bf16)?;
    let (g16, w16) = grad(&mem)?;
    // Compared over the queries whose drop mask is the same: where a weight crossed 1/N the
    // gradient legitimately differs (rows of a query are its block's gradient).
    let same_mask = w32.gt(0f32)?.eq(&w16.gt(0f32)?)?.to_dtype(DType::F32)?.min_keepdim(1)?;
    let err = rel_l2_rows(&g16, &g32, &same_mask)?;
    println!("input gradient, bf16 forward vs f32 (same-mask rows): rel L2 {err:.2e}");
    assert!(err.is_finite() && err < 5e-2, "gradient through bf16 forward: {err:.2e}");
    Ok(())
}

#[test]
fn memories_that_cannot_run_bf16_say_so() -> anyhow::Result<()> {
    for (what, cfg) in [
        ("dot similarity", MemoryConfig { similarity: Similarity::Dot, ..config() }),
        ("reference backend", MemoryConfig { backend: Backend::Reference, ..config() }),
    ] {
        let (_vm, mut mem) = memory(&cfg, DType::F32)?;
        let err = mem.set_precision(Precision::Bf16).expect_err(what);
        assert!(matches!(err, Error::Bf16Unavailable(_)), "{what}: {err}");
        assert_eq!(mem.precision(), Precision::F32, "{what}: a refused setting changes nothing");
    }
    let (_vm, mut mem) = memory(&config(), DType::F64)?;
    mem.set_precision(Precision::Bf16)?;
    let f = common::randn(5, &[1, CHW.0, CHW.1, CHW.2], DType::F64)?;
    let err = mem.forward_with_weights(&f).expect_err("bf16 on f64 maps");
    assert!(err.to_string().contains("bf16"), "{err}");
    Ok(())
}
