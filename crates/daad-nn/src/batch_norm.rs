//! `BatchNorm2d` with PyTorch semantics (biased variance to normalise, unbiased for the running
//! variance, running stats updated in place in train mode) and an optionally fused activation.

use crate::activation::{activation, Activation};
use crate::fused::{BnActOp, BnStats};
use crate::ops::fast_path;
use candle_core::{DType, ModuleT, Result, Tensor, Var};
use std::sync::{Arc, Mutex};

/// Batch normalisation over `(B, C, H, W)`; vars "weight", "bias", "running_mean", "running_var".
#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    eps: f64,
    momentum: f64,
}

/// Creates a [`BatchNorm2d`] over `c` channels (PyTorch: eps 1e-5, momentum 0.1).
pub fn batch_norm2d(
    c: usize,
    eps: f64,
    momentum: f64,
    vb: candle_nn::VarBuilder,
) -> Result<BatchNorm2d> {
    use candle_nn::Init;
    let weight = vb.get_with_hints(c, "weight", Init::Const(1.0))?;
    let bias = vb.get_with_hints(c, "bias", Init::Const(0.0))?;
    let rm = vb.get_with_hints(c, "running_mean", Init::Const(0.0))?;
    let rv = vb.get_with_hints(c, "running_var", Init::Const(1.0))?;
    Ok(BatchNorm2d {
        weight,
        bias,
        running_mean: Var::from_tensor(&rm)?,
        running_var: Var::from_tensor(&rv)?,
        eps,
        momentum,
    })
}

impl BatchNorm2d {
    /// Number of channels.
    pub fn num_features(&self) -> usize {
        self.weight.elem_count()
    }

    /// Scale (gamma), `(C,)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// Shift (beta), `(C,)`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// Running mean, `(C,)`.
    pub fn running_mean(&self) -> &Tensor {
        self.running_mean.as_tensor()
    }

    /// Running (unbiased) variance, `(C,)`.
    pub fn running_var(&self) -> &Tensor {
        self.running_var.as_tensor()
    }

    /// Epsilon added to the variance.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Momentum of the running statistics.
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// Normalises `x` (batch stats when `train`, running stats otherwise) then applies `act`.
    pub fn forward_act(&self, x: &Tensor, train: bool, act: Activation) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        if c != self.num_features() {
            candle_core::bail!(
                "BatchNorm2d: input {:?} has {c} channels, the layer has {}",
                x.dims(),
                self.num_features()
            )
        }
        let fast = fast_path(&[Some(x), Some(&self.weight), Some(&self.bias)])
            && self.running_mean.dtype() == DType::F32;
        if !fast {
            let y = self.candle_forward(x, train)?;
            return activation(&y, act);
        }
        let stats = Arc::new(Mutex::new(BnStats::default()));
        let fixed = if train {
            None
        } else {
            Some((
                self.running_mean.as_tensor().to_vec1::<f32>()?,
                self.running_var.as_tensor().to_vec1::<f32>()?,
            ))
        };
        let op = BnActOp { eps: self.eps, act, fixed, stats: stats.clone() };
        let y =
            x.contiguous()?.apply_op3(&self.weight.contiguous()?, &self.bias.contiguous()?, op)?;
        if train {
            let st = stats.lock().expect("bn stats lock").clone();
            let dev = x.device();
            self.update_running(
                &Tensor::from_vec(st.mean, c, dev)?,
                &Tensor::from_vec(st.var, c, dev)?,
                b * h * w,
            )?;
        }
        Ok(y)
    }

    /// Reference path built from candle tensor ops (fallback for non-CPU/f32).
    pub fn candle_forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let shape = (1, c, 1, 1);
        let (mean, var) = if train {
            let n = b * h * w;
            let xs = x.to_dtype(DType::F32)?;
            let mean = xs.mean_keepdim(0)?.mean_keepdim(2)?.mean_keepdim(3)?;
            let var = xs
                .broadcast_sub(&mean)?
                .sqr()?
                .mean_keepdim(0)?
                .mean_keepdim(2)?
                .mean_keepdim(3)?;
            self.update_running(&mean.detach().flatten_all()?, &var.detach().flatten_all()?, n)?;
            (mean.to_dtype(x.dtype())?, var.to_dtype(x.dtype())?)
        } else {
            (
                self.running_mean.as_tensor().detach().reshape(shape)?,
                self.running_var.as_tensor().detach().reshape(shape)?,
            )
        };
        let inv = (var + self.eps)?.sqrt()?.recip()?;
        let xhat = x.broadcast_sub(&mean)?.broadcast_mul(&inv)?;
        xhat.broadcast_mul(&self.weight.reshape(shape)?)?.broadcast_add(&self.bias.reshape(shape)?)
    }

    /// running = (1 - momentum) * running + momentum * batch (variance made unbiased).
    fn update_running(&self, mean: &Tensor, var_biased: &Tensor, n: usize) -> Result<()> {
        let m = self.momentum;
        let unbias = n as f64 / (n.max(2) - 1) as f64;
        let dt = self.running_mean.dtype();
        let rm = ((self.running_mean.as_tensor() * (1.0 - m))? + (mean.to_dtype(dt)? * m)?)?;
        let rv = ((self.running_var.as_tensor() * (1.0 - m))?
            + (var_biased.to_dtype(dt)? * (m * unbias))?)?;
        self.running_mean.set(&rm)?;
        self.running_var.set(&rv)
    }
}

impl ModuleT for BatchNorm2d {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_act(x, train, Activation::Identity)
    }
}
