//! `cargo xtask demo`: the README's main command. Synthetic defects, AE vs DAAD, a table and heatmaps.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use daad::data::synth::{self, SynthConfig};
use daad::train::Preset;

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
    /// Training image size (a multiple of 16).
    #[arg(long, default_value_t = 64)]
    pub image_size: usize,
    /// Training epochs per run.
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Memory size N.
    #[arg(long, default_value_t = 100)]
    pub memory_size: usize,
    /// Adam learning rate (choice: 1e-3, ten times the paper's, because the demo trains for
    /// minutes, not 1000 epochs).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Seed of the data and of every run.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Runs `cargo xtask demo`.
pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let data = args.out.join("data");
    if !data.join(&args.categories[0]).is_dir() {
        println!("writing the synthetic defect set to {}", data.display());
        let cfg = SynthConfig {
            categories: args.categories.clone(),
            size: args.image_size.max(64) * 2,
            seed: args.seed,
            ..SynthConfig::default()
        };
        synth::generate(&data, &cfg)
            .with_context(|| format!("generating synthetic data in {}", data.display()))?;
    }
    let settings = GridSettings {
        data,
        results: args.out.clone(),
        preset: Preset::Fast,
        epochs: Some(args.epochs),
        image_size: Some(args.image_size),
        memory_size: Some(args.memory_size),
        seed: args.seed,
        val_fraction: Some(0.1),
        heatmaps: 6,
        lr: Some(args.lr),
    };
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
    let get = |c: &str, v: &str, k: &str| {
        done.iter()
            .find(|r| r.cell.category == c && r.cell.variant == v)
            .and_then(|r| r.metrics.get(k).and_then(|x| x.as_f64()))
    };
    for c in &args.categories {
        let _ = write!(table, "| {c} |");
        for v in &args.variants {
            let _ = write!(
                table,
                " {} | {} |",
                fmt3(get(c, v, "image_auroc")),
                fmt3(get(c, v, "pixel_auroc"))
            );
        }
        table.push('\n');
    }
    table.push_str("| **mean** |");
    for v in &args.variants {
        let img: Vec<f64> =
            args.categories.iter().filter_map(|c| get(c, v, "image_auroc")).collect();
        let pix: Vec<f64> =
            args.categories.iter().filter_map(|c| get(c, v, "pixel_auroc")).collect();
        let _ = write!(table, " {} | {} |", fmt3(mean(&img)), fmt3(mean(&pix)));
    }
    table.push('\n');
    grid::write_atomic(&args.out.join("table.md"), table.as_bytes())?;
    experiment::write_summary_csv(&args.out, &done)?;
    println!("\n{table}");
    println!(
        "{} px, {} epochs, N = {}, seed {}; {:.0} s in all.\nTable: {}/table.md; heatmaps: {}/cells/*/test/heatmaps/",
        args.image_size,
        args.epochs,
        args.memory_size,
        args.seed,
        started.elapsed().as_secs_f64(),
        args.out.display(),
        args.out.display()
    );
    Ok(())
}
