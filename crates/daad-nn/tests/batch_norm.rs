//! BatchNorm2d (+ fused activation) and the standalone activation against candle tensor-op
//! references, plus PyTorch's running-statistics rule checked on hand-computed numbers.

mod common;

use anyhow::{Context, Result};
use candle_core::{DType, Device, ModuleT, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use common::{assert_close, rand_tensor};
use daad_nn::activation::candle_activation;
use daad_nn::{activation, batch_norm2d, Activation, BatchNorm2d};

const ACTS: [Activation; 6] = [
    Activation::Identity,
    Activation::Relu,
    Activation::LeakyRelu(0.2),
    Activation::LeakyRelu(-0.5),
    Activation::Tanh,
    Activation::Sigmoid,
];

/// A BatchNorm2d with seeded random gamma/beta/running stats in its own VarMap.
fn make_bn(c: usize) -> Result<(VarMap, BatchNorm2d)> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let bn = batch_norm2d(c, 1e-5, 0.1, vb)?;
    let data = vm.data().lock().unwrap();
    data["weight"].set(&(rand_tensor(11, &[c])? + 1.5)?)?;
    data["bias"].set(&rand_tensor(12, &[c])?)?;
    data["running_mean"].set(&(rand_tensor(13, &[c])? * 0.1)?)?;
    data["running_var"].set(&rand_tensor(14, &[c])?.affine(0.2, 1.0)?)?;
    drop(data);
    Ok((vm, bn))
}

fn grads_of(vm: &VarMap, x: &Var, y: &Tensor) -> Result<Vec<Tensor>> {
    let r = rand_tensor(99, y.dims())?;
    let g = (y * &r)?.sum_all()?.backward()?;
    let data = vm.data().lock().unwrap();
    Ok(vec![
        g.get(x).context("dx")?.clone(),
        g.get(&data["weight"]).context("dgamma")?.clone(),
        g.get(&data["bias"]).context("dbeta")?.clone(),
    ])
}

#[test]
fn batch_norm_matches_tensor_ops_in_train_and_eval() -> Result<()> {
    for (shape, train) in [([4, 5, 7, 6], true), ([2, 3, 16, 16], false), ([8, 16, 4, 4], true)] {
        for act in ACTS {
            let name = format!("bn {shape:?} train={train} {act:?}");
            let x = Var::from_tensor(&rand_tensor(1, &shape)?.affine(2.0, 0.3)?)?;
            let (vm1, bn1) = make_bn(shape[1])?;
            let (vm2, bn2) = make_bn(shape[1])?;
            let ours = bn1.forward_act(&x, train, act)?;
            let theirs = candle_activation(&bn2.candle_forward(&x, train)?, act)?;
            assert_close(&format!("{name} output"), &ours, &theirs, 1e-4)?;
            let g1 = grads_of(&vm1, &x, &ours)?;
            let g2 = grads_of(&vm2, &x, &theirs)?;
            for (w, (a, b)) in ["dx", "dgamma", "dbeta"].iter().zip(g1.iter().zip(&g2)) {
                assert_close(&format!("{name} {w}"), a, b, 1e-4)?;
            }
            assert_close(
                &format!("{name} running mean"),
                bn1.running_mean(),
                bn2.running_mean(),
                1e-5,
            )?;
            assert_close(
                &format!("{name} running var"),
                bn1.running_var(),
                bn2.running_var(),
                1e-5,
            )?;
        }
    }
    Ok(())
}

#[test]
fn running_stats_follow_pytorch() -> Result<()> {
    // One channel holding 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased var 5/3 (PyTorch uses
    // the biased one to normalise and the unbiased one for running_var, momentum 0.1).
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let bn = batch_norm2d(1, 1e-5, 0.1, vb)?;
    let x = Tensor::new(&[1f32, 2., 3., 4.], &Device::Cpu)?.reshape((2, 1, 1, 2))?;
    let y = bn.forward_t(&x, true)?.flatten_all()?.to_vec1::<f32>()?;
    let expect0 = (1.0 - 2.5) / (1.25f32 + 1e-5).sqrt();
    assert!((y[0] - expect0).abs() < 1e-6, "{} vs {expect0}", y[0]);
    let rm = bn.running_mean().to_vec1::<f32>()?[0];
    let rv = bn.running_var().to_vec1::<f32>()?[0];
    assert!((rm - 0.25).abs() < 1e-6, "running mean {rm}");
    assert!((rv - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-6, "running var {rv}");
    // The running stats are the VarMap's own tensors (updated in place, saved with the model).
    let data = vm.data().lock().unwrap();
    assert_eq!(data["running_mean"].to_vec1::<f32>()?[0], rm);
    // Eval mode uses them and leaves them unchanged.
    drop(data);
    let ye = bn.forward_t(&x, false)?.flatten_all()?.to_vec1::<f32>()?;
    let e0 = (1.0 - 0.25) / (rv + 1e-5).sqrt();
    assert!((ye[0] - e0).abs() < 1e-5, "{} vs {e0}", ye[0]);
    assert_eq!(bn.running_mean().to_vec1::<f32>()?[0], rm);
    Ok(())
}

#[test]
fn eval_mode_gives_no_gradient_to_running_stats() -> Result<()> {
    let (vm, bn) = make_bn(3)?;
    let x = Var::from_tensor(&rand_tensor(3, &[2, 3, 4, 4])?)?;
    let y = bn.forward_act(&x, false, Activation::Relu)?;
    let g = y.sum_all()?.backward()?;
    let data = vm.data().lock().unwrap();
    assert!(g.get(&data["running_mean"]).is_none());
    assert!(g.get(&data["running_var"]).is_none());
    Ok(())
}

#[test]
fn standalone_activation_matches_candle() -> Result<()> {
    for act in ACTS {
        let x = Var::from_tensor(&(rand_tensor(21, &[2, 3, 5, 7])? * 3.0)?)?;
        let ours = activation(&x, act)?;
        let theirs = candle_activation(&x, act)?;
        assert_close(&format!("{act:?} output"), &ours, &theirs, 1e-6)?;
        let r = rand_tensor(22, ours.dims())?;
        let g1 = (&ours * &r)?.sum_all()?.backward()?;
        let g2 = (&theirs * &r)?.sum_all()?.backward()?;
        if act != Activation::Identity {
            assert_close(
                &format!("{act:?} grad"),
                g1.get(&x).context("ours")?,
                g2.get(&x).context("theirs")?,
                1e-5,
            )?;
        }
    }
    Ok(())
}

#[test]
fn f64_input_falls_back_to_tensor_ops() -> Result<()> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F64, &Device::Cpu);
    let bn = batch_norm2d(3, 1e-5, 0.1, vb)?;
    let x = rand_tensor(4, &[2, 3, 4, 4])?.to_dtype(DType::F64)?;
    let y = bn.forward_act(&x, true, Activation::Tanh)?;
    assert_eq!(y.dtype(), DType::F64);
    let vm32 = VarMap::new();
    let bn32 =
        batch_norm2d(3, 1e-5, 0.1, VarBuilder::from_varmap(&vm32, DType::F32, &Device::Cpu))?;
    let y32 = bn32.forward_act(&x.to_dtype(DType::F32)?, true, Activation::Tanh)?;
    assert_close("f64 vs f32", &y.to_dtype(DType::F32)?, &y32, 1e-5)
}
