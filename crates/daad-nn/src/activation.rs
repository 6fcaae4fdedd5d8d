//! Element-wise activations, standalone or fused into [`crate::BatchNorm2d::forward_act`].

use candle_core::{Result, Tensor};

/// An activation function applied after a layer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Activation {
    /// No activation.
    #[default]
    Identity,
    /// max(x, 0).
    Relu,
    /// x if x > 0 else slope * x.
    LeakyRelu(f64),
    /// tanh(x).
    Tanh,
    /// 1 / (1 + exp(-x)).
    Sigmoid,
}

/// Candle's own ops for `act`: the fallback path and the reference in tests.
pub fn candle_activation(x: &Tensor, act: Activation) -> Result<Tensor> {
    match act {
        Activation::Identity => Ok(x.clone()),
        Activation::Relu => x.relu(),
        Activation::LeakyRelu(s) => {
            // x*s for negatives: max(x, s*x) holds only for 0 <= s <= 1, so use a mask instead.
            let pos = x.ge(0.0)?.to_dtype(x.dtype())?;
            let neg = (1.0 - &pos)?;
            (x * &pos)? + ((x * &neg)? * s)?
        }
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => candle_nn::ops::sigmoid(x),
    }
}

/// Applies `act` to `x` (any shape).
pub fn activation(x: &Tensor, act: Activation) -> Result<Tensor> {
    if act == Activation::Identity {
        return Ok(x.clone());
    }
    if crate::ops::fast_path(&[Some(x)]) {
        x.contiguous()?.apply_op1(crate::fused::ActOp(act))
    } else {
        candle_activation(x, act)
    }
}
