//! `cargo xtask bench`: training step time, inference images/s and memory-op time on this machine.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use daad::memory::{BlockMemory, MemoryConfig};
use daad::model::{DaadModel, ModelConfig};
use daad::train::{preset_configs, Preset, Trainer, Variant};

use crate::grid;

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Image sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "64,128,256")]
    pub sizes: Vec<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Timed repetitions per measurement (the median is reported), after one warm-up.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Variant to measure.
    #[arg(long, default_value = "daad")]
    pub variant: Variant,
    /// Memory size N.
    #[arg(long, default_value_t = 500)]
    pub memory_size: usize,
    /// Output folder for bench.md and bench.json.
    #[arg(long, default_value = "results/bench")]
    pub out: PathBuf,
}

fn median_ms(reps: usize, device: &Device, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    device.synchronize()?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        f()?;
        device.synchronize()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times[times.len() / 2])
}

/// One row of the bench table.
#[derive(serde::Serialize)]
struct Row {
    size: usize,
    batch: usize,
    train_step_ms: f64,
    inference_images_per_s: f64,
    memory_fwd_bwd_ms: f64,
}

/// Runs `cargo xtask bench`.
pub fn run(args: Args) -> Result<()> {
    let device = daad::pipeline::default_device();
    let mut rows = Vec::new();
    for &size in &args.sizes {
        let (_, train_cfg) = preset_configs(Preset::Paper, args.variant);
        let mut model_cfg = ModelConfig::for_variant(args.variant, size);
        model_cfg.memory.n_items = args.memory_size;
        let model = DaadModel::new(&model_cfg, 0, &device).context("building the model")?;
        let x = Tensor::rand(-1f32, 1f32, (args.batch, 3, size, size), &device)?;
        let infer_ms = median_ms(args.reps, &device, || {
            model.infer(&x)?;
            Ok(())
        })?;
        let mut trainer = Trainer::new(model, &train_cfg)?;
        let step_ms = median_ms(args.reps, &device, || {
            trainer.step(&x)?.map_err(|e| anyhow::anyhow!("non-finite loss: {e:?}"))?;
            Ok(())
        })?;
        // The four memories of one forward+backward, at the paper's scales of this input.
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let mut feats = Vec::new();
        let mut mems = Vec::new();
        for (l, (c, s)) in model_cfg.channels().iter().zip(model_cfg.feature_sizes()).enumerate() {
            let cfg = MemoryConfig { rates: model_cfg.scale_rates(l), ..model_cfg.memory.clone() };
            mems.push(BlockMemory::new(*c, s, s, &cfg, vb.pp(format!("m{l}")))?);
            feats.push(candle_core::Var::from_tensor(&Tensor::randn(
                0f32,
                1f32,
                (args.batch, *c, s, s),
                &device,
            )?)?);
        }
        let mem_ms = median_ms(args.reps, &device, || {
            let mut loss = Tensor::zeros((), DType::F32, &device)?;
            for (m, f) in mems.iter().zip(&feats) {
                loss =
                    (loss + candle_core::Module::forward(m, f.as_tensor())?.sqr()?.mean_all()?)?;
            }
            loss.backward()?;
            Ok(())
        })?;
        let row = Row {
            size,
            batch: args.batch,
            train_step_ms: step_ms,
            inference_images_per_s: args.batch as f64 / (infer_ms / 1e3),
            memory_fwd_bwd_ms: mem_ms,
        };
        println!(
            "{size} px: train step {:.0} ms, inference {:.1} img/s, memory fwd+bwd {:.1} ms",
            row.train_step_ms, row.inference_images_per_s, row.memory_fwd_bwd_ms
        );
        rows.push(row);
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut md = format!(
        "{} on {device:?} ({threads} threads), batch {}, N = {}, median of {} after a warm-up\n\n\
         | size | train step (ms) | inference (images/s) | memory op fwd+bwd, 4 scales (ms) |\n|---|---|---|---|\n",
        args.variant, args.batch, args.memory_size, args.reps
    );
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.1} | {:.1} |",
            r.size, r.train_step_ms, r.inference_images_per_s, r.memory_fwd_bwd_ms
        );
    }
    grid::write_atomic(&args.out.join("bench.md"), md.as_bytes())?;
    grid::write_atomic(&args.out.join("bench.json"), &serde_json::to_vec_pretty(&rows)?)?;
    println!("\n{md}");
    Ok(())
}
