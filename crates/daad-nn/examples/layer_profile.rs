//! CPU time (all threads) of forward and backward of daad-nn's convolutions at the 256 px UNet
//! shapes (batch 8): `cargo run --release -p daad-nn --example layer_profile`. CPU time, unlike
//! wall time, stays meaningful when other jobs share the machine.

use candle_core::{Device, Tensor, Var};
use daad_nn::ops::{conv2d, conv_transpose2d};
use daad_nn::{Conv2dConfig, ConvTranspose2dConfig};
/// Process CPU time (user + system) in ms from /proc/self/stat (10 ms resolution).
fn cpu_ms() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) * 10.0
}
fn main() -> anyhow::Result<()> {
    let d = Device::Cpu;
    let cfg = Conv2dConfig { padding: 1, stride: 2, dilation: 1 };
    let tcfg = ConvTranspose2dConfig { padding: 1, output_padding: 0, stride: 2, dilation: 1 };
    for (cin, cout, s) in [(3usize, 64usize, 256usize), (64, 128, 128), (128, 256, 64)] {
        let x = Var::from_tensor(&Tensor::rand(-1f32, 1., (8, cin, s, s), &d)?)?;
        let w = Var::from_tensor(&Tensor::rand(-1f32, 1., (cout, cin, 4, 4), &d)?)?;
        let mut best = [f64::MAX; 3];
        for _ in 0..3 {
            let t0 = cpu_ms();
            let y = conv2d(&x, &w, None, cfg)?;
            let t1 = cpu_ms();
            let l = y.sum_all()?;
            let t2 = cpu_ms();
            let _g = l.backward()?;
            let t3 = cpu_ms();
            for (b, v) in best.iter_mut().zip([(t1 - t0), (t2 - t1), (t3 - t2)]) {
                *b = b.min(v);
            }
        }
        println!(
            "conv {cin}->{cout}@{s}: fwd {:.1} sum {:.1} bwd {:.1}",
            best[0], best[1], best[2]
        );
        let xt = Var::from_tensor(&Tensor::rand(-1f32, 1., (8, cout, s / 2, s / 2), &d)?)?;
        let wt = Var::from_tensor(&Tensor::rand(-1f32, 1., (cout, cin, 4, 4), &d)?)?;
        let mut best = [f64::MAX; 3];
        for _ in 0..3 {
            let t0 = cpu_ms();
            let y = conv_transpose2d(&xt, &wt, None, tcfg)?;
            let t1 = cpu_ms();
            let l = y.sum_all()?;
            let t2 = cpu_ms();
            let _g = l.backward()?;
            let t3 = cpu_ms();
            for (b, v) in best.iter_mut().zip([(t1 - t0), (t2 - t1), (t3 - t2)]) {
                *b = b.min(v);
            }
        }
        println!(
            "convT {cout}->{cin}@{}: fwd {:.1} sum {:.1} bwd {:.1}",
            s / 2,
            best[0],
            best[1],
            best[2]
        );
    }
    Ok(())
}
