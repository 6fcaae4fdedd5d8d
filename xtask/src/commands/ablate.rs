//! `cargo xtask ablate`: Table 4, DAAD's image AUROC as the division rate varies, crossed with
//! the memory addressing (softmax temperature, cosine or dot similarity) for the diagnostics.

use std::fmt::Write as _;

use anyhow::{bail, Result};

use crate::experiment::{self, fmt_summary, fmt_vs, mean, seed_summary, GridArgs};
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
    /// Memory softmax temperatures to compare (each crossed with the rates); default: the
    /// training flags' (--memory-temperature, else 1, the paper's), not in the cell names.
    #[arg(long, value_delimiter = ',')]
    pub temperatures: Vec<f64>,
    /// Memory similarities to compare: cosine (the paper's), dot (MemAE's); default: the
    /// training flags' (--similarity, else cosine), not in the cell names.
    #[arg(long, value_delimiter = ',', value_parser = ["cosine", "dot"])]
    pub similarities: Vec<String>,
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
    for &t in &args.temperatures {
        if !(t.is_finite() && t > 0.0) {
            bail!("temperature {t} must be finite and > 0 (1 is the paper's)");
        }
    }
    let temperatures: Vec<Option<f64>> = if args.temperatures.is_empty() {
        vec![None]
    } else {
        args.temperatures.iter().map(|&t| Some(t)).collect()
    };
    let similarities: Vec<Option<String>> = if args.similarities.is_empty() {
        vec![None]
    } else {
        args.similarities.iter().map(|s| Some(s.clone())).collect()
    };
    let categories = args.grid.categories();
    let settings = args.grid.settings("ablate", 2);
    if !args.grid.collect() {
        super::reproduce::check_data(&args.grid.data, &categories)?;
        let mut cells = Vec::new();
        for c in &categories {
            for &r in &args.divisions {
                for &rc in &args.channel_divisions {
                    for t in &temperatures {
                        for sim in &similarities {
                            let mut cell = Cell::new(c, "daad");
                            cell.division = Some(r);
                            cell.channel_division = Some(rc);
                            cell.temperature = *t;
                            cell.similarity = sim.clone();
                            cells.push(cell);
                        }
                    }
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

/// A row key of Table 4: rates, temperature and similarity (`-` where the grid did not set them).
type Row = (usize, usize, String, String);

fn row_of(r: &CellResult) -> Option<Row> {
    Some((
        r.cell.division?,
        r.cell.channel_division.unwrap_or(1),
        r.cell.temperature.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
        r.cell.similarity.clone().unwrap_or_else(|| "-".into()),
    ))
}

/// Table 4: one row per (r_h = r_w, r_c, temperature, similarity), mean image AUROC over
/// categories next to the paper's, and mean ± std over seeds.
pub fn table4(done: &[CellResult]) -> String {
    let mut keys: Vec<Row> = done.iter().filter_map(row_of).collect();
    keys.sort_by(|a, b| (a.0, a.1, &a.2, &a.3).cmp(&(b.0, b.1, &b.2, &b.3)));
    keys.dedup();
    let mut out = String::from(
        "DAAD image AUROC by division rate: mean over categories, ours (paper, ours - paper); \
         mean ± std over seeds (n = seeds)\n\n\
         | r_h = r_w | r_c | temperature | similarity | cells | mean image AUROC | over seeds | mean pixel AUROC |\n|---|---|---|---|---|---|---|---|\n",
    );
    for key in keys {
        let (r, rc) = (key.0, key.1);
        let cells: Vec<&CellResult> =
            done.iter().filter(|c| row_of(c).as_ref() == Some(&key)).collect();
        let image: Vec<f64> = cells.iter().filter_map(|c| c.image_auroc()).collect();
        let pixel: Vec<f64> = cells.iter().filter_map(|c| c.metrics.pixel_auroc).collect();
        let paper_setting = key.2 == "-" && key.3 == "-";
        let paper_value = (rc == 1 && cells.len() == 15 && paper_setting)
            .then(|| paper::TABLE4.iter().find(|(d, _)| *d == r).map(|(_, v)| *v))
            .flatten();
        let _ = writeln!(
            out,
            "| {r} | {rc} | {} | {} | {} | {} | {} | {} |",
            key.2,
            key.3,
            cells.len(),
            fmt_vs(mean(&image), paper_value),
            fmt_summary(seed_summary(&cells)),
            experiment::fmt3(mean(&pixel))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn addressing_sweep_flags_parse_and_name_rows() {
        let cli = Cli::try_parse_from([
            "x",
            "--temperatures",
            "1,0.1",
            "--similarities",
            "cosine,dot",
            "--seeds",
            "0,1",
        ])
        .unwrap();
        assert_eq!(cli.args.temperatures, vec![1.0, 0.1]);
        assert_eq!(cli.args.similarities, vec!["cosine", "dot"]);
        assert!(Cli::try_parse_from(["x", "--similarity", "l1"]).is_err());
        let mut cell = Cell::new("cap", "daad");
        cell.division = Some(2);
        cell.temperature = Some(0.1);
        cell.similarity = Some("dot".into());
        cell.seed = Some(1);
        let r = CellResult { metrics: grid::test_metrics("cap", "daad", 0.5), cell };
        let t = table4(&[r]);
        assert!(t.contains("| 2 | 1 | 0.1 | dot | 1 | 0.500 | 0.500 ± 0.000 (n=1) | - |"), "{t}");
    }
}
