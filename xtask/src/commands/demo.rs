//! `cargo xtask demo`: the README's main command. Synthetic defects, AE vs DAAD, a table and heatmaps.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use daad::data::synth::{self, SynthConfig};
use daad::eval::Metrics;
use daad::train::Preset;
use daad_cli::TrainArgs;

use crate::experiment::{self, fmt3, mean, GridSettings};
use crate::grid::{self, Cell};

/// Arguments of `cargo xtask demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Output folder (data, runs, tables, heatmaps).
    #[arg(long, default_value = "results/demo")]
    pub out: PathBuf,
    /// Synthetic categories to use (weave, grain, cap, nut).
    #[arg(long, value_delimiter = ',', default_value = "grain,cap")]
    pub categories: Vec<String>,
    /// Variants to compare.
    #[arg(long, value_delimiter = ',', default_value = "ae,daad")]
    pub variants: Vec<String>,
    /// Training settings of every run (the same flags as `daad train`) [demo defaults: fast
    /// preset, 64 px, 20 epochs, N = 100, lr 1e-3, seed 42 (also the data's), 10 % held out].
    #[command(flatten)]
    pub train: TrainArgs,
}

/// The demo's training defaults. lr 1e-3 **(choice)**: ten times the paper's, because the demo
/// trains for minutes, not 1000 epochs.
pub fn defaults() -> TrainArgs {
    TrainArgs {
        preset: Some(Preset::Fast),
        image_size: Some(64),
        epochs: Some(20),
        memory_size: Some(100),
        lr: Some(1e-3),
        seed: Some(42),
        val_fraction: Some(0.1),
        ..TrainArgs::default()
    }
}

/// Runs `cargo xtask demo`.
pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let train = args.train.or(&defaults());
    let (image_size, seed) = (train.image_size.unwrap_or(64), train.seed.unwrap_or(42));
    let data = args.out.join("data");
    if !data.join(&args.categories[0]).is_dir() {
        println!("writing the synthetic defect set to {}", data.display());
        let cfg = SynthConfig {
            categories: args.categories.clone(),
            size: image_size.max(64) * 2,
            seed,
            ..SynthConfig::default()
        };
        synth::generate(&data, &cfg)
            .with_context(|| format!("generating synthetic data in {}", data.display()))?;
    }
    let settings = GridSettings { data, results: args.out.clone(), train, heatmaps: 6 };
    let mut cells = Vec::new();
    for c in &args.categories {
        for v in &args.variants {
            cells.push(Cell::new(c, v));
        }
    }
    grid::write_atomic(
        &args.out.join("README.md"),
        experiment::provenance(&settings, "daad demo: synthetic defects, AE vs DAAD").as_bytes(),
    )?;
    let done = experiment::run_cells(&cells, &settings)?;
    let mut table = String::from("| category |");
    for v in &args.variants {
        let _ = write!(table, " {v} image AUROC | {v} pixel AUROC |");
    }
    table.push_str("\n|---|");
    table.push_str(&"---|---|".repeat(args.variants.len()));
    table.push('\n');
    let image_auroc: fn(&Metrics) -> Option<f64> = |m| m.image_auroc;
    let pixel_auroc: fn(&Metrics) -> Option<f64> = |m| m.pixel_auroc;
    let get = |c: &str, v: &str, k: fn(&Metrics) -> Option<f64>| {
        done.iter()
            .find(|r| r.cell.category == c && r.cell.variant == v)
            .and_then(|r| k(&r.metrics))
    };
    for c in &args.categories {
        let _ = write!(table, "| {c} |");
        for v in &args.variants {
            let _ = write!(
                table,
                " {} | {} |",
                fmt3(get(c, v, image_auroc)),
                fmt3(get(c, v, pixel_auroc))
            );
        }
        table.push('\n');
    }
    table.push_str("| **mean** |");
    for v in &args.variants {
        let img: Vec<f64> = args.categories.iter().filter_map(|c| get(c, v, image_auroc)).collect();
        let pix: Vec<f64> = args.categories.iter().filter_map(|c| get(c, v, pixel_auroc)).collect();
        let _ = write!(table, " {} | {} |", fmt3(mean(&img)), fmt3(mean(&pix)));
    }
    table.push('\n');
    grid::write_atomic(&args.out.join("table.md"), table.as_bytes())?;
    experiment::write_summary_csv(&args.out, &done)?;
    println!("\n{table}");
    println!(
        "{} px, {} epochs, N = {}, seed {}; {:.0} s in all.\nTable: {}/table.md; heatmaps: {}/cells/*/test/heatmaps/",
        image_size,
        settings.train.epochs.unwrap_or(20),
        settings.train.memory_size.unwrap_or(100),
        seed,
        started.elapsed().as_secs_f64(),
        args.out.display(),
        args.out.display()
    );
    Ok(())
}
