//! BlockMemory: shapes, weight properties after the drop, gradients reaching every input and
//! the bank, backend selection, typed errors.

mod common;

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use daad_memory::{resolve_backend, Backend, BlockMemory, Error, MemoryConfig, Rates, Shrink};

fn memory(cfg: &MemoryConfig, chw: (usize, usize, usize)) -> anyhow::Result<(VarMap, BlockMemory)> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let mem = BlockMemory::new(chw.0, chw.1, chw.2, cfg, vb.pp("mem"))?;
    Ok((vm, mem))
}

#[test]
fn weights_after_drop_have_no_entry_below_one_over_n_and_sum_to_one() -> anyhow::Result<()> {
    for backend in [Backend::Reference, Backend::FusedCpu] {
        for temperature in [1.0, 0.05] {
            let cfg = MemoryConfig {
                n_items: 50,
                rates: Rates::new(4, 4, 2),
                temperature,
                backend,
                ..Default::default()
            };
            let (_vm, mem) = memory(&cfg, (8, 16, 16))?;
            let f = common::randn(5, &[3, 8, 16, 16], DType::F32)?;
            let (out, w) = mem.forward_with_weights(&f)?;
            assert_eq!(out.dims(), f.dims());
            assert_eq!(w.dims(), &[3 * 32, 50]);
            let mut dropped = 0;
            for row in w.to_vec2::<f32>()? {
                let sum: f32 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "{backend:?}: row sums to {sum}");
                for v in &row {
                    assert!(*v == 0.0 || *v >= 1.0 / 50.0, "{backend:?}: kept weight {v} < 1/N");
                }
                dropped += row.iter().filter(|v| **v == 0.0).count();
            }
            assert!(dropped > 0, "{backend:?}: nothing was dropped, the test proves nothing");
        }
    }
    Ok(())
}

#[test]
fn plain_drop_keeps_softmax_values_and_hard_shrink_is_l1_normalised() -> anyhow::Result<()> {
    let f = common::randn(6, &[2, 4, 8, 8], DType::F32)?;
    for shrink in [Shrink::Drop, Shrink::memae(20)] {
        let cfg = MemoryConfig {
            n_items: 20,
            rates: Rates::new(2, 2, 1),
            shrink,
            temperature: 0.1,
            ..Default::default()
        };
        let (_vm, mem) = memory(&cfg, (4, 8, 8))?;
        let (_, w) = mem.forward_with_weights(&f)?;
        for row in w.to_vec2::<f32>()? {
            let sum: f32 = row.iter().sum();
            match shrink {
                Shrink::Drop => assert!(sum <= 1.0 + 1e-6 && sum > 0.0, "sum {sum}"),
                _ => assert!((sum - 1.0).abs() < 1e-5, "sum {sum}"),
            }
        }
    }
    Ok(())
}

#[test]
fn every_input_and_the_bank_receive_a_nonzero_gradient() -> anyhow::Result<()> {
    for backend in [Backend::Reference, Backend::FusedCpu] {
        let cfg =
            MemoryConfig { n_items: 30, rates: Rates::new(2, 2, 1), backend, ..Default::default() };
        let (vm, mem) = memory(&cfg, (4, 8, 8))?;
        let f = Var::from_tensor(&common::randn(8, &[2, 4, 8, 8], DType::F32)?)?;
        let (out, w) = mem.forward_with_weights(f.as_tensor())?;
        let loss = (out.sqr()?.sum_all()? + w.sqr()?.sum_all()?)?;
        let grads = loss.backward()?;
        let bank = vm.data().lock().unwrap().get("mem.bank").unwrap().clone();
        for (name, var) in [("f", &f), ("bank", &bank)] {
            let g = grads.get(var).unwrap_or_else(|| panic!("{backend:?}: no gradient for {name}"));
            let nonzero = g.abs()?.gt(0.0)?.to_dtype(DType::F32)?.mean_all()?.to_scalar::<f32>()?;
            assert!(nonzero > 0.99, "{backend:?}: only {nonzero} of {name}'s gradient is non-zero");
        }
        // Through the weights alone too (an entropy-style loss on w).
        let (_, w) = mem.forward_with_weights(f.as_tensor())?;
        let grads = (w.sqr()?.sum_all()?).backward()?;
        for var in [&f, &bank] {
            let g = grads.get(var).expect("gradient through weights");
            assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        }
    }
    Ok(())
}

#[test]
fn module_forward_matches_forward_with_weights_and_bank_shape() -> anyhow::Result<()> {
    let cfg = MemoryConfig::default();
    let (_vm, mem) = memory(&cfg, (64, 32, 32))?;
    assert_eq!(mem.item_dim(), 64 * 4 * 4);
    assert_eq!(mem.bank().dims(), &[500, 1024]);
    let bound = 1.0 / (1024f32).sqrt();
    let max = mem.bank().abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    assert!(max <= bound && max > 0.9 * bound, "bank init bound {max} vs {bound}");
    let f = common::randn(9, &[1, 64, 32, 32], DType::F32)?;
    let a = mem.forward(&f)?;
    let (b, _) = mem.forward_with_weights(&f)?;
    assert_eq!(a.flatten_all()?.to_vec1::<f32>()?, b.flatten_all()?.to_vec1::<f32>()?);
    Ok(())
}

#[test]
fn typed_errors_name_shapes_and_backends() -> anyhow::Result<()> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let err = BlockMemory::new(64, 12, 16, &MemoryConfig::default(), vb.clone()).unwrap_err();
    assert!(matches!(err, Error::RatesDoNotDivide { .. }));
    assert!(err.to_string().contains("H=12"), "{err}");
    let bad = MemoryConfig { temperature: 0.0, ..Default::default() };
    assert!(matches!(BlockMemory::new(8, 8, 8, &bad, vb.clone()), Err(Error::InvalidConfig(_))));

    let (_vm, mem) =
        memory(&MemoryConfig { rates: Rates::new(2, 2, 1), ..Default::default() }, (4, 8, 8))?;
    let msg = mem
        .forward(&Tensor::zeros((1, 4, 8, 6), DType::F32, &Device::Cpu)?)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("(B, 4, 8, 8)") && msg.contains("[1, 4, 8, 6]"), "{msg}");

    let cpu = Device::Cpu;
    assert_eq!(resolve_backend(Backend::Auto, &cpu, DType::F32)?, Backend::FusedCpu);
    assert_eq!(resolve_backend(Backend::Auto, &cpu, DType::BF16)?, Backend::Reference);
    assert_eq!(resolve_backend(Backend::Reference, &cpu, DType::F32)?, Backend::Reference);
    let err = resolve_backend(Backend::Cuda, &cpu, DType::F32).unwrap_err();
    assert!(matches!(err, Error::BackendUnavailable { backend: Backend::Cuda, .. }), "{err}");
    let q = Tensor::zeros((4, 8), DType::F32, &cpu)?;
    let bank = Tensor::ones((3, 8), DType::F32, &cpu)?;
    assert!(
        daad_memory::sparse_attention(&q, &bank, Shrink::Renormalize, 1.0, Backend::Cuda).is_err()
    );
    let wrong = Tensor::ones((3, 9), DType::F32, &cpu)?;
    let msg = daad_memory::sparse_attention(&q, &wrong, Shrink::Renormalize, 1.0, Backend::Auto)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("[3, 9]"), "{msg}");
    Ok(())
}

#[test]
fn config_round_trips_through_json() -> anyhow::Result<()> {
    let cfg = MemoryConfig {
        shrink: Shrink::HardShrink { lambda: 0.004 },
        backend: Backend::Reference,
        ..Default::default()
    };
    let back: MemoryConfig = serde_json::from_str(&serde_json::to_string(&cfg)?)?;
    assert_eq!(back, cfg);
    Ok(())
}
