//! Adam against candle_nn::AdamW (weight decay 0, and decoupled decay) step for step, PyTorch's
//! L2 weight decay on a hand-computed first step, and the state export/import round trip.

mod common;

use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use common::{assert_close, rand_tensor};
use daad_nn::{Adam, Error, ParamsAdam};

/// A small regression problem: loss = mean((x @ w + b - y)^2), returns its vars and data.
struct Problem {
    x: Tensor,
    y: Tensor,
}

impl Problem {
    fn new() -> Result<Self> {
        Ok(Self { x: rand_tensor(1, &[16, 5])?, y: rand_tensor(2, &[16, 3])? })
    }
    fn vars(&self, dtype: DType) -> Result<Vec<Var>> {
        Ok(vec![
            Var::from_tensor(&rand_tensor(3, &[5, 3])?.to_dtype(dtype)?)?,
            Var::from_tensor(&rand_tensor(4, &[3])?.to_dtype(dtype)?)?,
        ])
    }
    fn loss(&self, vars: &[Var]) -> Result<Tensor> {
        let dt = vars[0].dtype();
        let pred =
            self.x.to_dtype(dt)?.matmul(vars[0].as_tensor())?.broadcast_add(vars[1].as_tensor())?;
        Ok((pred - self.y.to_dtype(dt)?)?.sqr()?.mean_all()?)
    }
}

fn run_pair(ours_p: ParamsAdam, theirs_p: ParamsAdamW, steps: usize) -> Result<()> {
    let pb = Problem::new()?;
    let (va, vb) = (pb.vars(DType::F32)?, pb.vars(DType::F32)?);
    let mut ours = Adam::new(va.clone(), ours_p)?;
    let mut theirs = AdamW::new(vb.clone(), theirs_p)?;
    for step in 0..steps {
        ours.backward_step(&pb.loss(&va)?)?;
        theirs.backward_step(&pb.loss(&vb)?)?;
        for (i, (a, b)) in va.iter().zip(&vb).enumerate() {
            assert_close(&format!("step {step} var {i}"), a.as_tensor(), b.as_tensor(), 1e-5)?;
        }
    }
    // The optimiser actually moved the parameters and reduced the loss.
    let start = pb.loss(&pb.vars(DType::F32)?)?.to_scalar::<f32>()?;
    let end = pb.loss(&va)?.to_scalar::<f32>()?;
    ensure!(end < 0.8 * start, "loss {start} -> {end}");
    Ok(())
}

#[test]
fn matches_candle_adamw_without_weight_decay() -> Result<()> {
    let ours = ParamsAdam { lr: 0.01, ..ParamsAdam::default() };
    let theirs = ParamsAdamW { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };
    run_pair(ours, theirs, 50)
}

#[test]
fn decoupled_matches_candle_adamw_with_weight_decay() -> Result<()> {
    let ours = ParamsAdam {
        lr: 0.02,
        beta1: 0.5,
        weight_decay: 0.05,
        decoupled: true,
        ..ParamsAdam::default()
    };
    let theirs = ParamsAdamW { lr: 0.02, beta1: 0.5, beta2: 0.999, eps: 1e-8, weight_decay: 0.05 };
    run_pair(ours, theirs, 30)
}

#[test]
fn l2_weight_decay_first_step_is_pytorchs() -> Result<()> {
    // torch.optim.Adam(wd=0.1), theta = 1, grad 0.5: g' = 0.5 + 0.1 * 1 = 0.6; first step
    // m_hat = g', v_hat = g'^2, so theta_1 = 1 - lr * 0.6 / (0.6 + 1e-8).
    let v = Var::new(&[1f32], &Device::Cpu)?;
    let mut opt =
        Adam::new(vec![v.clone()], ParamsAdam { weight_decay: 0.1, ..ParamsAdam::default() })?;
    let loss = (v.as_tensor() * 0.5)?.sum_all()?;
    opt.backward_step(&loss)?;
    let got = v.to_vec1::<f32>()?[0];
    let want = 1.0 - 1e-3 * 0.6 / (0.6 + 1e-8);
    ensure!((got - want as f32).abs() < 1e-7, "{got} vs {want}");
    Ok(())
}

#[test]
fn tensor_path_matches_fused_path() -> Result<()> {
    // f64 vars take the tensor-op path; f32 the fused in-place one.
    let pb = Problem::new()?;
    let (v32, v64) = (pb.vars(DType::F32)?, pb.vars(DType::F64)?);
    let p = ParamsAdam { lr: 0.01, weight_decay: 0.01, ..ParamsAdam::default() };
    let (mut a, mut b) = (Adam::new(v32.clone(), p)?, Adam::new(v64.clone(), p)?);
    for _ in 0..20 {
        a.backward_step(&pb.loss(&v32)?)?;
        b.backward_step(&pb.loss(&v64)?)?;
    }
    for (x, y) in v32.iter().zip(&v64) {
        assert_close("f32 fused vs f64 tensor", x.as_tensor(), &y.to_dtype(DType::F32)?, 1e-4)?;
    }
    Ok(())
}

#[test]
fn state_round_trip_resumes_identically() -> Result<()> {
    let pb = Problem::new()?;
    let (va, vb) = (pb.vars(DType::F32)?, pb.vars(DType::F32)?);
    let p = ParamsAdam::default();
    let mut a = Adam::new(va.clone(), p)?;
    for _ in 0..3 {
        a.backward_step(&pb.loss(&va)?)?;
    }
    for (x, y) in va.iter().zip(&vb) {
        y.set(x.as_tensor())?;
    }
    let state = a.export_state()?;
    ensure!(state.contains_key("step") && state.contains_key("m.1") && state.contains_key("v.0"));
    let mut b = Adam::new(vb.clone(), p)?;
    b.import_state(&state)?;
    assert_eq!(b.step_count(), 3);
    for _ in 0..3 {
        a.backward_step(&pb.loss(&va)?)?;
        b.backward_step(&pb.loss(&vb)?)?;
    }
    for (x, y) in va.iter().zip(&vb) {
        ensure!(
            x.flatten_all()?.to_vec1::<f32>()? == y.flatten_all()?.to_vec1::<f32>()?,
            "resumed run differs"
        );
    }
    Ok(())
}

#[test]
fn import_rejects_bad_state_naming_the_key() -> Result<()> {
    let pb = Problem::new()?;
    let mut opt = Adam::new(pb.vars(DType::F32)?, ParamsAdam::default())?;
    let mut state = opt.export_state()?;
    state.insert("v.1".into(), Tensor::zeros(4, DType::F32, &Device::Cpu)?);
    let err = opt.import_state(&state).err().context("bad shape accepted")?;
    ensure!(matches!(&err, Error::State { key, .. } if key == "v.1"), "{err}");
    state.remove("m.0");
    let err = opt.import_state(&state).err().context("missing key accepted")?;
    ensure!(matches!(&err, Error::State { key, .. } if key == "m.0"), "{err}");
    Ok(())
}

#[test]
fn vars_without_gradient_are_skipped() -> Result<()> {
    let a = Var::new(&[1f32, 2.], &Device::Cpu)?;
    let frozen = Var::new(&[5f32], &Device::Cpu)?;
    let mut opt = Adam::new(vec![a.clone(), frozen.clone()], ParamsAdam::default())?;
    opt.backward_step(&a.sqr()?.sum_all()?)?;
    assert_eq!(frozen.to_vec1::<f32>()?, vec![5.0]);
    ensure!(a.to_vec1::<f32>()?[0] < 1.0);
    Ok(())
}
