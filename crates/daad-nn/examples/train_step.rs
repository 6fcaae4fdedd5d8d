//! Times one training step (and one inference) of the benchmark UNet autoencoder
//! (`benches/support/unet.rs`), with daad-nn's layers and/or candle's own ops.
//!
//! `cargo run --release -p daad-nn --example train_step -- --size 64 --batch 8 --impl both`
//! prints lines `RESULT <impl> size=<S> batch=<B> train_ms=<best> infer_ms=<best> ...` that
//! `scripts/bench_step.sh` pairs with PyTorch's.

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
#[path = "../benches/support/unet.rs"]
#[allow(dead_code)]
mod unet;

use std::time::Instant;
use unet::{Impl, Trainer};

/// (best, median) of the timings: on a shared machine the best of N is the closest to the
/// uncontended cost, so it is what the comparison uses; the median is printed beside it.
fn best_median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2])
}

/// Process CPU time (user + system, all threads) in ms, from /proc/self/stat (10 ms ticks): on
/// a machine shared with other jobs it measures the work done, which wall time cannot.
fn cpu_ms() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let f: Vec<&str> = s.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (tick(11) + tick(12)) * 10.0
}

fn main() -> Result<()> {
    let mut sizes = Vec::new();
    let (mut batch, mut iters, mut warmup, mut imp) = (8usize, 5usize, 2usize, "fast".to_string());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--size" => sizes.push(val()?.parse()?),
            "--batch" => batch = val()?.parse()?,
            "--iters" => iters = val()?.parse()?,
            "--warmup" => warmup = val()?.parse()?,
            "--impl" => imp = val()?,
            other => bail!("unknown argument {other}; use --size N [--size M] --batch B --iters N --warmup N --impl fast|candle|both"),
        }
    }
    if sizes.is_empty() {
        sizes.push(64);
    }
    let imps = match imp.as_str() {
        "fast" => vec![Impl::Fast],
        "candle" => vec![Impl::Candle],
        "both" => vec![Impl::Fast, Impl::Candle],
        o => bail!("--impl {o}: expected fast, candle or both"),
    };
    let dev = Device::Cpu;
    for &size in &sizes {
        for &imp in &imps {
            let mut tr = Trainer::new(imp, &dev)?;
            let x = Tensor::rand(-1f32, 1., (batch, 3, size, size), &dev)?;
            let mut train = Vec::new();
            let mut train_cpu = Vec::new();
            let mut loss = 0.0;
            for i in 0..warmup + iters {
                let (t, c) = (Instant::now(), cpu_ms());
                loss = tr.step(&x)?;
                if i >= warmup {
                    train.push(t.elapsed().as_secs_f64() * 1e3);
                    train_cpu.push(cpu_ms() - c);
                }
            }
            if std::env::var_os("DAAD_NN_PROFILE").is_some() {
                let [f, b, o] = tr.step_timed(&x)?;
                println!(
                    "PROFILE {imp:?} size={size} forward_ms={:.1} backward_ms={:.1} adam_ms={:.1}",
                    f * 1e3,
                    b * 1e3,
                    o * 1e3
                );
            }
            let mut infer = Vec::new();
            let mut infer_cpu = Vec::new();
            for i in 0..warmup + iters {
                let (t, c) = (Instant::now(), cpu_ms());
                let y = tr.infer(&x)?;
                y.flatten_all()?.max(0)?.to_scalar::<f32>()?;
                if i >= warmup {
                    infer.push(t.elapsed().as_secs_f64() * 1e3);
                    infer_cpu.push(cpu_ms() - c);
                }
            }
            let name = match imp {
                Impl::Fast => "daad-nn",
                Impl::Candle => "candle",
            };
            let (tb, tm) = best_median(train);
            let (ib, im) = best_median(infer);
            println!(
                "RESULT {name} size={size} batch={batch} train_ms={tb:.1} infer_ms={ib:.1} \
                 train_median_ms={tm:.1} infer_median_ms={im:.1} train_cpu_ms={:.0} \
                 infer_cpu_ms={:.0} loss={loss:.4}",
                best_median(train_cpu).0,
                best_median(infer_cpu).0
            );
        }
    }
    Ok(())
}
