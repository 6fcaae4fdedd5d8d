//! Running grid cells through the `daad` pipeline, with progress, resume and result tables.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};
use daad::eval::stats::{self, Interval, Outcome, Summary};
use daad::eval::Metrics;
use daad::pipeline::{self, Scaling, ScoreKind, TestOptions};
use daad::train::{Preset, TrainSpec, Variant};
use daad_cli::support::progress::{CountBar, TrainBar};
use daad_cli::support::signal;
use daad_cli::{Loss, TrainArgs};

use crate::grid::{self, Cell, CellResult, Shard};
use crate::workers;

/// The seeds every cell of a grid is repeated with (`--seeds`), defined once for every command.
#[derive(clap::Args, Debug, Clone, Default, PartialEq)]
pub struct SeedArgs {
    /// Repeat every cell with each of these training seeds (comma-separated, e.g. 0,1,2); each
    /// seed is its own cell (name ends in `__s<seed>`), finished ones are reused. Tables show
    /// mean ± std over seeds and paired intervals [default: one run with --seed].
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
}

impl SeedArgs {
    /// The seeds asked for, duplicates removed in order; `default` when none was given.
    pub fn seeds_or(&self, default: &[u64]) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for &s in if self.seeds.is_empty() { default } else { &self.seeds } {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// Every cell once per seed (cells keep no seed, and their old names, without `--seeds`).
    pub fn expand(&self, cells: Vec<Cell>) -> Vec<Cell> {
        expand_seeds(cells, &self.seeds_or(&[]))
    }
}

/// Every cell once per seed in `seeds`; `cells` unchanged when `seeds` is empty.
pub fn expand_seeds(cells: Vec<Cell>, seeds: &[u64]) -> Vec<Cell> {
    if seeds.is_empty() {
        return cells;
    }
    cells
        .into_iter()
        .flat_map(|c| seeds.iter().map(move |&s| Cell { seed: Some(s), ..c.clone() }))
        .collect()
}

/// How many cells train at once (every grid command and the demo).
#[derive(clap::Args, Debug, Clone, Default, PartialEq)]
pub struct JobsArgs {
    /// Cells trained at once, each in its own process with (cores / N) threads; 0: one per
    /// core. Pays for small images (64 px: about 1.4x the cells per hour on 2 cores); each
    /// process holds its own model [default: 0 for the demo, 1 for the grids].
    #[arg(long)]
    pub jobs: Option<usize>,
}

impl JobsArgs {
    /// The number of concurrent cells: `--jobs`, else `default` (0: one per core).
    pub fn resolve(&self, default: usize) -> usize {
        workers::resolve_jobs(self.jobs, default)
    }
}

/// Where a grid's results go and which part of it this machine runs (every grid command).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ResultsArgs {
    /// Seeds to repeat every cell with.
    #[command(flatten)]
    pub seeds: SeedArgs,
    /// Cells at once.
    #[command(flatten)]
    pub jobs: JobsArgs,
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

    /// This machine's part of `cells`, each repeated over `--seeds` (all of them without --shard).
    pub fn mine(&self, cells: Vec<Cell>) -> Vec<Cell> {
        let cells = self.seeds.expand(cells);
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
            jobs: self.results.jobs.resolve(1),
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
    /// Cells trained at once, each in a worker process (1: in this process, one after another).
    pub jobs: usize,
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
    t.seed = cell.seed.or(t.seed);
    t.memory_temperature = cell.temperature.or(t.memory_temperature);
    if let Some(sim) = &cell.similarity {
        t.similarity = match sim.as_str() {
            "dot" => Some(daad_cli::SimilarityArg::Dot),
            _ => Some(daad_cli::SimilarityArg::Cosine),
        };
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
        precision: pipeline::Precision::F32,
    };
    let bar = CountBar::new(&format!("{} test", cell.name()));
    let report = pipeline::test(&test_opts, &device, &mut |done, total| bar.update(done, total))
        .with_context(|| format!("testing cell {}", cell.name()))?;
    bar.finish();
    report.metrics.write(&metrics_path)?;
    Ok(Some(CellResult { cell: cell.clone(), metrics: report.metrics }))
}

/// Runs every cell, skipping finished ones (`s.jobs` at once in worker processes, else in
/// order); stops early on Ctrl-C. In a worker process, runs its one cell and exits.
pub fn run_cells(cells: &[Cell], s: &GridSettings) -> Result<Vec<CellResult>> {
    let stop = signal::stop_flag()?;
    if let Some(name) = workers::assigned_cell() {
        let cell = cells
            .iter()
            .find(|c| c.name() == name)
            .with_context(|| format!("worker for cell {name}, which this grid does not have"))?;
        match run_cell(cell, s, &stop)? {
            Some(_) => std::process::exit(0),
            None => bail!("interrupted during {name}"),
        }
    }
    let todo: Vec<Cell> =
        cells.iter().filter(|c| !grid::metrics_path(&s.results, c).is_file()).cloned().collect();
    if s.jobs > 1 && todo.len() > 1 {
        workers::run_in_workers(&todo, &s.results, s.jobs.min(todo.len()), &stop)?;
    }
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

/// Mean ± std over seeds of the image AUROC of `cells`: per seed the mean over its cells (the
/// categories), then [`stats::summarize`] over seeds (n = seeds; cells without a seed count as
/// one seed).
pub fn seed_summary(cells: &[&CellResult]) -> Option<Summary> {
    seed_summary_of(cells, |m| m.image_auroc)
}

/// [`seed_summary`] of any metric of the cells.
pub fn seed_summary_of(
    cells: &[&CellResult],
    metric: impl Fn(&Metrics) -> Option<f64>,
) -> Option<Summary> {
    let mut seeds: Vec<Option<u64>> = cells.iter().map(|c| c.cell.seed).collect();
    seeds.sort();
    seeds.dedup();
    let per_seed: Vec<f64> = seeds
        .iter()
        .filter_map(|s| {
            let v: Vec<f64> = cells
                .iter()
                .filter(|c| c.cell.seed == *s)
                .filter_map(|c| metric(&c.metrics))
                .collect();
            mean(&v)
        })
        .collect();
    stats::summarize(&per_seed)
}

/// `0.812 ± 0.013 (n=3)` or `-`.
pub fn fmt_summary(s: Option<Summary>) -> String {
    s.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
}

/// (category, seed) -> image AUROC of the cells passing `keep`: the pairing key of the paired
/// differences.
pub fn keyed_auroc(
    done: &[CellResult],
    keep: impl Fn(&Cell) -> bool,
) -> Vec<((String, Option<u64>), f64)> {
    done.iter()
        .filter(|r| keep(&r.cell))
        .filter_map(|r| Some(((r.cell.category.clone(), r.cell.seed), r.image_auroc()?)))
        .collect()
}

/// The paired difference of image AUROC (per category and seed) of the cells passing `variant`
/// minus those passing `baseline`, with daad-eval's seeded bootstrap interval.
pub fn paired_vs(
    done: &[CellResult],
    variant: impl Fn(&Cell) -> bool,
    baseline: impl Fn(&Cell) -> bool,
) -> Option<Interval> {
    stats::paired_interval(&keyed_auroc(done, variant), &keyed_auroc(done, baseline))
}

/// The plain-words reading of a paired difference of `name` against `baseline`.
pub fn verdict_sentence(name: &str, baseline: &str, interval: Option<&Interval>) -> String {
    match interval.map(Interval::outcome) {
        Some(Outcome::Win) => format!("{name} beats {baseline}"),
        Some(Outcome::Loss) => format!("{baseline} beats {name}"),
        Some(Outcome::Tie) => "tie: the difference is inside the noise".to_string(),
        None => format!("no paired results of {name} and {baseline} to compare"),
    }
}

/// Which cells a row of a comparison takes.
pub type CellFilter = Box<dyn Fn(&Cell) -> bool>;

/// A row of [`comparison_section`]: its label and its cells.
pub type ComparisonRow = (String, CellFilter);

/// The closing section of a table of variants: each row's paired difference against the
/// baseline (per category and seed) with its bootstrap 95 % interval and its reading. `rows`
/// are (label, which cells) pairs; rows without pairs are left out.
pub fn comparison_section(
    done: &[CellResult],
    rows: &[ComparisonRow],
    baseline_label: &str,
    baseline: &dyn Fn(&Cell) -> bool,
) -> String {
    let mut out = format!(
        "\nPaired difference in image AUROC against {baseline_label} (per category and seed), \
         mean [bootstrap {:.0} % interval, {} resamples] (n pairs); a win or loss only when the \
         interval excludes 0\n\n| variant | difference | reading |\n|---|---|---|\n",
        100.0 * stats::DEFAULT_LEVEL,
        stats::DEFAULT_RESAMPLES
    );
    let mut any = false;
    for (label, keep) in rows {
        let Some(i) = paired_vs(done, keep, baseline) else { continue };
        any = true;
        let reading = match i.outcome() {
            Outcome::Win => format!("{label} beats {baseline_label}"),
            Outcome::Loss => format!("{baseline_label} beats {label}"),
            Outcome::Tie => "tie".to_string(),
        };
        let _ = writeln!(out, "| {label} | {i} | {reading} |");
    }
    if any {
        out
    } else {
        String::new()
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
    let threads = workers::cores();
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
    let mut csv = String::from("cell,category,variant,seed,division,channel_division,adversarial,temperature,similarity,image_auroc,pixel_auroc,aupro,f1_max,n_test,epochs,image_size\n");
    for r in cells {
        let m = &r.metrics;
        let num = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.cell.name(),
            r.cell.category,
            r.cell.variant,
            r.cell.seed.map(|v| v.to_string()).unwrap_or_default(),
            r.cell.division.map(|v| v.to_string()).unwrap_or_default(),
            r.cell.channel_division.map(|v| v.to_string()).unwrap_or_default(),
            r.cell
                .adversarial
                .map(|f| f.iter().map(|b| if *b { '1' } else { '0' }).collect::<String>())
                .unwrap_or_default(),
            r.cell.temperature.map(|v| v.to_string()).unwrap_or_default(),
            r.cell.similarity.clone().unwrap_or_default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::test_result as result;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        results: ResultsArgs,
    }

    #[test]
    fn seeds_parse_and_expand_cells() {
        let cli = Cli::try_parse_from(["x", "--seeds", "0,1,2,1"]).unwrap();
        assert_eq!(cli.results.seeds.seeds_or(&[]), vec![0, 1, 2]);
        let cells = cli.results.mine(vec![Cell::new("cap", "ae"), Cell::new("cap", "daad")]);
        let names: Vec<String> = cells.iter().map(Cell::name).collect();
        assert_eq!(names.len(), 6);
        assert!(names.contains(&"cap__daad__s2".to_string()), "{names:?}");
        assert!(Cli::try_parse_from(["x", "--seeds", "a"]).is_err());
        let none = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(none.results.mine(vec![Cell::new("cap", "ae")])[0].name(), "cap__ae");
        assert_eq!(none.results.seeds.seeds_or(&[0, 1, 2]), vec![0, 1, 2]);
    }

    #[test]
    fn seed_summary_averages_categories_then_seeds() {
        let done = [
            result("a", "daad", 0, 0.8),
            result("b", "daad", 0, 0.6),
            result("a", "daad", 1, 0.9),
            result("b", "daad", 1, 0.9),
        ];
        let cells: Vec<&CellResult> = done.iter().collect();
        let s = seed_summary(&cells).unwrap();
        // Seed means 0.7 and 0.9: mean 0.8, sample std 0.1414.
        assert_eq!(s.n, 2);
        assert!((s.mean - 0.8).abs() < 1e-12 && (s.std - 0.02f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn verdicts_read_the_interval() {
        let done: Vec<CellResult> = (0..3)
            .flat_map(|s| {
                [
                    result("a", "ae", s, 0.70),
                    result("a", "daad", s, 0.80 + 0.01 * s as f64),
                    result("a", "memae", s, 0.60),
                    result("a", "ae-skip", s, if s == 0 { 0.6 } else { 0.75 }),
                ]
            })
            .collect();
        let ae = |c: &Cell| c.variant == "ae";
        let daad = paired_vs(&done, |c| c.variant == "daad", ae);
        assert_eq!(verdict_sentence("DAAD", "AE", daad.as_ref()), "DAAD beats AE");
        let memae = paired_vs(&done, |c| c.variant == "memae", ae);
        assert_eq!(verdict_sentence("MemAE", "AE", memae.as_ref()), "AE beats MemAE");
        // Differences -0.10, +0.05, +0.05: the interval contains 0.
        let skip = paired_vs(&done, |c| c.variant == "ae-skip", ae);
        assert_eq!(
            verdict_sentence("AE-skip", "AE", skip.as_ref()),
            "tie: the difference is inside the noise"
        );
        assert!(verdict_sentence("X", "AE", None).starts_with("no paired"));
        let rows: Vec<ComparisonRow> =
            vec![("daad".into(), Box::new(|c: &Cell| c.variant == "daad"))];
        let section = comparison_section(&done, &rows, "ae", &ae);
        assert!(
            section.contains("| daad | +0.110 [+0.100, +0.120] (n=3) | daad beats ae |"),
            "{section}"
        );
    }
}
