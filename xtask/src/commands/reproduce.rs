//! `cargo xtask reproduce`: Tables 1 and 3 (every category x variant), resumable and shardable.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Result};
use daad::eval::{markdown_table, TableEntry};

use crate::experiment::{self, fmt3, mean, GridArgs};
use crate::grid::{self, Cell, CellResult};
use crate::paper;

/// Arguments of `cargo xtask reproduce`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Variants to run (comma-separated): ae, memae, ae-skip, daad, daad+.
    #[arg(long, value_delimiter = ',', default_value = "ae,memae,ae-skip,daad,daad+")]
    pub variants: Vec<String>,
    #[command(flatten)]
    pub grid: GridArgs,
    /// Heatmap PNGs written per cell.
    #[arg(long, default_value_t = 4)]
    pub heatmaps: usize,
}

/// Runs `cargo xtask reproduce`.
pub fn run(args: Args) -> Result<()> {
    let categories = args.grid.categories();
    let settings = args.grid.settings("reproduce", args.heatmaps);
    if !args.grid.collect() {
        check_data(&args.grid.data, &categories)?;
        let mut cells = Vec::new();
        for c in &categories {
            for v in &args.variants {
                cells.push(Cell::new(c, v));
            }
        }
        grid::write_atomic(
            &settings.results.join("README.md"),
            experiment::provenance(&settings, "daad: reproduction of Tables 1 and 3").as_bytes(),
        )?;
        experiment::run_cells(&args.grid.mine(cells), &settings)?;
    }
    let done = grid::collect(&settings.results)?;
    let (t3, t1) = (table3(&done), table1(&done));
    grid::write_atomic(&settings.results.join("table3.md"), t3.as_bytes())?;
    grid::write_atomic(&settings.results.join("table1.md"), t1.as_bytes())?;
    experiment::write_summary_csv(&settings.results, &done)?;
    println!("{t3}");
    println!("written: {}/table3.md, table1.md, summary.csv", settings.results.display());
    Ok(())
}

/// Fails with the download command when the data is missing.
pub fn check_data(root: &Path, categories: &[String]) -> Result<()> {
    if !root.is_dir() {
        bail!(
            "no dataset at {}: download MVTec AD with `cargo xtask download mvtec --dest data` \
             (or point --data at a folder in MVTec layout; `daad synth --out DIR` makes a synthetic one)",
            root.display()
        );
    }
    for c in categories {
        if !root.join(c).is_dir() {
            bail!(
                "category `{c}` is missing from {}: `cargo xtask download mvtec --category {c} --dest {}` fetches it",
                root.display(),
                root.parent().map(|p| p.display().to_string()).unwrap_or_else(|| ".".into())
            );
        }
    }
    Ok(())
}

fn lookup<'a>(done: &'a [CellResult], category: &str, variant: &str) -> Option<&'a CellResult> {
    done.iter().find(|r| {
        r.cell.category == category && r.cell.variant == variant && r.cell.division.is_none()
    })
}

/// Table 3: categories as rows (MVTec order), variants as columns (the paper's order), each
/// "ours (paper, difference)", mean last: daad-eval's [`daad::eval::markdown_table`].
pub fn table3(done: &[CellResult]) -> String {
    let mut entries: Vec<TableEntry> = done
        .iter()
        .filter(|r| r.cell.division.is_none() && r.cell.adversarial.is_none())
        .filter_map(|r| Some(TableEntry::new(&r.cell.category, &r.cell.variant, r.image_auroc()?)))
        .collect();
    let order = |list: &[&str], x: &str| list.iter().position(|p| *p == x).unwrap_or(99);
    entries.sort_by_key(|e| {
        (order(&paper::CATEGORIES, &e.category), order(&paper::TABLE3_VARIANTS, &e.variant))
    });
    let paper = daad::eval::paper_table3();
    format!("Image AUROC\n\n{}", markdown_table("category", &entries, Some(&paper)))
}

/// Table 1 ("Ours" = DAAD+): one row per category, ours next to the paper's.
pub fn table1(done: &[CellResult]) -> String {
    let mut out = String::from(
        "DAAD+ image AUROC\n\n| category | ours | paper | ours - paper |\n|---|---|---|---|\n",
    );
    let mut ours_all = Vec::new();
    let mut paper_all = Vec::new();
    for c in paper::CATEGORIES.iter() {
        let Some(ours) = lookup(done, c, "daad+").and_then(CellResult::image_auroc) else {
            continue;
        };
        let Some(p) = paper::table1(c) else { continue };
        ours_all.push(ours);
        paper_all.push(p);
        let _ = writeln!(out, "| {c} | {ours:.3} | {p:.3} | {:+.3} |", ours - p);
    }
    let others: Vec<&CellResult> = done
        .iter()
        .filter(|r| {
            r.cell.variant == "daad+" && !paper::CATEGORIES.contains(&r.cell.category.as_str())
        })
        .collect();
    for r in &others {
        ours_all.extend(r.image_auroc());
        let _ = writeln!(out, "| {} | {} | - | - |", r.cell.category, fmt3(r.image_auroc()));
    }
    // The paper's mean is comparable only over the same (MVTec) categories.
    let paper_mean = match (others.is_empty(), paper_all.len()) {
        (true, 15) => Some(paper::TABLE1_MEAN),
        (true, n) if n > 0 => mean(&paper_all),
        _ => None,
    };
    let _ = writeln!(out, "| **mean** | {} | {} | |", fmt3(mean(&ours_all)), fmt3(paper_mean));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(category: &str, variant: &str, auroc: f64) -> CellResult {
        CellResult {
            cell: Cell::new(category, variant),
            metrics: grid::test_metrics(category, variant, auroc),
        }
    }

    #[test]
    fn table1_compares_means_over_the_same_categories() {
        let mvtec = [result("carpet", "daad+", 0.766), result("grid", "daad+", 0.950)];
        let t = table1(&mvtec);
        // Paper: carpet 0.866, grid 0.957 (mean 0.9115, printed 0.911 from its f64 value); ours 0.858.
        assert!(t.contains("| carpet | 0.766 | 0.866 | -0.100 |"), "{t}");
        assert!(t.contains("| **mean** | 0.858 | 0.911 | |"), "{t}");
        let mixed = [result("carpet", "daad+", 0.766), result("cap", "daad+", 0.5)];
        let t = table1(&mixed);
        assert!(t.contains("| cap | 0.500 | - | - |"), "{t}");
        assert!(t.contains("| **mean** | 0.633 | - | |"), "{t}");
    }

    #[test]
    fn table3_shows_ours_beside_the_paper() {
        let done = [result("screw", "ae", 0.9), result("screw", "daad", 0.95)];
        let t = table3(&done);
        assert!(t.contains("| screw | 0.900 (0.956, -0.056) | 0.950 (1.000, -0.050) |"), "{t}");
    }
}
