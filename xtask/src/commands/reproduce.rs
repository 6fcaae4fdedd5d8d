//! `cargo xtask reproduce`: Tables 1 and 3 (every category x variant), resumable and shardable.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Result};
use daad::eval::{markdown_table, TableEntry};

use crate::experiment::{self, fmt3, fmt_summary, mean, seed_summary, ComparisonRow, GridArgs};
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

/// The image AUROC of a (category, variant) of the main grid, averaged over its seeds.
fn seed_mean(done: &[CellResult], category: &str, variant: &str) -> Option<f64> {
    let v: Vec<f64> = done
        .iter()
        .filter(|r| {
            r.cell.category == category
                && r.cell.variant == variant
                && r.cell.division.is_none()
                && r.cell.adversarial.is_none()
        })
        .filter_map(CellResult::image_auroc)
        .collect();
    mean(&v)
}

/// Table 3: categories as rows (MVTec order), variants as columns (the paper's order), each
/// "ours (paper, difference)", mean last: daad-eval's [`daad::eval::markdown_table`].
pub fn table3(done: &[CellResult]) -> String {
    let main: Vec<&CellResult> =
        done.iter().filter(|r| r.cell.division.is_none() && r.cell.adversarial.is_none()).collect();
    let mut keys: Vec<(String, String)> =
        main.iter().map(|r| (r.cell.category.clone(), r.cell.variant.clone())).collect();
    keys.sort();
    keys.dedup();
    // One entry per (category, variant): the mean over its seeds.
    let mut entries: Vec<TableEntry> = keys
        .iter()
        .filter_map(|(c, v)| Some(TableEntry::new(c, v, seed_mean(done, c, v)?)))
        .collect();
    let order = |list: &[&str], x: &str| list.iter().position(|p| *p == x).unwrap_or(99);
    entries.sort_by_key(|e| {
        (order(&paper::CATEGORIES, &e.category), order(&paper::TABLE3_VARIANTS, &e.variant))
    });
    let paper = daad::eval::paper_table3();
    let mut out = format!(
        "Image AUROC (mean over seeds where there are several)\n\n{}",
        markdown_table("category", &entries, Some(&paper))
    );
    let mut variants: Vec<&str> = keys.iter().map(|(_, v)| v.as_str()).collect();
    variants.sort_by_key(|v| {
        (paper::TABLE3_VARIANTS.iter().position(|p| p == v).unwrap_or(99), v.to_string())
    });
    variants.dedup();
    out.push_str(
        "\nMean image AUROC over categories, ± std over seeds (n = seeds)\n\n| variant | image AUROC |\n|---|---|\n",
    );
    for v in &variants {
        let cells: Vec<&CellResult> =
            main.iter().copied().filter(|r| r.cell.variant == *v).collect();
        let _ = writeln!(out, "| {v} | {} |", fmt_summary(seed_summary(&cells)));
    }
    let rows: Vec<ComparisonRow> = variants
        .iter()
        .filter(|v| **v != "ae")
        .map(|v| {
            let name = v.to_string();
            let keep = name.clone();
            let f: Box<dyn Fn(&Cell) -> bool> = Box::new(move |c: &Cell| {
                c.variant == keep && c.division.is_none() && c.adversarial.is_none()
            });
            (name, f)
        })
        .collect();
    out.push_str(&experiment::comparison_section(done, &rows, "ae", &|c: &Cell| {
        c.variant == "ae" && c.division.is_none() && c.adversarial.is_none()
    }));
    out
}

/// Table 1 ("Ours" = DAAD+): one row per category, ours next to the paper's.
pub fn table1(done: &[CellResult]) -> String {
    let mut out = String::from(
        "DAAD+ image AUROC\n\n| category | ours | paper | ours - paper |\n|---|---|---|---|\n",
    );
    let mut ours_all = Vec::new();
    let mut paper_all = Vec::new();
    for c in paper::CATEGORIES.iter() {
        let Some(ours) = seed_mean(done, c, "daad+") else {
            continue;
        };
        let Some(p) = paper::table1(c) else { continue };
        ours_all.push(ours);
        paper_all.push(p);
        let _ = writeln!(out, "| {c} | {ours:.3} | {p:.3} | {:+.3} |", ours - p);
    }
    let mut others: Vec<&str> = done
        .iter()
        .filter(|r| {
            r.cell.variant == "daad+" && !paper::CATEGORIES.contains(&r.cell.category.as_str())
        })
        .map(|r| r.cell.category.as_str())
        .collect();
    others.sort();
    others.dedup();
    for c in &others {
        let v = seed_mean(done, c, "daad+");
        ours_all.extend(v);
        let _ = writeln!(out, "| {c} | {} | - | - |", fmt3(v));
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

    #[test]
    fn table3_averages_seeds_and_ends_with_the_paired_difference() {
        let mut done = Vec::new();
        for (s, (ae, daad)) in [(0.5, 0.75), (0.5, 0.875)].into_iter().enumerate() {
            for (v, a) in [("ae", ae), ("daad", daad)] {
                let mut r = result("screw", v, a);
                r.cell.seed = Some(s as u64);
                done.push(r);
            }
        }
        let t = table3(&done);
        assert!(t.contains("| screw | 0.500 (0.956, -0.456) | 0.812 (1.000, -0.188) |"), "{t}");
        assert!(t.contains("| daad | 0.812 ± 0.088 (n=2) |"), "{t}");
        assert!(t.contains("| daad | +0.312 [+0.250, +0.375] (n=2) | daad beats ae |"), "{t}");
    }
}
