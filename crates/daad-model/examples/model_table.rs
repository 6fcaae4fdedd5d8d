//! Prints, per variant, the parameter count and the inference time of one batch on the CPU: the
//! measured table of daad-model's README.
//!
//! `cargo run --release -p daad-model --example model_table -- [SIZE] [BATCH] [REPS]`

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use daad_model::{DaadModel, ModelConfig, Variant};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let size = args.next().transpose()?.unwrap_or(64);
    let batch = args.next().transpose()?.unwrap_or(8);
    let reps = args.next().transpose()?.unwrap_or(5).max(1);
    let device = Device::Cpu;
    println!("| variant | parameters | inference ms / batch of {batch} at {size} px (median of {reps}) |");
    println!("|---|---|---|");
    for variant in [Variant::Ae, Variant::AeSkip, Variant::MemAe, Variant::Daad, Variant::DaadPlus]
    {
        let cfg = ModelConfig::for_variant(variant, size);
        let model = DaadModel::new(&cfg, 0, &device)?;
        let params: usize = model.varmap().all_vars().iter().map(|v| v.elem_count()).sum();
        let x = Tensor::randn(0f32, 0.5, (batch, 3, size, size), &device)?.to_dtype(DType::F32)?;
        model.infer(&x)?; // warm-up
        let mut ms: Vec<f64> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                model.infer(&x).map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_, _>>()?;
        ms.sort_by(f64::total_cmp);
        println!("| {} | {} | {:.1} |", variant.name(), params, ms[ms.len() / 2]);
    }
    Ok(())
}
