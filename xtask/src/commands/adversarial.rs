//! `cargo xtask adversarial`: Table 5, generators x {L_adv, L_ali, L(x), R(x)}.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use daad::train::Preset;

use crate::experiment::{self, fmt_vs, mean, GridSettings};
use crate::grid::{self, Cell, CellResult, Shard};
use crate::paper;

/// Arguments of `cargo xtask adversarial`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Generators to cross with the adversarial settings: ae, memae, daad.
    #[arg(long, value_delimiter = ',', default_value = "ae,memae,daad")]
    pub generators: Vec<String>,
    /// Dataset root in MVTec AD layout.
    #[arg(long, default_value = "data/mvtec")]
    pub data: PathBuf,
    /// Categories (comma-separated); default: the 15 MVTec AD categories.
    #[arg(long, value_delimiter = ',')]
    pub categories: Vec<String>,
    /// Training preset: paper, fast, ci.
    #[arg(long, default_value = "paper")]
    pub preset: Preset,
    /// Results folder name under --results-root (default: adversarial-<preset>).
    #[arg(long)]
    pub name: Option<String>,
    /// Where results folders live.
    #[arg(long, default_value = "results")]
    pub results_root: PathBuf,
    /// Run only the K-th of N deterministic parts of the grid.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// Build the table from finished cells only.
    #[arg(long)]
    pub collect: bool,
    /// Override the preset's epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override the preset's image size.
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Override the preset's memory size N.
    #[arg(long)]
    pub memory_size: Option<usize>,
    /// Seed of every run.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Adam learning rate (default: the paper's, 1e-4 or 2e-4 with the adversarial losses).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Fraction of train/good held out (0 = the paper's protocol).
    #[arg(long, default_value_t = 0.0)]
    pub val_fraction: f64,
}

/// The five rows of Table 5 per generator: (L_adv, L_ali, L(x) in score, R(x) in score).
pub const ROWS: [[bool; 4]; 5] = [
    [false, false, false, true],
    [true, false, false, true],
    [true, true, false, true],
    [true, true, true, false],
    [true, true, true, true],
];

/// Runs `cargo xtask adversarial`.
pub fn run(args: Args) -> Result<()> {
    let categories = if args.categories.is_empty() {
        paper::CATEGORIES.iter().map(|c| c.to_string()).collect()
    } else {
        args.categories.clone()
    };
    let settings = GridSettings {
        data: args.data.clone(),
        results: args
            .results_root
            .join(args.name.clone().unwrap_or_else(|| format!("adversarial-{}", args.preset))),
        preset: args.preset,
        epochs: args.epochs,
        image_size: args.image_size,
        memory_size: args.memory_size,
        seed: args.seed,
        val_fraction: Some(args.val_fraction),
        heatmaps: 2,
        lr: args.lr,
    };
    if !args.collect {
        super::reproduce::check_data(&args.data, &categories)?;
        let mut cells = Vec::new();
        for c in &categories {
            for g in &args.generators {
                for row in ROWS {
                    let mut cell = Cell::new(c, g);
                    cell.adversarial = Some(row);
                    cells.push(cell);
                }
            }
        }
        // Cells sharing a training run (rows 4 and 5) land on the same shard only by chance; the
        // run folder is shared, so the second one resumes a finished run and only tests.
        let mine = match args.shard {
            Some(shard) => grid::shard_cells(&cells, shard),
            None => cells,
        };
        grid::write_atomic(
            &settings.results.join("README.md"),
            experiment::provenance(
                &settings,
                "daad: Table 5, adversarially learned representation",
            )
            .as_bytes(),
        )?;
        experiment::run_cells(&mine, &settings)?;
    }
    let done = grid::collect(&settings.results)?;
    let table = table5(&done);
    grid::write_atomic(&settings.results.join("table5.md"), table.as_bytes())?;
    experiment::write_summary_csv(&settings.results, &done)?;
    println!("{table}");
    println!("written: {}/table5.md, summary.csv", settings.results.display());
    Ok(())
}

fn mark(b: bool) -> &'static str {
    if b {
        "x"
    } else {
        ""
    }
}

/// Table 5: one row per generator and setting, mean image AUROC over categories next to the paper's.
pub fn table5(done: &[CellResult]) -> String {
    let mut out = String::from(
        "Mean image AUROC, ours (paper, ours - paper)\n\n\
         | generator | L_adv | L_ali | L(x) | R(x) | categories | image AUROC |\n|---|---|---|---|---|---|---|\n",
    );
    for g in ["ae", "memae", "daad"] {
        for row in ROWS {
            let cells: Vec<&CellResult> = done
                .iter()
                .filter(|r| r.cell.variant == g && r.cell.adversarial == Some(row))
                .collect();
            if cells.is_empty() {
                continue;
            }
            let values: Vec<f64> = cells.iter().filter_map(|c| c.image_auroc()).collect();
            let paper_value = (cells.len() == 15)
                .then(|| {
                    paper::TABLE5
                        .iter()
                        .find(|t| t.0 == g && [t.1, t.2, t.3, t.4] == row)
                        .map(|t| t.5)
                })
                .flatten();
            let _ = writeln!(
                out,
                "| {g} | {} | {} | {} | {} | {} | {} |",
                mark(row[0]),
                mark(row[1]),
                mark(row[2]),
                mark(row[3]),
                cells.len(),
                fmt_vs(mean(&values), paper_value)
            );
        }
    }
    out
}
