//! `cargo xtask adversarial`: Table 5, generators x {L_adv, L_ali, L(x), R(x)}.

use std::fmt::Write as _;

use anyhow::Result;

use crate::experiment::{self, fmt_vs, mean, GridArgs};
use crate::grid::{self, Cell, CellResult};
use crate::paper;

/// Arguments of `cargo xtask adversarial`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Generators to cross with the adversarial settings: ae, memae, daad.
    #[arg(long, value_delimiter = ',', default_value = "ae,memae,daad")]
    pub generators: Vec<String>,
    #[command(flatten)]
    pub grid: GridArgs,
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
    let categories = args.grid.categories();
    let settings = args.grid.settings("adversarial", 2);
    if !args.grid.collect() {
        super::reproduce::check_data(&args.grid.data, &categories)?;
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
        grid::write_atomic(
            &settings.results.join("README.md"),
            experiment::provenance(
                &settings,
                "daad: Table 5, adversarially learned representation",
            )
            .as_bytes(),
        )?;
        // Rows 4 and 5 share a training run folder; on another shard the second one resumes the
        // finished run and only tests.
        experiment::run_cells(&args.grid.mine(cells), &settings)?;
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
