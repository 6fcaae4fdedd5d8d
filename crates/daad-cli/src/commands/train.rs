//! `daad train`: flags ([`TrainArgs`]) -> [`daad_train::TrainSpec`], a progress bar, Ctrl-C ->
//! checkpoint.

use std::path::PathBuf;

use anyhow::{bail, Context};
use daad_model::Variant;
use daad_train::{Preset, Setting, TrainSpec};

use crate::support::{progress::TrainBar, signal};
use crate::TrainArgs;

/// Arguments of `daad train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset root in MVTec AD layout (ROOT/CATEGORY/train/good/*.png).
    #[arg(long)]
    pub data: PathBuf,
    /// Category folder under the root.
    #[arg(long)]
    pub category: String,
    /// Run folder to write (model.safetensors, config.json, optimiser state, logs).
    #[arg(long)]
    pub out: PathBuf,
    /// Model variant [default: daad+; with --resume: the run's].
    #[arg(long, value_enum, ignore_case = true)]
    pub variant: Option<Variant>,
    /// Continue the run in --out where it stopped (settings not given are the run's own;
    /// --epochs extends it, --lr overrides from here on; any other flag must match the run).
    #[arg(long)]
    pub resume: bool,
    /// Replace what --out holds (only files daad writes are removed).
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// The training settings.
    #[command(flatten)]
    pub train: TrainArgs,
}

/// `daad train`'s defaults: the fast preset, 10 % held out for calibration, seed 0.
pub fn defaults() -> TrainArgs {
    TrainArgs {
        preset: Some(Preset::Fast),
        val_fraction: Some(0.1),
        seed: Some(0),
        ..TrainArgs::default()
    }
}

/// The run's spec: the flags converted once ([`TrainArgs::configs`]).
pub fn build_spec(args: &Args) -> anyhow::Result<TrainSpec> {
    let t = args.train.or(&defaults());
    let (model, train) = t.configs(args.variant.unwrap_or(Variant::DaadPlus))?;
    let mut spec = TrainSpec::new(&args.data, &args.category, &args.out, model, train);
    spec.resume = args.resume;
    spec.force = args.force;
    spec.explicit = args.train.explicit();
    if args.variant.is_some() {
        spec.explicit.insert(Setting::Variant);
    }
    spec.cache_dir = t.cache_dir;
    Ok(spec)
}

/// Runs `daad train`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !args.data.is_dir() {
        bail!(
            "data folder {} does not exist: pass a dataset root in MVTec layout (e.g. from `daad synth --out ROOT`)",
            args.data.display()
        );
    }
    let category_dir = args.data.join(&args.category);
    if !category_dir.is_dir() {
        bail!("category folder {} does not exist: check --category", category_dir.display());
    }
    let spec = build_spec(&args).context("invalid `daad train` arguments")?;
    let (m, t) = (&spec.model, &spec.train);
    println!(
        "preset {}: variant {}, {} px, batch {}, {} epochs, lr {:e}, N {}, rates {}x{}x{}, losses rec {} adv {} ali {}, gamma {}, val-fraction {}, seed {}",
        t.preset, m.variant, m.image_size, t.batch_size, t.epochs, t.lr, m.memory.n_items, m.memory.rates.h, m.memory.rates.w,
        m.memory.rates.c, m.losses.rec, m.losses.adv, m.losses.ali, m.gamma, t.val_fraction, t.seed
    );
    let stop = signal::stop_flag()?;
    let device = candle_core::Device::cuda_if_available(0).context("cannot open the device")?;
    let mut bar = TrainBar::new("train", true);
    let report = daad_train::train(&spec, &device, &mut bar, &stop).with_context(|| {
        format!("training {} on {}/{}", spec.model.variant, spec.data_root.display(), spec.category)
    })?;
    bar.finish();
    if report.interrupted {
        println!(
            "interrupted after {} epochs ({} steps); checkpoint in {}; continue with the same command plus --resume",
            report.epochs_done,
            report.global_step,
            report.run.display()
        );
        return Ok(());
    }
    let cfg = &report.config;
    println!(
        "trained {} ({} preset: {} px, batch {}, {} epochs, N {}) -> {}",
        cfg.model.variant,
        cfg.train.preset,
        cfg.model.image_size,
        cfg.train.batch_size,
        cfg.train.epochs,
        cfg.model.memory.n_items,
        report.run.display()
    );
    if let Some(r) = &report.last {
        println!(
            "last epoch: loss {:.5}, rec {:.5}, adv {:.4}, ali {:.5}, D {:.4}, {:.1} img/s",
            r.losses.total, r.losses.rec, r.losses.adv, r.losses.ali, r.losses.disc, r.images_per_s
        );
    }
    if let Some(c) = &report.calibration {
        println!(
            "calibration: {} {:?} images, R in [{:.5}, {:.5}], threshold {}",
            c.n_images,
            c.source,
            c.scaling.r.min,
            c.scaling.r.max,
            c.threshold
                .map(|t| format!("{t:.4} (q {})", c.quantile))
                .unwrap_or_else(|| "none".into())
        );
    }
    Ok(())
}
