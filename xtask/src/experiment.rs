//! Running grid cells through the `daad` pipeline, with progress, resume and result tables.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use daad::pipeline::{self, Scaling, ScoreKind, TestOptions, TrainOptions};
use daad::train::{EpochRecord, Preset, Progress, StartInfo, StepInfo, Variant};
use indicatif::{ProgressBar, ProgressStyle};

use crate::grid::{self, Cell, CellResult, Shard};

/// The flags shared by the grid commands (reproduce, ablate, adversarial).
#[derive(clap::Args, Debug, Clone)]
pub struct GridArgs {
    /// Dataset root in MVTec AD layout (see `cargo xtask download mvtec`).
    #[arg(long, default_value = "data/mvtec")]
    pub data: PathBuf,
    /// Categories to run (comma-separated); default: the 15 MVTec AD categories.
    #[arg(long, value_delimiter = ',')]
    pub categories: Vec<String>,
    /// Training preset: paper (256 px, 1000 epochs), fast, ci.
    #[arg(long, default_value = "paper")]
    pub preset: Preset,
    /// Results folder name under --results-root (default: <command>-<preset>).
    #[arg(long)]
    pub name: Option<String>,
    /// Where results folders live.
    #[arg(long, default_value = "results")]
    pub results_root: PathBuf,
    /// Run only the K-th of N deterministic parts of the grid (for N machines sharing a results folder).
    #[arg(long)]
    pub shard: Option<Shard>,
    /// Build the tables from the cells already finished (by any shard) and train nothing.
    #[arg(long)]
    pub collect: bool,
    /// Override the preset's epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override the preset's image size (a multiple of 16).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Override the preset's memory size N.
    #[arg(long)]
    pub memory_size: Option<usize>,
    /// Seed of every run.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Adam learning rate (default: the preset's; paper: 1e-4, 2e-4 with the adversarial losses).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Fraction of train/good held out (0 = the paper's protocol: train on every good image).
    #[arg(long, default_value_t = 0.0)]
    pub val_fraction: f64,
}

impl GridArgs {
    /// The categories asked for, or the 15 MVTec AD categories.
    pub fn categories(&self) -> Vec<String> {
        if self.categories.is_empty() {
            crate::paper::CATEGORIES.iter().map(|c| c.to_string()).collect()
        } else {
            self.categories.clone()
        }
    }

    /// The grid's settings; the results folder defaults to `<command>-<preset>`.
    pub fn settings(&self, command: &str, heatmaps: usize) -> GridSettings {
        let name = self.name.clone().unwrap_or_else(|| format!("{command}-{}", self.preset));
        GridSettings {
            data: self.data.clone(),
            results: self.results_root.join(name),
            preset: self.preset,
            epochs: self.epochs,
            image_size: self.image_size,
            memory_size: self.memory_size,
            seed: self.seed,
            val_fraction: Some(self.val_fraction),
            heatmaps,
            lr: self.lr,
        }
    }

    /// This machine's part of `cells` (all of them without --shard).
    pub fn mine(&self, cells: Vec<Cell>) -> Vec<Cell> {
        match self.shard {
            Some(shard) => grid::shard_cells(&cells, shard),
            None => cells,
        }
    }
}

/// Settings shared by every cell of a grid.
#[derive(Clone, Debug)]
pub struct GridSettings {
    /// Dataset root in MVTec layout.
    pub data: PathBuf,
    /// Results folder (`results/<name>`).
    pub results: PathBuf,
    /// Training preset.
    pub preset: Preset,
    /// Overrides of the preset.
    pub epochs: Option<usize>,
    /// Image size override.
    pub image_size: Option<usize>,
    /// Memory size override.
    pub memory_size: Option<usize>,
    /// Seed of every run.
    pub seed: u64,
    /// Held-out fraction of train/good (0 = the paper's protocol).
    pub val_fraction: Option<f64>,
    /// Heatmap PNGs written per cell.
    pub heatmaps: usize,
    /// Adam learning rate override (`None`: the paper's).
    pub lr: Option<f64>,
}

/// Ctrl-C sets this flag; the trainer checkpoints and returns, and the grid stops after the cell.
pub fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    // A second handler cannot be installed in the same process; one flag serves the whole run.
    let _ = ctrlc::set_handler(move || {
        eprintln!(
            "\ninterrupt: writing a checkpoint, then stopping (the run resumes where it stopped)"
        );
        handler_flag.store(true, Ordering::SeqCst);
    });
    flag
}

/// The training run folder of a cell: cells that differ only in how they score share one run.
pub fn run_dir(results: &Path, cell: &Cell) -> PathBuf {
    let mut key = Cell { adversarial: None, ..cell.clone() };
    if let Some([adv, ali, _, _]) = cell.adversarial {
        key.adversarial = Some([adv, ali, false, false]);
    }
    results.join("runs").join(key.name())
}

/// Trains (or resumes) and tests one cell, then writes its metrics.json atomically.
/// Returns `None` when interrupted.
pub fn run_cell(cell: &Cell, s: &GridSettings, stop: &AtomicBool) -> Result<Option<CellResult>> {
    let dir = grid::cell_dir(&s.results, cell);
    let metrics_path = grid::metrics_path(&s.results, cell);
    if metrics_path.is_file() {
        let bytes = std::fs::read(&metrics_path)?;
        return Ok(Some(CellResult {
            cell: cell.clone(),
            metrics: serde_json::from_slice(&bytes)?,
        }));
    }
    grid::write_atomic(&dir.join("cell.json"), &serde_json::to_vec_pretty(cell)?)?;
    let variant: Variant =
        cell.variant.parse().with_context(|| format!("variant `{}`", cell.variant))?;
    let run = run_dir(&s.results, cell);
    let (adv_loss, ali_loss) = match cell.adversarial {
        Some([adv, ali, _, _]) => (Some(adv), Some(ali)),
        None => (None, None),
    };
    let mut opts = TrainOptions::new(&s.data, &cell.category, &run, variant, s.preset);
    opts.image_size = s.image_size;
    opts.epochs = s.epochs;
    opts.division = cell.division;
    opts.channel_division = cell.channel_division;
    opts.memory_size = s.memory_size;
    opts.val_fraction = s.val_fraction;
    opts.seed = Some(s.seed);
    opts.resume = run.join("state.json").is_file();
    opts.adv_loss = adv_loss;
    opts.ali_loss = ali_loss;
    opts.cache_dir = Some(s.results.join("cache"));
    opts.lr = s.lr;
    let device = pipeline::default_device();
    let mut bar = TrainBar::new(&cell.name());
    let report = pipeline::train(&opts, &device, &mut bar, stop)
        .with_context(|| format!("training cell {}", cell.name()))?;
    bar.finish();
    if report.interrupted {
        return Ok(None);
    }
    let score = match cell.adversarial {
        Some([_, _, true, true]) => ScoreKind::Fused,
        Some([_, _, true, false]) => ScoreKind::Alignment,
        _ => ScoreKind::Reconstruction,
    };
    let test_opts = TestOptions {
        run: run.clone(),
        data_root: s.data.clone(),
        category: cell.category.clone(),
        out: dir.join("test"),
        scaling: Scaling::TestSet,
        score: if variant == Variant::DaadPlus && cell.adversarial.is_none() {
            ScoreKind::Fused
        } else {
            score
        },
        threshold: None,
        max_heatmaps: s.heatmaps,
    };
    let bar =
        ProgressBar::new(0).with_style(bar_style()).with_message(format!("{} test", cell.name()));
    pipeline::test(&test_opts, &device, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .with_context(|| format!("testing cell {}", cell.name()))?;
    bar.finish_and_clear();
    let bytes = std::fs::read(dir.join("test").join("metrics.json"))
        .context("reading the cell's metrics.json")?;
    grid::write_atomic(&metrics_path, &bytes)?;
    Ok(Some(CellResult { cell: cell.clone(), metrics: serde_json::from_slice(&bytes)? }))
}

/// Runs every cell in order, skipping finished ones; stops early on Ctrl-C.
pub fn run_cells(cells: &[Cell], s: &GridSettings) -> Result<Vec<CellResult>> {
    let stop = stop_flag();
    let mut out = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        tracing::info!("cell {}/{}: {}", i + 1, cells.len(), cell.name());
        match run_cell(cell, s, &stop)? {
            Some(result) => out.push(result),
            None => {
                bail!("interrupted during {}: run the same command again to resume", cell.name())
            }
        }
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted after {}: run the same command again to resume", cell.name());
        }
    }
    Ok(out)
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:32} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}")
        .expect("static template")
        .progress_chars("=> ")
}

/// An indicatif bar over training steps, showing the loss and images/s.
pub struct TrainBar {
    name: String,
    bar: ProgressBar,
    images: usize,
    started: Instant,
}

impl TrainBar {
    /// A bar labelled with the cell name.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            bar: ProgressBar::hidden(),
            images: 0,
            started: Instant::now(),
        }
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for TrainBar {
    fn start(&mut self, info: &StartInfo) {
        let total = (info.total_epochs * info.batches_per_epoch) as u64;
        let done = (info.start_epoch * info.batches_per_epoch + info.start_batch) as u64;
        self.bar = ProgressBar::new(total).with_style(bar_style());
        self.bar.set_position(done);
        self.bar.set_message(format!("{} train", self.name));
        self.started = Instant::now();
    }
    fn step(&mut self, info: &StepInfo) {
        self.images += info.images;
        let rate = self.images as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_message(format!(
            "{} e{} rec {:.4} {:.0} img/s",
            self.name,
            info.epoch + 1,
            info.losses.rec,
            rate
        ));
        self.bar.inc(1);
    }
    fn epoch(&mut self, record: &EpochRecord) {
        tracing::debug!("{} epoch {} rec {:.5}", self.name, record.epoch + 1, record.losses.rec);
    }
}

/// Mean of the finite values, if any.
pub fn mean(values: &[f64]) -> Option<f64> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / finite.len() as f64)
}

/// `0.845` or `-` for a missing value.
pub fn fmt3(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into())
}

/// `ours (paper, +diff)` for a table cell.
pub fn fmt_vs(ours: Option<f64>, paper: Option<f64>) -> String {
    match (ours, paper) {
        (Some(o), Some(p)) => format!("{o:.3} ({p:.3}, {:+.3})", o - p),
        (Some(o), None) => format!("{o:.3}"),
        (None, Some(p)) => format!("- ({p:.3})"),
        (None, None) => "-".into(),
    }
}

/// A README.md for a results folder: the exact command, commit, machine, settings.
pub fn provenance(s: &GridSettings, title: &str) -> String {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let device = format!("{:?}", pipeline::default_device());
    let mut out = String::new();
    let _ = writeln!(out, "# {title}\n");
    let _ = writeln!(out, "- command: `{command}`");
    let _ = writeln!(out, "- commit: {commit}");
    let _ = writeln!(out, "- device: {device}; CPU: {cpu} ({threads} threads)");
    let _ = writeln!(out, "- data: {}", s.data.display());
    let _ = writeln!(
        out,
        "- preset: {} (epochs {}, image size {}, memory size {}, lr {}), seed {}, val fraction {}",
        s.preset,
        s.epochs.map(|e| e.to_string()).unwrap_or_else(|| "preset".into()),
        s.image_size.map(|e| e.to_string()).unwrap_or_else(|| "preset".into()),
        s.memory_size.map(|e| e.to_string()).unwrap_or_else(|| "preset".into()),
        s.lr.map(|e| e.to_string()).unwrap_or_else(|| "preset".into()),
        s.seed,
        s.val_fraction.map(|e| e.to_string()).unwrap_or_else(|| "preset".into()),
    );
    let _ = writeln!(out, "- scores scaled over the test set (the paper's protocol)");
    out
}

/// Writes `summary.csv`: one line per finished cell with its metrics.
pub fn write_summary_csv(results: &Path, cells: &[CellResult]) -> Result<()> {
    let mut csv = String::from("cell,category,variant,division,channel_division,adversarial,image_auroc,pixel_auroc,aupro,f1_max,n_test,epochs,image_size\n");
    for r in cells {
        let m = &r.metrics;
        let num =
            |k: &str| m.get(k).and_then(|v| v.as_f64()).map(|v| format!("{v}")).unwrap_or_default();
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.cell.name(),
            r.cell.category,
            r.cell.variant,
            r.cell.division.map(|v| v.to_string()).unwrap_or_default(),
            r.cell.channel_division.map(|v| v.to_string()).unwrap_or_default(),
            r.cell
                .adversarial
                .map(|f| f.iter().map(|b| if *b { '1' } else { '0' }).collect::<String>())
                .unwrap_or_default(),
            num("image_auroc"),
            num("pixel_auroc"),
            num("aupro"),
            num("f1_max"),
            num("n_test"),
            num("epochs"),
            num("image_size"),
        );
    }
    grid::write_atomic(&results.join("summary.csv"), csv.as_bytes())
}
