//! Functional entry points: dispatch between the fast CPU custom ops and candle's own ops.

use crate::conv_ops::{GemmCol2im, Im2colGemm};
use crate::im2col::ConvParams;
use crate::{Conv2dConfig, ConvTranspose2dConfig, Error, Precision};
use candle_core::{DType, Result, Tensor};

/// True when every tensor is a CPU f32 tensor, i.e. the custom ops apply.
pub fn fast_path(ts: &[Option<&Tensor>]) -> bool {
    ts.iter().flatten().all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// Candle's own convolution plus bias: the fallback path and the reference in tests/benches.
pub fn candle_conv2d(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    cfg: Conv2dConfig,
) -> Result<Tensor> {
    let y = x.conv2d(w, cfg.padding, cfg.stride, cfg.dilation, 1)?;
    match b {
        Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?),
        None => Ok(y),
    }
}

/// Candle's own transposed convolution plus bias: fallback path and reference.
pub fn candle_conv_transpose2d(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    cfg: ConvTranspose2dConfig,
) -> Result<Tensor> {
    let y = x.conv_transpose2d(w, cfg.padding, cfg.output_padding, cfg.stride, cfg.dilation)?;
    match b {
        Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?),
        None => Ok(y),
    }
}

/// The products at `prec` need the custom ops: bf16 is refused (typed) where candle's own f32
/// convolutions would run instead.
fn fallback_ok(prec: Precision, layer: &'static str) -> Result<()> {
    if prec == Precision::F32 {
        return Ok(());
    }
    Err(Error::Unsupported {
        layer,
        arg: "precision",
        value: prec.to_string(),
        hint: "bf16 products are implemented for CPU f32 tensors only; use precision f32",
    }
    .into_candle())
}

/// 2-D convolution of `x (B,Cin,H,W)` with `w (Cout,Cin,k,k)` and optional bias.
pub fn conv2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>, cfg: Conv2dConfig) -> Result<Tensor> {
    conv2d_with_precision(x, w, b, cfg, Precision::F32)
}

/// [`conv2d`] whose forward product runs at `prec` (its gradients are f32).
pub fn conv2d_with_precision(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    cfg: Conv2dConfig,
    prec: Precision,
) -> Result<Tensor> {
    if !fast_path(&[Some(x), Some(w), b]) {
        fallback_ok(prec, "Conv2d")?;
        return candle_conv2d(x, w, b, cfg);
    }
    let (_, _, h, wd) = x.dims4()?;
    let k = w.dim(2)?;
    let (Some(oh), Some(ow)) = (cfg.out_size(h, k), cfg.out_size(wd, k)) else {
        candle_core::bail!("conv2d: input {:?} too small for kernel {k} with {cfg:?}", x.dims())
    };
    let op = Im2colGemm {
        p: ConvParams { k, stride: cfg.stride, pad: cfg.padding, dil: cfg.dilation },
        cols_hw: (oh, ow),
        prec,
    };
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    match b {
        Some(b) => x.apply_op3(&w, &b.contiguous()?, op),
        None => x.apply_op2(&w, op),
    }
}

/// 2-D transposed convolution of `x (B,Cin,H,W)` with `w (Cin,Cout,k,k)` and optional bias.
pub fn conv_transpose2d(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    cfg: ConvTranspose2dConfig,
) -> Result<Tensor> {
    conv_transpose2d_with_precision(x, w, b, cfg, Precision::F32)
}

/// [`conv_transpose2d`] whose forward product runs at `prec` (its gradients are f32).
pub fn conv_transpose2d_with_precision(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    cfg: ConvTranspose2dConfig,
    prec: Precision,
) -> Result<Tensor> {
    if !fast_path(&[Some(x), Some(w), b]) {
        fallback_ok(prec, "ConvTranspose2d")?;
        return candle_conv_transpose2d(x, w, b, cfg);
    }
    let (_, _, h, wd) = x.dims4()?;
    let k = w.dim(2)?;
    let (Some(oh), Some(ow)) = (cfg.out_size(h, k), cfg.out_size(wd, k)) else {
        candle_core::bail!("conv_transpose2d: empty output for input {:?} with {cfg:?}", x.dims())
    };
    // The input is the column side, the output the image side.
    let op = GemmCol2im {
        p: ConvParams { k, stride: cfg.stride, pad: cfg.padding, dil: cfg.dilation },
        img_hw: (oh, ow),
        prec,
    };
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    match b {
        Some(b) => x.apply_op3(&w, &b.contiguous()?, op),
        None => x.apply_op2(&w, op),
    }
}
