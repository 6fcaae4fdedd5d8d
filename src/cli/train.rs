//! `daad train`: flags -> [`daad_train::TrainSpec`], a progress bar, Ctrl-C -> checkpoint.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use daad::pipeline::{train_spec, TrainOptions};
use daad_model::Variant;
use daad_train::{EpochRecord, Preset, Progress, StartInfo, StepInfo, TrainSpec};
use indicatif::{ProgressBar, ProgressStyle};

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
    /// Model variant: ae, ae-skip, memae, daad, daad+.
    #[arg(long, default_value = "daad+")]
    pub variant: String,
    /// Settings preset: paper (256 px, 1000 epochs), fast (64 px, 50 epochs), ci (32 px, 10 epochs).
    #[arg(long, default_value = "fast")]
    pub preset: String,
    /// Image side in pixels (multiple of 16); overrides the preset.
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Total epochs; overrides the preset (with --resume: extends the run).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size; overrides the preset.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Division rate r: blocks are r x r (r_h = r_w = r); overrides the variant's rate.
    #[arg(long)]
    pub division: Option<usize>,
    /// Channel division rate r_c; overrides the variant's (1).
    #[arg(long)]
    pub channel_division: Option<usize>,
    /// Memory items N per bank; overrides the preset.
    #[arg(long)]
    pub memory_size: Option<usize>,
    /// Fraction of train/good held out for score scaling and the threshold (0 = the paper's protocol).
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f64,
    /// Seed of the init, the validation split, the batch order and the flips.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continue the run in --out where it stopped.
    #[arg(long)]
    pub resume: bool,
    /// Losses to train with (ablation, Table 5), comma-separated from rec, adv, ali; default: the variant's.
    #[arg(long, value_delimiter = ',')]
    pub losses: Option<Vec<String>>,
    /// Weight g of R in the score g R + (1 - g) L (Table 5); default: the variant's.
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Adam learning rate; default: the preset's (paper: 1e-4, 2e-4 with adversarial losses; fast, ci: 1e-3).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Write a checkpoint every N epochs; default: the preset's.
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Folder for cached preprocessed images (reused across runs).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// Builds the run's configs through the pipeline's one mapping of flags onto presets (shared with xtask).
fn build_spec(args: &Args) -> anyhow::Result<TrainSpec> {
    let variant: Variant = args.variant.parse()?;
    let preset: Preset = args.preset.parse()?;
    let mut opts = TrainOptions::new(&args.data, &args.category, &args.out, variant, preset);
    opts.image_size = args.image_size;
    opts.epochs = args.epochs;
    opts.batch = args.batch;
    opts.division = args.division;
    opts.channel_division = args.channel_division;
    opts.memory_size = args.memory_size;
    opts.val_fraction = Some(args.val_fraction);
    opts.seed = Some(args.seed);
    opts.resume = args.resume;
    opts.cache_dir = args.cache_dir.clone();
    opts.lr = args.lr;
    opts.gamma = args.gamma;
    opts.checkpoint_every = args.checkpoint_every;
    if let Some(list) = &args.losses {
        let (mut rec, mut adv, mut ali) = (false, false, false);
        for name in list {
            match name.trim() {
                "rec" => rec = true,
                "adv" => adv = true,
                "ali" => ali = true,
                other => bail!("unknown loss `{other}` in --losses: use rec, adv, ali"),
            }
        }
        (opts.rec_loss, opts.adv_loss, opts.ali_loss) = (Some(rec), Some(adv), Some(ali));
    }
    Ok(train_spec(&opts)?)
}

/// An indicatif bar with the loss and images/s.
struct Bar {
    bar: Option<ProgressBar>,
    total_epochs: usize,
}

impl Progress for Bar {
    fn start(&mut self, info: &StartInfo) {
        self.total_epochs = info.total_epochs;
        let total = (info.total_epochs.saturating_sub(info.start_epoch) * info.batches_per_epoch)
            .saturating_sub(info.start_batch) as u64;
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps (eta {eta}) {msg}",
            )
            .expect("valid template"),
        );
        self.bar = Some(bar);
    }

    fn step(&mut self, s: &StepInfo) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!(
                "epoch {}/{} loss {:.4} rec {:.4} {:.1} img/s",
                s.epoch + 1,
                self.total_epochs,
                s.losses.total,
                s.losses.rec,
                s.images as f64 / s.seconds.max(1e-9)
            ));
        }
    }

    fn epoch(&mut self, r: &EpochRecord) {
        if let Some(bar) = &self.bar {
            bar.println(format!(
                "epoch {:>4}: loss {:.5} (rec {:.5} adv {:.4} ali {:.5} D {:.4}) {:.1} img/s",
                r.epoch + 1,
                r.losses.total,
                r.losses.rec,
                r.losses.adv,
                r.losses.ali,
                r.losses.disc,
                r.images_per_s
            ));
        }
    }
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
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // First Ctrl-C: finish the step, checkpoint, exit. Second: exit at once.
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("second Ctrl-C: exiting without a checkpoint");
                std::process::exit(130);
            }
            eprintln!("Ctrl-C: writing a checkpoint after this step (press again to abort)");
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    let device = candle_core::Device::cuda_if_available(0).context("cannot open the device")?;
    let mut bar = Bar { bar: None, total_epochs: 0 };
    let report = daad_train::train(&spec, &device, &mut bar, &stop).with_context(|| {
        format!("training {} on {}/{}", spec.model.variant, spec.data_root.display(), spec.category)
    })?;
    if let Some(b) = &bar.bar {
        b.finish_and_clear();
    }
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
            c.r_min,
            c.r_max,
            c.threshold
                .map(|t| format!("{t:.4} (q {})", c.quantile))
                .unwrap_or_else(|| "none".into())
        );
    }
    Ok(())
}
