//! `cargo xtask adversarial`: Table 5, generators x {L_adv, L_ali, L(x), R(x)}.

use std::fmt::Write as _;

use anyhow::Result;

use crate::experiment::{self, fmt_summary, fmt_vs, mean, seed_summary, ComparisonRow, GridArgs};
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
        "Mean image AUROC, ours (paper, ours - paper); mean ± std over seeds (n = seeds)\n\n\
         | generator | L_adv | L_ali | L(x) | R(x) | cells | image AUROC | over seeds |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mut rows: Vec<ComparisonRow> = Vec::new();
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
                "| {g} | {} | {} | {} | {} | {} | {} | {} |",
                mark(row[0]),
                mark(row[1]),
                mark(row[2]),
                mark(row[3]),
                cells.len(),
                fmt_vs(mean(&values), paper_value),
                fmt_summary(seed_summary(&cells))
            );
            if !(g == "ae" && row == ROWS[0]) {
                let bits: String = row.iter().map(|b| if *b { '1' } else { '0' }).collect();
                let g2 = g.to_string();
                rows.push((
                    format!("{g} {bits}"),
                    Box::new(move |c: &Cell| c.variant == g2 && c.adversarial == Some(row)),
                ));
            }
        }
    }
    out.push_str(&experiment::comparison_section(done, &rows, "ae 0001", &|c: &Cell| {
        c.variant == "ae" && c.adversarial == Some(ROWS[0])
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table5_compares_each_row_with_plain_ae() {
        let mut done = Vec::new();
        for s in 0..2u64 {
            for (g, row, v) in [("ae", ROWS[0], 0.5), ("daad", ROWS[4], 0.75)] {
                let mut cell = Cell::new("cap", g);
                cell.adversarial = Some(row);
                cell.seed = Some(s);
                done.push(CellResult { metrics: grid::test_metrics("cap", g, v), cell });
            }
        }
        let t = table5(&done);
        assert!(t.contains("| daad | x | x | x | x | 2 | 0.750 | 0.750 ± 0.000 (n=2) |"), "{t}");
        assert!(
            t.contains("| daad 1111 | +0.250 [+0.250, +0.250] (n=2) | daad 1111 beats ae 0001 |"),
            "{t}"
        );
    }
}
