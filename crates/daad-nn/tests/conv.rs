//! Forward and every gradient of the fast Conv2d / ConvTranspose2d ops against candle's own ops
//! (candle_core conv2d / conv_transpose2d and their backward in candle-core's backprop.rs), on
//! seeded random inputs, within 1e-4 relative (max abs difference over max abs reference).

mod common;

use anyhow::{Context, Result};
use candle_core::{Tensor, Var};
use common::{assert_close, rand_tensor};
use daad_nn::ops::{candle_conv2d, candle_conv_transpose2d, conv2d, conv_transpose2d};
use daad_nn::{Conv2dConfig, ConvTranspose2dConfig};

const TOL: f32 = 1e-4;

/// Output, dx, dw, db of `f` for loss = sum(y * r).
fn run<F>(f: F, x: &Var, w: &Var, b: &Var, r_seed: u64) -> Result<[Tensor; 4]>
where
    F: Fn(&Tensor, &Tensor, Option<&Tensor>) -> candle_core::Result<Tensor>,
{
    let y = f(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()))?;
    let r = rand_tensor(r_seed, y.dims())?;
    let grads = (&y * &r)?.sum_all()?.backward()?;
    let g = |v: &Var| grads.get(v).cloned().context("missing gradient");
    Ok([y, g(x)?, g(w)?, g(b)?])
}

fn compare(name: &str, ours: [Tensor; 4], theirs: [Tensor; 4]) -> Result<()> {
    for (what, (a, b)) in
        ["output", "d input", "d weight", "d bias"].iter().zip(ours.iter().zip(theirs.iter()))
    {
        assert_close(&format!("{name} {what}"), a, b, TOL)?;
    }
    Ok(())
}

/// Conv2d case: batch, in, out, k, H, W, config.
fn check_conv(
    bs: usize,
    cin: usize,
    cout: usize,
    k: usize,
    h: usize,
    w: usize,
    cfg: Conv2dConfig,
) -> Result<()> {
    let seed = (bs * 1000 + cin * 100 + cout * 10 + k + h) as u64;
    let x = Var::from_tensor(&rand_tensor(seed, &[bs, cin, h, w])?)?;
    let wt = Var::from_tensor(&(rand_tensor(seed + 1, &[cout, cin, k, k])? * 0.2)?)?;
    let b = Var::from_tensor(&rand_tensor(seed + 2, &[cout])?)?;
    let name = format!("conv2d b{bs} {cin}->{cout} k{k} {h}x{w} {cfg:?}");
    let ours = run(|x, w, b| conv2d(x, w, b, cfg), &x, &wt, &b, seed + 3).context(name.clone())?;
    let theirs = run(|x, w, b| candle_conv2d(x, w, b, cfg), &x, &wt, &b, seed + 3)?;
    compare(&name, ours, theirs)
}

/// ConvTranspose2d case: batch, in, out, k, H, W, config.
fn check_convt(
    bs: usize,
    cin: usize,
    cout: usize,
    k: usize,
    h: usize,
    w: usize,
    cfg: ConvTranspose2dConfig,
) -> Result<()> {
    let seed = (bs * 1000 + cin * 100 + cout * 10 + k + h + 7) as u64;
    let x = Var::from_tensor(&rand_tensor(seed, &[bs, cin, h, w])?)?;
    let wt = Var::from_tensor(&(rand_tensor(seed + 1, &[cin, cout, k, k])? * 0.2)?)?;
    let b = Var::from_tensor(&rand_tensor(seed + 2, &[cout])?)?;
    let name = format!("conv_transpose2d b{bs} {cin}->{cout} k{k} {h}x{w} {cfg:?}");
    let ours = run(|x, w, b| conv_transpose2d(x, w, b, cfg), &x, &wt, &b, seed + 3)
        .context(name.clone())?;
    let theirs = run(|x, w, b| candle_conv_transpose2d(x, w, b, cfg), &x, &wt, &b, seed + 3)?;
    compare(&name, ours, theirs)
}

const DOWN: Conv2dConfig = Conv2dConfig { padding: 1, stride: 2, dilation: 1 };
const UP: ConvTranspose2dConfig =
    ConvTranspose2dConfig { padding: 1, output_padding: 0, stride: 2, dilation: 1 };

#[test]
fn model_shapes_64px() -> Result<()> {
    // Encoder of the UNet autoencoder at 64 px, batch 2 (per-item parallel path).
    for (cin, cout, s) in [(3, 64, 64), (64, 128, 32), (128, 256, 16), (256, 512, 8)] {
        check_conv(2, cin, cout, 4, s, s, DOWN)?;
    }
    // Decoder with skip-concatenated inputs.
    for (cin, cout, s) in [(512, 256, 4), (512, 128, 8), (256, 64, 16), (128, 3, 32)] {
        check_convt(2, cin, cout, 4, s, s, UP)?;
    }
    Ok(())
}

#[test]
fn model_shapes_256px() -> Result<()> {
    // Batch 1 keeps candle's naive reference affordable (and exercises the inside-gemm plan).
    for (cin, cout, s) in [(3, 64, 256), (64, 128, 128), (128, 256, 64), (256, 512, 32)] {
        check_conv(1, cin, cout, 4, s, s, DOWN)?;
    }
    for (cin, cout, s) in
        [(1024, 256, 16), (512, 256, 16), (512, 128, 32), (256, 64, 64), (128, 3, 128)]
    {
        check_convt(1, cin, cout, 4, s, s, UP)?;
    }
    Ok(())
}

#[test]
fn other_conv_combinations() -> Result<()> {
    let c = |padding, stride, dilation| Conv2dConfig { padding, stride, dilation };
    check_conv(3, 5, 7, 3, 9, 11, c(1, 1, 1))?; // k3 s1 p1, odd sizes, batch 3
    check_conv(2, 4, 6, 1, 7, 5, c(0, 1, 1))?; // k1 (im2col skipped)
    check_conv(2, 4, 6, 1, 7, 5, c(0, 2, 1))?; // k1 s2
    check_conv(2, 3, 4, 3, 13, 10, c(2, 1, 2))?; // dilation 2
    check_conv(8, 3, 5, 4, 15, 15, c(1, 2, 1))?; // odd size with k4 s2, batch 8
    check_conv(1, 2, 3, 5, 12, 9, c(2, 3, 1))?; // k5 s3
    check_conv(2, 3, 4, 3, 8, 8, c(0, 2, 2))?; // no padding, stride and dilation 2
    check_conv(2, 3, 4, 3, 50, 48, c(1, 1, 1))?; // >= 2048 positions per item: per-item plan
    Ok(())
}

#[test]
fn other_conv_transpose_combinations() -> Result<()> {
    let c = |padding, output_padding, stride, dilation| ConvTranspose2dConfig {
        padding,
        output_padding,
        stride,
        dilation,
    };
    check_convt(3, 5, 7, 3, 9, 11, c(1, 0, 1, 1))?; // k3 s1 p1, odd sizes
    check_convt(2, 4, 6, 1, 7, 5, c(0, 0, 1, 1))?; // k1
    check_convt(2, 4, 3, 3, 7, 6, c(1, 1, 2, 1))?; // output_padding 1
    check_convt(2, 3, 4, 3, 6, 7, c(1, 0, 1, 2))?; // dilation 2
    check_convt(2, 3, 4, 3, 5, 5, c(2, 1, 2, 2))?; // stride and dilation 2 with output_padding
    check_convt(8, 3, 5, 4, 7, 7, c(1, 0, 2, 1))?; // batch 8
    check_convt(1, 2, 3, 5, 4, 6, c(0, 2, 3, 1))?; // k5 s3 op2
    check_convt(2, 3, 4, 3, 50, 48, c(1, 0, 1, 1))?; // >= 2048 positions per item: per-item plan
    Ok(())
}

#[test]
fn conv_without_bias_matches() -> Result<()> {
    let x = rand_tensor(1, &[2, 3, 10, 10])?;
    let w = rand_tensor(2, &[4, 3, 3, 3])?;
    let cfg = Conv2dConfig { padding: 1, stride: 2, dilation: 1 };
    assert_close(
        "conv2d no bias",
        &conv2d(&x, &w, None, cfg)?,
        &candle_conv2d(&x, &w, None, cfg)?,
        TOL,
    )?;
    let wt = rand_tensor(3, &[3, 4, 3, 3])?;
    let cfg = ConvTranspose2dConfig { padding: 1, output_padding: 1, stride: 2, dilation: 1 };
    assert_close(
        "conv_transpose2d no bias",
        &conv_transpose2d(&x, &wt, None, cfg)?,
        &candle_conv_transpose2d(&x, &wt, None, cfg)?,
        TOL,
    )?;
    Ok(())
}

#[test]
fn non_contiguous_input_is_handled() -> Result<()> {
    let x = rand_tensor(5, &[2, 3, 8, 6])?.transpose(2, 3)?; // (2, 3, 6, 8), strided
    let w = rand_tensor(6, &[4, 3, 3, 3])?;
    let cfg = Conv2dConfig { padding: 1, stride: 1, dilation: 1 };
    assert_close(
        "strided input",
        &conv2d(&x, &w, None, cfg)?,
        &candle_conv2d(&x, &w, None, cfg)?,
        TOL,
    )
}

#[test]
fn input_without_gradient_is_skipped_weight_grad_still_right() -> Result<()> {
    // The network's input image is a plain tensor: no input gradient is computed for it.
    let x = rand_tensor(31, &[2, 3, 16, 16])?;
    let w = Var::from_tensor(&rand_tensor(32, &[8, 3, 4, 4])?)?;
    let y1 = conv2d(&x, &w, None, DOWN)?;
    let g1 = y1.sum_all()?.backward()?;
    assert!(g1.get(&x).is_none());
    let y2 = candle_conv2d(&x, &w, None, DOWN)?;
    let g2 = y2.sum_all()?.backward()?;
    assert_close(
        "dw with plain input",
        g1.get(&w).context("ours")?,
        g2.get(&w).context("candle")?,
        TOL,
    )
}

/// The two ops are each other's adjoint with the same weight `(M, C, k, k)`: for a conv mapping
/// x (B, C, H, W) to y (B, M, OH, OW), <conv(x), y> = <x, conv_transpose(y)>, which is what lets
/// each serve as the other's input gradient.
#[test]
fn conv_and_conv_transpose_are_adjoint() -> Result<()> {
    let d = candle_core::Device::Cpu;
    for (c, m, s, k, stride, pad, dil) in [
        (3, 5, 10, 3, 2, 1, 1),
        (4, 6, 16, 4, 2, 1, 1),
        (2, 3, 11, 3, 1, 2, 2),
        (5, 4, 8, 1, 1, 0, 1),
    ] {
        let cfg = Conv2dConfig { padding: pad, stride, dilation: dil };
        let x = Tensor::randn(0f32, 1., (2, c, s, s), &d)?;
        let w = Tensor::randn(0f32, 1., (m, c, k, k), &d)?;
        let y = conv2d(&x, &w, None, cfg)?;
        let oh = y.dim(2)?;
        // output padding so the transposed conv lands on exactly (H, W)
        let op = s + 2 * pad - dil * (k - 1) - 1 - (oh - 1) * stride;
        let tcfg =
            ConvTranspose2dConfig { padding: pad, output_padding: op, stride, dilation: dil };
        let r = Tensor::randn(0f32, 1., y.dims(), &d)?;
        let xt = conv_transpose2d(&r, &w, None, tcfg)?;
        assert_eq!(xt.dims(), x.dims());
        let lhs = (&y * &r)?.sum_all()?.to_scalar::<f32>()? as f64;
        let rhs = (&x * &xt)?.sum_all()?.to_scalar::<f32>()? as f64;
        let scale = (&y.abs()? * &r.abs()?)?.sum_all()?.to_scalar::<f32>()? as f64;
        assert!(
            (lhs - rhs).abs() <= 1e-5 * scale,
            "<conv x, y> = {lhs} but <x, conv_t y> = {rhs} at {cfg:?}"
        );
    }
    Ok(())
}
