//! One training step (batch 8) of DAAD at several sizes on CPU, beside the PyTorch port
//! `scripts/torch_daad_step.py` measured in the same command.
//!
//! ```text
//! cargo run --release -p daad-train --example step_vs_torch -- \
//!     --sizes 64,128,256 --steps 5 --variant daad --python /work/.venv-torch/bin/python
//! ```
//! Prints the median step time of each and the ratio ours / PyTorch (< 1 = faster).
//! `--device cuda` times our step on GPU 0 (a build with feature `cuda`; `scripts/gpu-check.sh`).

use std::process::Command;
use std::time::Instant;

use candle_core::{Device, Tensor};
use daad_model::{DaadModel, ModelConfig, Variant};
use daad_train::{Preset, TrainConfig, Trainer};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ours(
    size: usize,
    batch: usize,
    steps: usize,
    variant: Variant,
    device: &Device,
) -> anyhow::Result<f64> {
    let model_cfg = ModelConfig::for_variant(variant, size);
    let train_cfg = TrainConfig {
        preset: Preset::Paper,
        epochs: 1,
        batch_size: batch,
        lr: TrainConfig::paper_lr(&model_cfg),
        beta1: 0.9,
        beta2: 0.999,
        weight_decay: 0.0,
        flip_h: true,
        flip_v: true,
        seed: 0,
        val_fraction: 0.0,
        threshold_quantile: 0.99,
        checkpoint_every: 1,
    };
    let model = DaadModel::new(&model_cfg, 0, device)?;
    let mut trainer = Trainer::new(model, &train_cfg)?;
    let x = Tensor::rand(-1f32, 1f32, (batch, 3, size, size), device)?;
    trainer.step(&x)?.map_err(|e| anyhow::anyhow!("{e:?}"))?; // warm-up
    device.synchronize()?;
    let mut times = Vec::new();
    for _ in 0..steps {
        let t = Instant::now();
        trainer.step(&x)?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        device.synchronize()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

fn main() -> anyhow::Result<()> {
    daad_nn::retain_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = arg(&args, "--sizes", "64,128,256")
        .split(',')
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let steps: usize = arg(&args, "--steps", "5").parse()?;
    let batch: usize = arg(&args, "--batch", "8").parse()?;
    let variant: Variant = arg(&args, "--variant", "daad").parse()?;
    let python = arg(&args, "--python", "");
    let device = match arg(&args, "--device", "cpu").as_str() {
        "cpu" => Device::Cpu,
        "cuda" => Device::new_cuda(0).map_err(|e| {
            let hint = if candle_core::utils::cuda_is_available() {
                "this build has CUDA: is a GPU and its driver there?"
            } else {
                "build with feature cuda (scripts/gpu-check.sh build)"
            };
            anyhow::anyhow!("--device cuda: {e} ({hint})")
        })?,
        other => anyhow::bail!("--device {other}: expected cpu or cuda"),
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/torch_daad_step.py");
    println!("| size | batch | variant | daad (candle) s/step | PyTorch s/step | ratio |");
    println!("|---|---|---|---|---|---|");
    for &s in &sizes {
        let t_ours = ours(s, batch, steps, variant, &device)?;
        let t_torch = if python.is_empty() {
            None
        } else {
            let out = Command::new(&python)
                .args([
                    script,
                    "--sizes",
                    &s.to_string(),
                    "--batch",
                    &batch.to_string(),
                    "--steps",
                    &steps.to_string(),
                ])
                .args(["--variant", variant.name()])
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text.lines().last().unwrap_or_default();
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["median_s"].as_f64())
        };
        let (tt, ratio) = match t_torch {
            Some(t) => (format!("{t:.3}"), format!("{:.2}", t_ours / t)),
            None => ("-".into(), "-".into()),
        };
        println!("| {s} | {batch} | {variant} | {t_ours:.3} | {tt} | {ratio} |");
    }
    Ok(())
}
