//! The bf16 product (`daad_nn::gemm`) and the layers at `Precision::Bf16`: against an f64
//! reference within the error bound of bf16 operands, the AVX512_BF16 kernel against the portable
//! one, and bf16 convolutions against f32 convolutions of bf16-rounded tensors.

mod common;

use anyhow::{ensure, Result};
use candle_core::{DType, Device, Module, Tensor};
use common::{assert_close, rand_tensor};
use daad_nn::gemm::{bf16_native, matmul, matmul_bf16, round_bf16, Bf16Kernel, Mat};
use daad_nn::ops::{
    conv2d, conv2d_with_precision, conv_transpose2d, conv_transpose2d_with_precision,
};
use daad_nn::{Conv2d, Conv2dConfig, ConvTranspose2dConfig, Error, Precision};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Unit roundoff of f32.
const U32: f64 = 1.0 / (1u64 << 24) as f64;

fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// A strided operand: `rows x cols` stored row-major (`rs = cols + pad`) or column-major
/// (`cs = rows + pad`), with `pad` unused elements per line (what a strided view skips).
struct Operand {
    data: Vec<f32>,
    rs: usize,
    cs: usize,
}

impl Operand {
    fn new(seed: u64, rows: usize, cols: usize, col_major: bool, pad: usize) -> Operand {
        let (rs, cs, len) = if col_major {
            (1, rows + pad, cols * (rows + pad))
        } else {
            (cols + pad, 1, rows * (cols + pad))
        };
        Operand { data: values(seed, len), rs, cs }
    }
    fn view(&self) -> Mat<'_> {
        Mat { data: &self.data, rs: self.rs, cs: self.cs }
    }
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// One product case: shape, strides, accumulation, threads.
struct Case {
    m: usize,
    n: usize,
    k: usize,
    a_col_major: bool,
    b_col_major: bool,
    accumulate: bool,
    threads: usize,
}

/// Runs `kernel` on the case: (result, exact f64 product of the bf16-rounded operands plus the
/// initial dst, sum |a||b| per element).
fn run_case(c: &Case, seed: u64, kernel: Bf16Kernel) -> (Vec<f32>, Vec<f64>, Vec<f64>) {
    let a = Operand::new(seed, c.m, c.k, c.a_col_major, 3);
    let b = Operand::new(seed + 1, c.k, c.n, c.b_col_major, 5);
    let init = values(seed + 2, c.m * c.n);
    let mut dst = init.clone();
    matmul_bf16(kernel, (c.m, c.n, c.k), &mut dst, c.accumulate, a.view(), b.view(), c.threads);
    let mut exact = vec![0f64; c.m * c.n];
    let mut mag = vec![0f64; c.m * c.n];
    for i in 0..c.m {
        for j in 0..c.n {
            let (mut s, mut g) =
                (if c.accumulate { f64::from(init[i * c.n + j]) } else { 0.0 }, 0.0);
            for p in 0..c.k {
                let (x, y) = (f64::from(a.at(i, p)), f64::from(b.at(p, j)));
                s += f64::from(round_bf16(a.at(i, p))) * f64::from(round_bf16(b.at(p, j)));
                g += (x * y).abs();
            }
            exact[i * c.n + j] = s;
            mag[i * c.n + j] = g;
        }
    }
    (dst, exact, mag)
}

fn cases() -> Vec<Case> {
    // Shapes off every block size (MR 12, NR 32, KC 256, MC 144, NC 1024), k odd, k = 1, both
    // operand layouts, both accumulation modes, 1 and 2 threads (the column and the row split).
    let s = |m, n, k, acm, bcm, acc, t| Case {
        m,
        n,
        k,
        a_col_major: acm,
        b_col_major: bcm,
        accumulate: acc,
        threads: t,
    };
    vec![
        s(1, 1, 1, false, false, false, 1),
        s(13, 33, 7, false, false, true, 1),
        s(150, 1100, 515, false, false, false, 2),
        s(150, 70, 515, true, false, true, 2),
        s(37, 1061, 260, false, true, false, 1),
        s(290, 45, 33, true, true, true, 2),
        s(64, 128, 48, false, false, false, 2),
    ]
}

// Every element within the rigorous bound: the exact product of the bf16-rounded operands, plus
// f32 accumulation error (k u sum|a||b|); and that product within 2^-8 sum|a||b| of the f32
// operands' product (each operand rounds by at most 2^-9 relative).
#[test]
fn bf16_product_matches_rounded_reference_on_odd_shapes() -> Result<()> {
    for (ci, c) in cases().iter().enumerate() {
        let (got, exact, mag) = run_case(c, 10 * ci as u64, Bf16Kernel::best());
        let acc_err = (c.k + 2) as f64 * U32;
        let mut worst = 0f64;
        for ((&g, &e), &s) in got.iter().zip(&exact).zip(&mag) {
            let bound = acc_err * (s + e.abs()) + 1e-30;
            worst = worst.max((f64::from(g) - e).abs() / bound);
        }
        ensure!(
            worst <= 1.0,
            "case {ci} ({}x{}x{}): error {worst:.2} x the f32 accumulation bound",
            c.m,
            c.n,
            c.k
        );
    }
    Ok(())
}

// The rounding is real: bf16 has 8 significant bits, so 1 + 2^-10 multiplies as 1.
#[test]
fn bf16_product_rounds_the_operands() {
    let a = [1.0 + 2f32.powi(-10); 3];
    let b = [1.0f32; 3];
    for kernel in [Bf16Kernel::Avx512, Bf16Kernel::Portable] {
        let mut dst = [0f32];
        let (av, bv) = (Mat { data: &a, rs: 3, cs: 1 }, Mat { data: &b, rs: 1, cs: 1 });
        matmul_bf16(kernel, (1, 1, 3), &mut dst, false, av, bv, 1);
        assert_eq!(dst[0], 3.0, "{kernel:?}");
        matmul(Precision::F32, (1, 1, 3), &mut dst, false, av, bv, 1);
        assert!(dst[0] > 3.0);
    }
}

// Relative to f32 operands the error is that of bf16: relative L2 about 2^-9, well under 2^-7.
#[test]
fn bf16_product_is_within_bf16_error_of_f32() -> Result<()> {
    let c = Case {
        m: 96,
        n: 300,
        k: 577,
        a_col_major: false,
        b_col_major: false,
        accumulate: false,
        threads: 2,
    };
    let a = Operand::new(7, c.m, c.k, false, 0);
    let b = Operand::new(8, c.k, c.n, false, 0);
    let (mut lo, mut hi) = (vec![0f32; c.m * c.n], vec![0f32; c.m * c.n]);
    matmul(Precision::Bf16, (c.m, c.n, c.k), &mut lo, false, a.view(), b.view(), 2);
    matmul(Precision::F32, (c.m, c.n, c.k), &mut hi, false, a.view(), b.view(), 2);
    let d: f64 = lo.iter().zip(&hi).map(|(x, y)| f64::from(x - y).powi(2)).sum::<f64>().sqrt();
    let r: f64 = hi.iter().map(|y| f64::from(*y).powi(2)).sum::<f64>().sqrt();
    let rel = d / r;
    ensure!(rel < 2f64.powi(-7), "relative L2 {rel:e}");
    ensure!(rel > 2f64.powi(-14), "relative L2 {rel:e}: too small for bf16 operands");
    Ok(())
}

// The AVX512_BF16 kernel and the portable one round the same operands, so they differ only by
// f32 summation order (on a CPU without AVX512_BF16 both run the portable kernel: said so).
#[test]
fn avx512_kernel_agrees_with_portable() -> Result<()> {
    if !bf16_native() {
        eprintln!("no AVX512_BF16 on this CPU: Avx512 falls back to the portable kernel");
    }
    for (ci, c) in cases().iter().enumerate() {
        let (fast, _, mag) = run_case(c, 100 + ci as u64, Bf16Kernel::Avx512);
        let (slow, exact, _) = run_case(c, 100 + ci as u64, Bf16Kernel::Portable);
        let acc_err = 2.0 * (c.k + 2) as f64 * U32;
        for (i, ((&f, &s), (&g, &e))) in
            fast.iter().zip(&slow).zip(mag.iter().zip(&exact)).enumerate()
        {
            let bound = acc_err * (g + e.abs()) + 1e-30;
            ensure!(
                (f64::from(f) - f64::from(s)).abs() <= bound,
                "case {ci} element {i}: avx512 {f} vs portable {s}"
            );
        }
    }
    Ok(())
}

// NaN and infinity propagate through the bf16 kernels as through f32 ones.
#[test]
fn bf16_product_propagates_nan_and_infinity() {
    let a = [1.0f32, f32::NAN, 2.0, f32::INFINITY];
    let b = [1.0f32, 1.0];
    for kernel in [Bf16Kernel::Avx512, Bf16Kernel::Portable] {
        let mut dst = [0f32; 2];
        let (av, bv) = (Mat { data: &a, rs: 2, cs: 1 }, Mat { data: &b, rs: 1, cs: 1 });
        matmul_bf16(kernel, (2, 1, 2), &mut dst, false, av, bv, 1);
        assert!(dst[0].is_nan(), "{kernel:?}");
        assert_eq!(dst[1], f32::INFINITY, "{kernel:?}");
    }
}

/// `t` with every element rounded to bf16.
fn rounded(t: &Tensor) -> Result<Tensor> {
    let v: Vec<f32> = t.flatten_all()?.to_vec1::<f32>()?.into_iter().map(round_bf16).collect();
    Ok(Tensor::from_vec(v, t.dims(), &Device::Cpu)?)
}

// A bf16 convolution is the f32 convolution of the bf16-rounded input and weight (bias added
// in f32), for both batch layouts (batch 8 at 8x8 outputs folds the batch into one product;
// 64x64 outputs run one product per item) and both layers.
#[test]
fn bf16_convolutions_equal_f32_of_rounded_operands() -> Result<()> {
    let down = Conv2dConfig { padding: 1, stride: 2, dilation: 1 };
    let up = ConvTranspose2dConfig { padding: 1, output_padding: 0, stride: 2, dilation: 1 };
    for (bs, side, cin, cout) in [(8, 16, 24, 40), (2, 128, 3, 16), (3, 20, 5, 7)] {
        let x = rand_tensor(bs as u64, &[bs, cin, side, side])?;
        let w = rand_tensor(1, &[cout, cin, 4, 4])?;
        let b = rand_tensor(2, &[cout])?;
        let ours = conv2d_with_precision(&x, &w, Some(&b), down, Precision::Bf16)?;
        let reference = conv2d(&rounded(&x)?, &rounded(&w)?, Some(&b), down)?;
        assert_close(&format!("conv {bs}x{cin}x{side}"), &ours, &reference, 1e-5)?;
        let f32_out = conv2d(&x, &w, Some(&b), down)?;
        ensure!(
            common::rel_err(&ours, &f32_out)? > 1e-6,
            "conv {bs}x{cin}x{side}: bf16 output equals the f32 one (operands not rounded?)"
        );
        // Transposed: columns (B, cout, side/2, side/2) back to the image side.
        let y = rand_tensor(3, &[bs, cout, side / 2, side / 2])?;
        let tb = rand_tensor(9, &[cin])?;
        let ours = conv_transpose2d_with_precision(&y, &w, Some(&tb), up, Precision::Bf16)?;
        let reference = conv_transpose2d(&rounded(&y)?, &rounded(&w)?, Some(&tb), up)?;
        assert_close(&format!("convT {bs}x{cout}x{}", side / 2), &ours, &reference, 1e-5)?;
    }
    Ok(())
}

// The layer's precision is what its forward uses, and the gradients stay f32 (backward through a
// bf16 forward gives the f32 layer's gradients, which do not depend on the forward's rounding).
#[test]
fn layer_precision_switches_the_forward_only() -> Result<()> {
    let cfg = Conv2dConfig { padding: 1, stride: 2, dilation: 1 };
    let x = candle_core::Var::from_tensor(&rand_tensor(4, &[2, 6, 16, 16])?)?;
    let w = rand_tensor(5, &[8, 6, 4, 4])?;
    let mut conv = Conv2d::new(w.clone(), None, cfg)?;
    assert_eq!(conv.precision(), Precision::F32);
    let f32_out = conv.forward(x.as_tensor())?;
    conv.set_precision(Precision::Bf16);
    let bf16_out = conv.forward(x.as_tensor())?;
    assert_close("bf16 vs f32 layer", &bf16_out, &f32_out, 2e-2)?;
    ensure!(common::rel_err(&bf16_out, &f32_out)? > 1e-6, "set_precision had no effect");
    let r = rand_tensor(6, bf16_out.dims())?;
    let g_bf16 = (&bf16_out * &r)?.sum_all()?.backward()?;
    let g_f32 = (&f32_out * &r)?.sum_all()?.backward()?;
    let (a, b) = (g_bf16.get(&x).cloned(), g_f32.get(&x).cloned());
    let (Some(a), Some(b)) = (a, b) else { anyhow::bail!("missing input gradient") };
    assert_close("input gradient", &a, &b, 1e-6)?;
    Ok(())
}

// bf16 where candle's own convolutions would run (here f64 tensors) is a typed error, not a
// silent f32 result.
#[test]
fn bf16_outside_the_cpu_f32_path_is_a_typed_error() -> Result<()> {
    let x = rand_tensor(1, &[1, 2, 8, 8])?.to_dtype(DType::F64)?;
    let w = rand_tensor(2, &[3, 2, 3, 3])?.to_dtype(DType::F64)?;
    let mut conv = Conv2d::new(w, None, Conv2dConfig::default())?;
    conv.set_precision(Precision::Bf16);
    let err = conv.try_forward(&x).err();
    ensure!(
        matches!(&err, Some(Error::Candle(e)) if e.to_string().contains("precision")),
        "{err:?}"
    );
    Ok(())
}
