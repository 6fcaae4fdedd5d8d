//! Adam / AdamW that update every parameter in place in one fused pass per tensor (rayon across
//! and within tensors) on CPU f32; other devices/dtypes use tensor ops with the same maths.
//!
//! Semantics are PyTorch's `torch.optim.Adam` (and `AdamW` with `decoupled = true`): bias
//! correction on both moments, `eps` added outside the square root.

use crate::error::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, Device, Layout, Tensor, Var};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Mutex;

/// Adam hyper-parameters (defaults are PyTorch's Adam: lr 1e-3, betas 0.9/0.999, eps 1e-8, no decay).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamsAdam {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the square root of the second moment.
    pub eps: f64,
    /// Weight decay (L2 added to the gradient, or decoupled when `decoupled`).
    pub weight_decay: f64,
    /// AdamW-style decoupled weight decay (`theta *= 1 - lr * wd`) instead of L2 in the gradient.
    pub decoupled: bool,
}

impl Default for ParamsAdam {
    fn default() -> Self {
        Self { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decoupled: false }
    }
}

/// Moment storage: plain buffers for the fused CPU path, variables elsewhere.
enum Moments {
    Cpu { m: Vec<f32>, v: Vec<f32> },
    Tensor { m: Var, v: Var },
}

struct Slot {
    index: usize,
    var: Var,
    moments: Moments,
}

/// Adam/AdamW optimiser implementing [`candle_nn::Optimizer`].
pub struct Adam {
    slots: Vec<Slot>,
    step: usize,
    params: ParamsAdam,
}

impl std::fmt::Debug for Adam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adam")
            .field("n_vars", &self.slots.len())
            .field("step", &self.step)
            .field("params", &self.params)
            .finish()
    }
}

/// Per-step scalars shared by both paths.
#[derive(Clone, Copy)]
struct StepScalars {
    lr: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    wd: f32,
    decoupled: bool,
    scale_m: f32,
    scale_v: f32,
}

/// The fused in-place update of one parameter tensor; `m`/`v` are the optimiser's own buffers.
struct FusedAdam<'a> {
    s: StepScalars,
    moments: Mutex<(&'a mut [f32], &'a mut [f32])>,
}

/// Elements per rayon task inside one tensor (large enough to amortise scheduling).
const CHUNK: usize = 1 << 15;

impl candle_core::InplaceOp2 for FusedAdam<'_> {
    fn name(&self) -> &'static str {
        "daad-fused-adam"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (CpuStorage::F32(theta), CpuStorage::F32(grad)) = (s1, s2) else {
            candle_core::bail!("daad-fused-adam: f32 storage expected")
        };
        let (Some((t0, t1)), Some((g0, g1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("daad-fused-adam: contiguous parameter and gradient expected")
        };
        let theta = &mut theta[t0..t1];
        let grad = &grad[g0..g1];
        let mut guard = self.moments.lock().expect("adam moments lock");
        let (m, v) = &mut *guard;
        if theta.len() != grad.len() || m.len() != theta.len() {
            candle_core::bail!("daad-fused-adam: length mismatch")
        }
        let s = self.s;
        theta
            .par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .for_each(|(((t, g), m), v)| update_slice(s, t, g, m, v));
        Ok(())
    }
}

#[inline]
fn update_slice(s: StepScalars, t: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let (c1, c2) = (1.0 - s.b1, 1.0 - s.b2);
    let decay = 1.0 - s.lr * s.wd;
    for (((t, &g), m), v) in t.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if s.decoupled {
            *t *= decay;
            g
        } else {
            g + s.wd * *t
        };
        let nm = s.b1 * *m + c1 * g;
        let nv = s.b2 * *v + c2 * g * g;
        *m = nm;
        *v = nv;
        *t -= s.lr * (nm * s.scale_m) / ((nv * s.scale_v).sqrt() + s.eps);
    }
}

fn fused_ok(var: &Var) -> bool {
    var.device().is_cpu() && var.dtype() == DType::F32 && var.is_contiguous()
}

impl Adam {
    /// Number of steps taken so far.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// The hyper-parameters.
    pub fn params(&self) -> &ParamsAdam {
        &self.params
    }

    fn scalars(&self) -> StepScalars {
        let p = &self.params;
        let t = self.step as i32;
        StepScalars {
            lr: p.lr as f32,
            b1: p.beta1 as f32,
            b2: p.beta2 as f32,
            eps: p.eps as f32,
            wd: p.weight_decay as f32,
            decoupled: p.decoupled,
            scale_m: (1.0 / (1.0 - p.beta1.powi(t))) as f32,
            scale_v: (1.0 / (1.0 - p.beta2.powi(t))) as f32,
        }
    }

    /// Exports the state: "step" (u32 scalar), "m.{i}" and "v.{i}" (i = index in `new`'s vars).
    pub fn export_state(&self) -> candle_core::Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        out.insert("step".to_string(), Tensor::new(self.step as u32, &Device::Cpu)?);
        for s in &self.slots {
            let (m, v) = match &s.moments {
                Moments::Cpu { m, v } => (
                    Tensor::from_slice(m, s.var.shape(), s.var.device())?,
                    Tensor::from_slice(v, s.var.shape(), s.var.device())?,
                ),
                Moments::Tensor { m, v } => (m.as_tensor().copy()?, v.as_tensor().copy()?),
            };
            out.insert(format!("m.{}", s.index), m);
            out.insert(format!("v.{}", s.index), v);
        }
        Ok(out)
    }

    /// Restores a state written by [`Adam::export_state`]; checks every key and shape first.
    pub fn import_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let get = |key: &str| {
            state.get(key).ok_or_else(|| Error::State {
                key: key.to_string(),
                msg: "missing; was the checkpoint written for the same parameter list?".into(),
            })
        };
        let step = get("step")?;
        if step.rank() != 0 {
            return Err(Error::State {
                key: "step".into(),
                msg: format!("expected a scalar, got shape {:?}", step.dims()),
            });
        }
        let step = step.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        if step < 0.0 || step.fract() != 0.0 {
            return Err(Error::State {
                key: "step".into(),
                msg: format!("expected a non-negative integer, got {step}"),
            });
        }
        // Validate everything before mutating anything.
        for s in &self.slots {
            for key in [format!("m.{}", s.index), format!("v.{}", s.index)] {
                let t = get(&key)?;
                if t.dims() != s.var.dims() {
                    return Err(Error::State {
                        key,
                        msg: format!(
                            "shape {:?} does not match the parameter's {:?}",
                            t.dims(),
                            s.var.dims()
                        ),
                    });
                }
            }
        }
        for s in &mut self.slots {
            let m = get(&format!("m.{}", s.index))?;
            let v = get(&format!("v.{}", s.index))?;
            match &mut s.moments {
                Moments::Cpu { m: mb, v: vb } => {
                    *mb = m.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
                    *vb = v.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
                }
                Moments::Tensor { m: mv, v: vv } => {
                    let dev = s.var.device();
                    mv.set(&m.to_dtype(s.var.dtype())?.to_device(dev)?)?;
                    vv.set(&v.to_dtype(s.var.dtype())?.to_device(dev)?)?;
                }
            }
        }
        self.step = step as usize;
        Ok(())
    }

    fn step_tensor(
        s: &StepScalars,
        var: &Var,
        m: &Var,
        v: &Var,
        g: &Tensor,
    ) -> candle_core::Result<()> {
        let theta = var.as_tensor();
        let g = if !s.decoupled && s.wd != 0.0 { (g + (theta * s.wd as f64)?)? } else { g.clone() };
        let next_m = ((m.as_tensor() * s.b1 as f64)? + (&g * (1.0 - s.b1 as f64))?)?;
        let next_v = ((v.as_tensor() * s.b2 as f64)? + (g.sqr()? * (1.0 - s.b2 as f64))?)?;
        let m_hat = (&next_m * s.scale_m as f64)?;
        let v_hat = (&next_v * s.scale_v as f64)?;
        let base =
            if s.decoupled { (theta * (1.0 - (s.lr * s.wd) as f64))? } else { theta.clone() };
        let upd = (m_hat / (v_hat.sqrt()? + s.eps as f64)?)?;
        let next = (base - (upd * s.lr as f64)?)?;
        m.set(&next_m)?;
        v.set(&next_v)?;
        var.set(&next)
    }
}

impl candle_nn::Optimizer for Adam {
    type Config = ParamsAdam;

    fn new(vars: Vec<Var>, params: ParamsAdam) -> candle_core::Result<Self> {
        let mut slots = Vec::new();
        for (index, var) in vars.into_iter().enumerate() {
            if !var.dtype().is_float() {
                continue;
            }
            let moments = if fused_ok(&var) {
                let n = var.elem_count();
                Moments::Cpu { m: vec![0.0; n], v: vec![0.0; n] }
            } else {
                Moments::Tensor {
                    m: Var::zeros(var.shape(), var.dtype(), var.device())?,
                    v: Var::zeros(var.shape(), var.dtype(), var.device())?,
                }
            };
            slots.push(Slot { index, var, moments });
        }
        Ok(Self { slots, step: 0, params })
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.step += 1;
        let s = self.scalars();
        self.slots.par_iter_mut().try_for_each(|slot| -> candle_core::Result<()> {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                return Ok(());
            };
            match &mut slot.moments {
                Moments::Cpu { m, v } => {
                    let g = g.to_dtype(DType::F32)?.contiguous()?;
                    let op = FusedAdam { s, moments: Mutex::new((&mut m[..], &mut v[..])) };
                    slot.var.as_tensor().inplace_op2(&g, &op)
                }
                Moments::Tensor { m, v } => Self::step_tensor(&s, &slot.var, m, v, g),
            }
        })
    }

    fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }
}
