//! `cargo xtask ablate`: Table 4, DAAD's image AUROC as the division rate varies.

use std::fmt::Write as _;

use anyhow::{bail, Result};

use crate::experiment::{self, fmt_vs, mean, GridArgs};
use crate::grid::{self, Cell, CellResult};
use crate::paper;

/// Arguments of `cargo xtask ablate`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Spatial division rates r_h = r_w to compare (the paper: 1,2,4,8,16).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    pub divisions: Vec<usize>,
    /// Channel division rates r_c to compare (each crossed with every --divisions).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub channel_divisions: Vec<usize>,
    #[command(flatten)]
    pub grid: GridArgs,
}

/// Runs `cargo xtask ablate`.
pub fn run(args: Args) -> Result<()> {
    for &r in args.divisions.iter().chain(&args.channel_divisions) {
        if r == 0 || !r.is_power_of_two() {
            bail!("division rate {r} must be a power of two (1, 2, 4, 8, 16)");
        }
    }
    let categories = args.grid.categories();
    let settings = args.grid.settings("ablate", 2);
    if !args.grid.collect() {
        super::reproduce::check_data(&args.grid.data, &categories)?;
        let mut cells = Vec::new();
        for c in &categories {
            for &r in &args.divisions {
                for &rc in &args.channel_divisions {
                    let mut cell = Cell::new(c, "daad");
                    cell.division = Some(r);
                    cell.channel_division = Some(rc);
                    cells.push(cell);
                }
            }
        }
        grid::write_atomic(
            &settings.results.join("README.md"),
            experiment::provenance(&settings, "daad: Table 4, division rate ablation").as_bytes(),
        )?;
        experiment::run_cells(&args.grid.mine(cells), &settings)?;
    }
    let done = grid::collect(&settings.results)?;
    let table = table4(&done);
    grid::write_atomic(&settings.results.join("table4.md"), table.as_bytes())?;
    experiment::write_summary_csv(&settings.results, &done)?;
    println!("{table}");
    println!("written: {}/table4.md, summary.csv", settings.results.display());
    Ok(())
}

/// Table 4: one row per (r_h = r_w, r_c), mean image AUROC over categories next to the paper's.
pub fn table4(done: &[CellResult]) -> String {
    let mut keys: Vec<(usize, usize)> = done
        .iter()
        .filter_map(|r| Some((r.cell.division?, r.cell.channel_division.unwrap_or(1))))
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = String::from(
        "DAAD image AUROC by division rate: mean over categories, ours (paper, ours - paper)\n\n\
         | r_h = r_w | r_c | categories | mean image AUROC | mean pixel AUROC |\n|---|---|---|---|---|\n",
    );
    for (r, rc) in keys {
        let cells: Vec<&CellResult> = done
            .iter()
            .filter(|c| c.cell.division == Some(r) && c.cell.channel_division.unwrap_or(1) == rc)
            .collect();
        let image: Vec<f64> = cells.iter().filter_map(|c| c.image_auroc()).collect();
        let pixel: Vec<f64> = cells.iter().filter_map(|c| c.metrics.pixel_auroc).collect();
        let paper_value = (rc == 1 && cells.len() == 15)
            .then(|| paper::TABLE4.iter().find(|(d, _)| *d == r).map(|(_, v)| *v))
            .flatten();
        let _ = writeln!(
            out,
            "| {r} | {rc} | {} | {} | {} |",
            cells.len(),
            fmt_vs(mean(&image), paper_value),
            experiment::fmt3(mean(&pixel))
        );
    }
    out
}
