//! Running grid cells through the `daad` pipeline, with progress, resume and result tables.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};
use daad::eval::Metrics;
use daad::pipeline::{self, Scaling, ScoreKind, TestOptions};
use daad::train::{Preset, TrainSpec, Variant};
use daad_cli::support::progress::{CountBar, TrainBar};
use daad_cli::support::signal;
use daad_cli::{Loss, TrainArgs};

use crate::grid::{self, Cell, CellResult, Shard};

/// Where a grid's results go and which part of it this machine runs (every grid command).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ResultsArgs {
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
}

impl ResultsArgs {
    /// The results folder; its name defaults to `<default_name>`.
    pub fn folder(&self, default_name: String) -> PathBuf {
        self.results_root.join(self.name.clone().unwrap_or(default_name))
    }

    /// This machine's part of `cells` (all of them without --shard).
    pub fn mine(&self, cells: Vec<Cell>) -> Vec<Cell> {
        match self.shard {
            Some(shard) => grid::shard_cells(&cells, shard),
            None => cells,
        }
    }
}

/// The defaults of the grid commands: the paper preset, seed 42, no held-out images (the
/// paper's protocol: train on every good image).
pub fn grid_defaults() -> TrainArgs {
    TrainArgs {
        preset: Some(Preset::Paper),
        seed: Some(42),
        val_fraction: Some(0.0),
        ..TrainArgs::default()
    }
}

/// The flags shared by the MVTec grid commands (reproduce, ablate, adversarial).
#[derive(clap::Args, Debug, Clone)]
pub struct GridArgs {
    /// Dataset root in MVTec AD layout (see `cargo xtask download mvtec`).
    #[arg(long, default_value = "data/mvtec")]
    pub data: PathBuf,
    /// Categories to run (comma-separated); default: the 15 MVTec AD categories.
    #[arg(long, value_delimiter = ',')]
    pub categories: Vec<String>,
    /// Results folder and sharding.
    #[command(flatten)]
    pub results: ResultsArgs,
    /// Training settings of every cell (the same flags as `daad train`).
    #[command(flatten)]
    pub train: TrainArgs,
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
        let train = self.train.or(&grid_defaults());
        GridSettings {
            data: self.data.clone(),
            results: self.results.folder(format!("{command}-{}", train.preset())),
            train,
            heatmaps,
        }
    }

    /// Whether to only collect finished cells.
    pub fn collect(&self) -> bool {
        self.results.collect
    }

    /// This machine's part of `cells`.
    pub fn mine(&self, cells: Vec<Cell>) -> Vec<Cell> {
        self.results.mine(cells)
    }
}

/// Settings shared by every cell of a grid.
#[derive(Clone, Debug)]
pub struct GridSettings {
    /// Dataset root in MVTec layout.
    pub data: PathBuf,
    /// Results folder (`results/<name>`).
    pub results: PathBuf,
    /// Training flags of every cell, the command's defaults filled in; a cell's own knobs
    /// (division, losses) override them.
    pub train: TrainArgs,
    /// Heatmap PNGs written per cell.
    pub heatmaps: usize,
}

/// The training run folder of a cell: cells that differ only in how they score share one run.
pub fn run_dir(results: &Path, cell: &Cell) -> PathBuf {
    let mut key = Cell { adversarial: None, ..cell.clone() };
    if let Some([adv, ali, _, _]) = cell.adversarial {
        key.adversarial = Some([adv, ali, false, false]);
    }
    results.join("runs").join(key.name())
}

/// The training flags of one cell: the grid's, with the cell's division rates and (Table 5)
/// losses on top.
pub fn cell_train_args(cell: &Cell, s: &GridSettings) -> TrainArgs {
    let mut t = s.train.clone();
    t.division = cell.division.or(t.division);
    t.channel_division = cell.channel_division.or(t.channel_division);
    if let Some([adv, ali, _, _]) = cell.adversarial {
        let mut losses = vec![Loss::Rec];
        losses.extend(adv.then_some(Loss::Adv));
        losses.extend(ali.then_some(Loss::Ali));
        t.losses = Some(losses);
    }
    if t.cache_dir.is_none() {
        t.cache_dir = Some(s.results.join("cache"));
    }
    t
}

/// Trains (or resumes) and tests one cell, then writes its metrics.json atomically.
/// Returns `None` when interrupted.
pub fn run_cell(cell: &Cell, s: &GridSettings, stop: &AtomicBool) -> Result<Option<CellResult>> {
    let dir = grid::cell_dir(&s.results, cell);
    let metrics_path = grid::metrics_path(&s.results, cell);
    if metrics_path.is_file() {
        return Ok(Some(CellResult { cell: cell.clone(), metrics: Metrics::read(&metrics_path)? }));
    }
    grid::write_atomic(&dir.join("cell.json"), &serde_json::to_vec_pretty(cell)?)?;
    let variant: Variant =
        cell.variant.parse().with_context(|| format!("variant `{}`", cell.variant))?;
    let run = run_dir(&s.results, cell);
    let t = cell_train_args(cell, s);
    let (model, train) =
        t.configs(variant).with_context(|| format!("settings of cell {}", cell.name()))?;
    let mut spec = TrainSpec::new(&s.data, &cell.category, &run, model, train);
    // A cell's run is resumed when a checkpoint of it exists (a killed grid continues).
    spec.resume = run.join(daad::train::STATE_FILE).is_file();
    spec.cache_dir = t.cache_dir.clone();
    let device = pipeline::default_device();
    let mut bar = TrainBar::new(&cell.name(), false);
    let report = daad::train::train(&spec, &device, &mut bar, stop)
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
    let bar = CountBar::new(&format!("{} test", cell.name()));
    let report = pipeline::test(&test_opts, &device, &mut |done, total| bar.update(done, total))
        .with_context(|| format!("testing cell {}", cell.name()))?;
    bar.finish();
    report.metrics.write(&metrics_path)?;
    Ok(Some(CellResult { cell: cell.clone(), metrics: report.metrics }))
}

/// Runs every cell in order, skipping finished ones; stops early on Ctrl-C.
pub fn run_cells(cells: &[Cell], s: &GridSettings) -> Result<Vec<CellResult>> {
    let stop = signal::stop_flag()?;
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
    let t = &s.train;
    let or_preset = |v: Option<String>| v.unwrap_or_else(|| "preset".into());
    let _ = writeln!(
        out,
        "- preset: {} (epochs {}, image size {}, memory size {}, lr {}), seed {}, val fraction {}",
        t.preset(),
        or_preset(t.epochs.map(|e| e.to_string())),
        or_preset(t.image_size.map(|e| e.to_string())),
        or_preset(t.memory_size.map(|e| e.to_string())),
        or_preset(t.lr.map(|e| e.to_string())),
        or_preset(t.seed.map(|e| e.to_string())),
        or_preset(t.val_fraction.map(|e| e.to_string())),
    );
    let _ = writeln!(out, "- scores scaled over the test set (the paper's protocol)");
    out
}

/// Writes `summary.csv`: one line per finished cell with its metrics.
pub fn write_summary_csv(results: &Path, cells: &[CellResult]) -> Result<()> {
    let mut csv = String::from("cell,category,variant,division,channel_division,adversarial,image_auroc,pixel_auroc,aupro,f1_max,n_test,epochs,image_size\n");
    for r in cells {
        let m = &r.metrics;
        let num = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
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
            num(m.image_auroc),
            num(m.pixel_auroc),
            num(m.aupro),
            num(m.f1_max),
            m.n_test,
            m.epochs,
            m.image_size,
        );
    }
    grid::write_atomic(&results.join("summary.csv"), csv.as_bytes())
}
