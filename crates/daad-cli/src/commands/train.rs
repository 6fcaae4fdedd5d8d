//! `daad train`: flags ([`TrainArgs`]) -> [`daad_train::TrainSpec`], a progress bar, a stop
//! signal (SIGINT/SIGTERM/SIGHUP) -> checkpoint and exit status 128 + signal.
//!
//! On `--resume`, settings not given are the run's own. Flags that may change on resume:
//! `--epochs` (extends a finished run or shortens an unfinished one), `--lr` (an explicit
//! override from the resumed step on), and `--checkpoint-every`. Every
//! other flag given must equal the run's value; each conflict is listed in one error.

use std::path::PathBuf;

use anyhow::Context;
use daad_eval::{Calibration, CalibrationSource, MIN_HOLDOUT_IMAGES};
use daad_model::ModelConfig;
use daad_model::Variant;
use daad_train::{resume_configs, Preset, RunDir, Setting, TrainConfig, TrainSpec};

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
    // The data folder is checked by daad-data's train-only index (it names a file given for a
    // folder, and reads nothing but train/good).
    let spec = build_spec(&args).context("invalid `daad train` arguments")?;
    let (m, t) = effective_configs(&spec)?;
    println!(
        "{}preset {}: variant {}, {} px, batch {}, {} epochs, lr {:e}, N {}, rates {}x{}x{}, losses rec {} adv {} ali {}, gamma {}, val-fraction {}, seed {}",
        if spec.resume { "resuming with " } else { "" },
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
        // main exits with 128 + the signal's number.
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
        print_calibration(c);
    }
    Ok(())
}

/// The configuration the run will train with: on `--resume` the run's own with the explicit
/// changes that are allowed (conflicts are an error listing each), else the flags.
fn effective_configs(spec: &TrainSpec) -> anyhow::Result<(ModelConfig, TrainConfig)> {
    if !spec.resume {
        return Ok((spec.model.clone(), spec.train.clone()));
    }
    let run = RunDir::open(&spec.out)?;
    Ok(resume_configs(&run, &spec.model, &spec.train, &spec.explicit)?)
}

/// The calibration line, with a warning when the threshold is weak or missing.
fn print_calibration(c: &Calibration) {
    let source = match c.source {
        CalibrationSource::Holdout => "held-out",
        CalibrationSource::Train => "training",
    };
    println!(
        "calibration: {} {source} images, R in [{:.5}, {:.5}], threshold {}",
        c.n_images,
        c.scaling.r.min,
        c.scaling.r.max,
        c.threshold.map(|t| format!("{t:.4} (q {})", c.quantile)).unwrap_or_else(|| "none".into())
    );
    match (c.threshold, c.source) {
        (None, _) => println!(
            "warning: fewer than {MIN_HOLDOUT_IMAGES} held-out images, so no threshold was set: `daad predict` gives the verdict \"unknown\" (scores are still comparable); hold out more images (--val-fraction) or pass --threshold to predict"
        ),
        (Some(_), CalibrationSource::Train) => println!(
            "warning: the threshold comes from the training images themselves (--val-fraction 0): it is optimistic, unseen normal images score higher; hold out at least {MIN_HOLDOUT_IMAGES} images for an honest one"
        ),
        (Some(_), CalibrationSource::Holdout) if c.n_images < 20 => println!(
            "warning: the threshold rests on only {} held-out images: treat verdicts near it with care",
            c.n_images
        ),
        _ => {}
    }
}
