//! `cargo xtask demo`: the README's main command. Synthetic defects, AE vs DAAD, a table and heatmaps.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use daad::data::synth::{self, SynthConfig};
use daad::train::Preset;
use daad_cli::TrainArgs;

use crate::experiment::{
    self, fmt_summary, paired_vs, seed_summary, seed_summary_of, verdict_sentence, ComparisonRow,
    GridSettings, JobsArgs, SeedArgs,
};
use crate::grid::{self, Cell, CellResult};

/// Arguments of `cargo xtask demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Output folder (data, runs, tables, heatmaps).
    #[arg(long, default_value = "results/demo")]
    pub out: PathBuf,
    /// Synthetic categories to use: classic weave, grain, cap, nut; Perlin-noise marble, pebble.
    #[arg(long, value_delimiter = ',', default_value = "grain,cap")]
    pub categories: Vec<String>,
    /// Variants to compare (the first is the baseline of the paired differences).
    #[arg(long, value_delimiter = ',', default_value = "ae,daad")]
    pub variants: Vec<String>,
    /// Training seeds [demo default: 0,1,2]; the data's seed stays --seed (42).
    #[command(flatten)]
    pub seeds: SeedArgs,
    #[command(flatten)]
    pub jobs: JobsArgs,
    /// Training settings of every run (the same flags as `daad train`) [demo defaults: fast
    /// preset, 64 px, 20 epochs, N = 100, lr 1e-3, seed 42 (the data's), 10 % held out].
    #[command(flatten)]
    pub train: TrainArgs,
}

/// The demo's seeds when `--seeds` is not given: three, the fewest that give a spread.
pub const DEFAULT_SEEDS: [u64; 3] = [0, 1, 2];

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

/// The demo's table: per category and variant the image and pixel AUROC as mean ± std over
/// seeds, the mean over categories, then the paired differences against the first variant.
pub fn table(done: &[CellResult], categories: &[String], variants: &[String]) -> String {
    let mut table = String::from("| category |");
    for v in variants {
        let _ = write!(table, " {v} image AUROC | {v} pixel AUROC |");
    }
    table.push_str("\n|---|");
    table.push_str(&"---|---|".repeat(variants.len()));
    table.push('\n');
    let cells = |c: Option<&str>, v: &str| {
        done.iter()
            .filter(|r| r.cell.variant == v && c.is_none_or(|c| r.cell.category == c))
            .collect::<Vec<&CellResult>>()
    };
    // One variant's image and pixel AUROC cells of a row (a category, or None: the mean).
    let pair = |c: Option<&str>, v: &str| {
        let these = cells(c, v);
        let pixel = seed_summary_of(&these, |m| m.pixel_auroc);
        format!(" {} | {} |", fmt_summary(seed_summary(&these)), fmt_summary(pixel))
    };
    for c in categories {
        let _ = write!(table, "| {c} |");
        for v in variants {
            table.push_str(&pair(Some(c), v));
        }
        table.push('\n');
    }
    table.push_str("| **mean** |");
    for v in variants {
        table.push_str(&pair(None, v));
    }
    table.push_str("\n\nmean ± sample std over seeds (n = seeds; the mean row averages the categories per seed first)\n");
    if let Some((base, rest)) = variants.split_first() {
        let rows: Vec<ComparisonRow> = rest
            .iter()
            .map(|v| {
                let v2 = v.clone();
                (v.clone(), Box::new(move |c: &Cell| c.variant == v2) as Box<dyn Fn(&Cell) -> bool>)
            })
            .collect();
        let base2 = base.clone();
        table.push_str(&experiment::comparison_section(done, &rows, base, &move |c: &Cell| {
            c.variant == base2
        }));
    }
    table
}

/// The demo's closing sentence for each variant against the baseline (the first variant).
pub fn verdicts(done: &[CellResult], variants: &[String]) -> Vec<String> {
    let Some((base, rest)) = variants.split_first() else { return Vec::new() };
    let upper = |v: &str| v.to_uppercase();
    rest.iter()
        .map(|v| {
            let i = paired_vs(done, |c| c.variant == *v, |c| c.variant == *base);
            let sentence = verdict_sentence(&upper(v), &upper(base), i.as_ref());
            match i {
                Some(i) => {
                    format!("{sentence} (image AUROC difference {i}, 95 % bootstrap interval)")
                }
                None => sentence,
            }
        })
        .collect()
}

/// Runs `cargo xtask demo`.
pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let train = args.train.or(&defaults());
    let (image_size, seed) = (train.image_size.unwrap_or(64), train.seed.unwrap_or(42));
    let seeds = args.seeds.seeds_or(&DEFAULT_SEEDS);
    let data = args.out.join("data");
    // Categories of either generator (classic: weave, grain, cap, nut; Perlin noise: marble,
    // pebble); only the missing ones are written.
    let missing: Vec<String> =
        args.categories.iter().filter(|c| !data.join(c).is_dir()).cloned().collect();
    if !missing.is_empty() {
        println!("writing the synthetic defect set ({}) to {}", missing.join(", "), data.display());
        let cfg = SynthConfig {
            categories: missing,
            size: image_size.max(64) * 2,
            seed,
            ..SynthConfig::default()
        };
        synth::generate(&data, &cfg)
            .with_context(|| format!("generating synthetic data in {}", data.display()))?;
    }
    let jobs = args.jobs.resolve(0);
    let settings = GridSettings { data, results: args.out.clone(), train, heatmaps: 6, jobs };
    let mut cells = Vec::new();
    for c in &args.categories {
        for v in &args.variants {
            cells.push(Cell::new(c, v));
        }
    }
    let cells = experiment::expand_seeds(cells, &seeds);
    grid::write_atomic(
        &args.out.join("README.md"),
        experiment::provenance(&settings, "daad demo: synthetic defects, AE vs DAAD").as_bytes(),
    )?;
    let done = experiment::run_cells(&cells, &settings)?;
    let mut text = table(&done, &args.categories, &args.variants);
    for line in verdicts(&done, &args.variants) {
        let _ = writeln!(text, "\n**{line}.**");
    }
    grid::write_atomic(&args.out.join("table.md"), text.as_bytes())?;
    experiment::write_summary_csv(&args.out, &done)?;
    println!("\n{text}");
    println!(
        "{} px, {} epochs, N = {}, data seed {seed}, training seeds {:?}; {:.0} s in all.\nTable: {}/table.md; heatmaps: {}/cells/*/test/heatmaps/",
        image_size,
        settings.train.epochs.unwrap_or(20),
        settings.train.memory_size.unwrap_or(100),
        seeds,
        started.elapsed().as_secs_f64(),
        args.out.display(),
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::grid::test_result as result;

    #[test]
    fn demo_says_who_wins_in_plain_words() {
        let v = vec!["ae".to_string(), "daad".to_string()];
        let c = vec!["grain".to_string()];
        let win: Vec<CellResult> = (0..3)
            .flat_map(|s| [result("grain", "ae", s, 0.7), result("grain", "daad", s, 0.8)])
            .collect();
        assert!(verdicts(&win, &v)[0].starts_with("DAAD beats AE"), "{:?}", verdicts(&win, &v));
        let loss: Vec<CellResult> = (0..3)
            .flat_map(|s| [result("grain", "ae", s, 0.8), result("grain", "daad", s, 0.7)])
            .collect();
        assert!(verdicts(&loss, &v)[0].starts_with("AE beats DAAD"));
        let tie: Vec<CellResult> = (0..3)
            .flat_map(|s| {
                // Differences -0.25, 0, +0.25 (exact in binary).
                [result("grain", "ae", s, 0.5), result("grain", "daad", s, 0.25 + 0.25 * s as f64)]
            })
            .collect();
        assert!(verdicts(&tie, &v)[0].starts_with("tie: the difference is inside the noise"));
        let t = table(&tie, &c, &v);
        assert!(t.contains("| grain | 0.500 ± 0.000 (n=3) | - | 0.500 ± 0.250 (n=3) | - |"), "{t}");
        assert!(t.contains("| daad | +0.000 [-0.250, +0.250] (n=3) | tie |"), "{t}");
    }
}
