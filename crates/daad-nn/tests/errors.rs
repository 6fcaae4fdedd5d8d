//! Unsupported arguments and bad shapes give the crate's typed error, never a wrong answer; other
//! dtypes fall back to candle's own ops.

mod common;

use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use common::{assert_close, rand_tensor};
use daad_nn::{
    conv2d, conv_transpose2d, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig, Error,
};

#[test]
fn groups_are_a_typed_error() -> Result<()> {
    let cfg = candle_nn::Conv2dConfig { groups: 2, ..Default::default() };
    let err = Conv2dConfig::from_candle(cfg).err().context("groups accepted")?;
    ensure!(matches!(err, Error::Unsupported { arg: "groups", .. }), "{err}");
    Ok(())
}

#[test]
fn bad_configs_are_typed_errors() -> Result<()> {
    let w = rand_tensor(1, &[4, 3, 3, 3])?;
    let zero_stride = Conv2dConfig { stride: 0, ..Default::default() };
    let err = Conv2d::new(w.clone(), None, zero_stride).err().context("stride 0")?;
    ensure!(matches!(err, Error::Unsupported { arg: "stride", .. }), "{err}");
    let big_op = ConvTranspose2dConfig { stride: 2, output_padding: 2, ..Default::default() };
    let err = ConvTranspose2d::new(w.clone(), None, big_op).err().context("output_padding")?;
    ensure!(matches!(err, Error::Unsupported { arg: "output_padding", .. }), "{err}");
    let rect = rand_tensor(1, &[4, 3, 3, 2])?;
    let err = Conv2d::new(rect, None, Conv2dConfig::default()).err().context("non-square")?;
    ensure!(matches!(err, Error::Shape { what: "weight", .. }), "{err}");
    let err = Conv2d::new(w, Some(rand_tensor(2, &[5])?), Conv2dConfig::default())
        .err()
        .context("bias")?;
    ensure!(matches!(err, Error::Shape { what: "bias", .. }), "{err}");
    Ok(())
}

#[test]
fn bad_inputs_are_typed_errors() -> Result<()> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let conv = conv2d(3, 4, 3, Conv2dConfig::default(), true, vb.pp("c"))?;
    let x = rand_tensor(1, &[1, 2, 8, 8])?; // wrong channel count
    let err = conv.try_forward(&x).err().context("channels")?;
    ensure!(matches!(err, Error::Shape { what: "input", .. }), "{err}");
    ensure!(conv.forward(&x).is_err());
    let tiny = rand_tensor(1, &[1, 3, 2, 2])?; // smaller than the kernel
    ensure!(matches!(conv.try_forward(&tiny), Err(Error::Shape { .. })));
    let convt = conv_transpose2d(3, 4, 3, ConvTranspose2dConfig::default(), true, vb.pp("t"))?;
    ensure!(matches!(convt.try_forward(&x), Err(Error::Shape { .. })));
    Ok(())
}

#[test]
fn f64_falls_back_to_candle_and_agrees() -> Result<()> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let cfg = ConvTranspose2dConfig { padding: 1, stride: 2, ..Default::default() };
    let convt = conv_transpose2d(3, 4, 4, cfg, true, vb)?;
    let x = rand_tensor(1, &[2, 3, 5, 5])?;
    let y32 = convt.forward(&x)?;
    let w64 = convt.weight().to_dtype(DType::F64)?;
    let b64 = convt.bias().context("bias")?.to_dtype(DType::F64)?;
    let c64 = ConvTranspose2d::new(w64, Some(b64), cfg)?;
    let y64 = c64.forward(&x.to_dtype(DType::F64)?)?;
    ensure!(y64.dtype() == DType::F64);
    assert_close("f64 fallback", &y64.to_dtype(DType::F32)?, &y32, 1e-5)?;
    let _ = Tensor::zeros(1, DType::F32, &Device::Cpu)?;
    Ok(())
}
