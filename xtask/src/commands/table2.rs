//! `cargo xtask table2`: the one-class protocol on MNIST or CIFAR-10 (the paper's Table 2).
//!
//! Each class k becomes a folder in MVTec layout (train/good = class k's training images,
//! test/good = class k's test images, test/other = every other test image), so the same
//! pipeline as MVTec AD trains and tests it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use daad::data::oneclass::RawImages;
use daad::train::Preset;
use rayon::prelude::*;

use daad_cli::TrainArgs;

use crate::experiment::{
    self, fmt3, fmt_summary, fmt_vs, mean, seed_summary, GridSettings, ResultsArgs,
};
use crate::grid::{self, Cell};
use crate::paper;

/// Which one-class dataset.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataset {
    /// MNIST digits (28x28 grey).
    Mnist,
    /// CIFAR-10 (32x32 colour).
    Cifar10,
}

/// Arguments of `cargo xtask table2`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The dataset.
    #[arg(long, value_enum)]
    pub dataset: Dataset,
    /// Folder with the official files (default data/mnist or data/cifar10; see `cargo xtask download`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Classes to use as the normal class, one run each.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,4,5,6,7,8,9")]
    pub classes: Vec<u8>,
    /// Use at most this many training images of the class (0 = all).
    #[arg(long, default_value_t = 0)]
    pub max_train: usize,
    /// Use at most this many test images (0 = the whole test set), taken evenly.
    #[arg(long, default_value_t = 0)]
    pub max_test: usize,
    /// Variant to train.
    #[arg(long, default_value = "daad")]
    pub variant: String,
    /// Results folder (default name: table2-<dataset>-<preset>) and sharding.
    #[command(flatten)]
    pub results: ResultsArgs,
    /// Training settings of every run (the same flags as `daad train`) [table2 defaults: fast
    /// preset at 32 px, seed 42, no held-out images].
    #[command(flatten)]
    pub train: TrainArgs,
}

/// table2's training defaults.
pub fn defaults() -> TrainArgs {
    TrainArgs {
        preset: Some(Preset::Fast),
        image_size: Some(32),
        seed: Some(42),
        val_fraction: Some(0.0),
        ..TrainArgs::default()
    }
}

/// Runs `cargo xtask table2`.
pub fn run(args: Args) -> Result<()> {
    let (name, default_dir) = match args.dataset {
        Dataset::Mnist => ("mnist", "data/mnist"),
        Dataset::Cifar10 => ("cifar10", "data/cifar10"),
    };
    let dir = args.data.clone().unwrap_or_else(|| PathBuf::from(default_dir));
    if !dir.is_dir() {
        bail!(
            "no {name} files at {}: run `cargo xtask download {name}` (or pass --data)",
            dir.display()
        );
    }
    let (train_set, test_set) = match args.dataset {
        Dataset::Mnist => daad::data::mnist::load(&dir),
        Dataset::Cifar10 => daad::data::cifar::load(&dir),
    }
    .with_context(|| format!("reading {name} from {}", dir.display()))?;
    let train = args.train.or(&defaults());
    let results = args.results.folder(format!("table2-{name}-{}", train.preset()));
    let root = results.join("oneclass");
    for &k in &args.classes {
        if k > 9 {
            bail!("class {k} does not exist: classes are 0 to 9");
        }
        if crate::workers::assigned_cell().is_some() {
            // A worker process (--jobs) trains on what its parent exported.
            continue;
        }
        export_class(
            &train_set,
            &test_set,
            k,
            args.max_train,
            args.max_test,
            &root.join(k.to_string()),
        )?;
    }
    let jobs = args.results.jobs.resolve(1);
    let settings = GridSettings { data: root, results: results.clone(), train, heatmaps: 0, jobs };
    let cells: Vec<Cell> = args
        .results
        .seeds
        .expand(args.classes.iter().map(|k| Cell::new(&k.to_string(), &args.variant)).collect());
    grid::write_atomic(
        &results.join("README.md"),
        experiment::provenance(&settings, &format!("daad: Table 2, one-class {name}")).as_bytes(),
    )?;
    if !args.results.collect {
        // `mine` repeats cells over --seeds; they already are.
        let plain = ResultsArgs { seeds: Default::default(), ..args.results.clone() };
        experiment::run_cells(&plain.mine(cells.clone()), &settings)?;
    }
    let mut done = grid::collect(&results)?;
    done.retain(|r| cells.iter().any(|c| c.name() == r.cell.name()));
    let mut table = format!(
        "One-class {name}, {} image AUROC per normal class (mean over seeds; ± std over seeds, n = seeds)\n\n| class | image AUROC | over seeds |\n|---|---|---|\n",
        args.variant
    );
    let mut values = Vec::new();
    for k in &args.classes {
        let class: Vec<&grid::CellResult> =
            done.iter().filter(|r| r.cell.category == k.to_string()).collect();
        let v: Vec<f64> = class.iter().filter_map(|r| r.image_auroc()).collect();
        values.push(mean(&v).unwrap_or(f64::NAN));
        let _ =
            writeln!(table, "| {k} | {} | {} |", fmt3(mean(&v)), fmt_summary(seed_summary(&class)));
    }
    let paper_value = (args.classes.len() == 10)
        .then(|| paper::TABLE2.iter().find(|(d, _)| *d == name).map(|(_, v)| *v))
        .flatten();
    let all: Vec<&grid::CellResult> = done.iter().collect();
    let _ = writeln!(
        table,
        "| **mean** | {} | {} |",
        fmt_vs(mean(&values), paper_value),
        fmt_summary(seed_summary(&all))
    );
    grid::write_atomic(&results.join("table2.md"), table.as_bytes())?;
    experiment::write_summary_csv(&results, &done)?;
    println!("{table}");
    Ok(())
}

/// Writes class `k` of a one-class split as PNGs in MVTec layout (skipped when already complete).
pub fn export_class(
    train: &RawImages,
    test: &RawImages,
    k: u8,
    max_train: usize,
    max_test: usize,
    dest: &Path,
) -> Result<()> {
    let marker = dest.join(".complete");
    if marker.is_file() {
        return Ok(());
    }
    let (mut train_idx, test_labels) = daad::data::oneclass::one_class_split(train, test, k)?;
    if max_train > 0 {
        train_idx.truncate(max_train);
    }
    let mut test_idx: Vec<usize> = (0..test.len()).collect();
    if max_test > 0 && max_test < test.len() {
        let step = test.len() as f64 / max_test as f64;
        test_idx = (0..max_test).map(|i| (i as f64 * step) as usize).collect();
    }
    let jobs: Vec<(usize, &RawImages, PathBuf)> = train_idx
        .iter()
        .map(|&i| (i, train, dest.join("train/good").join(format!("{i:05}.png"))))
        .chain(test_idx.iter().map(|&i| {
            let folder = match test_labels[i] {
                daad::data::mvtec::Label::Normal => "test/good",
                daad::data::mvtec::Label::Anomalous => "test/other",
            };
            (i, test, dest.join(folder).join(format!("{i:05}.png")))
        }))
        .collect();
    for folder in ["train/good", "test/good", "test/other"] {
        std::fs::create_dir_all(dest.join(folder))
            .with_context(|| format!("creating {}", dest.join(folder).display()))?;
    }
    jobs.par_iter().try_for_each(|(i, set, path)| save_png(set, *i, path))?;
    std::fs::write(&marker, b"").with_context(|| format!("writing {}", marker.display()))?;
    Ok(())
}

fn save_png(set: &RawImages, i: usize, path: &Path) -> Result<()> {
    let (c, h, w) = (set.channels, set.height, set.width);
    let src = &set.pixels[i * c * h * w..(i + 1) * c * h * w];
    let mut rgb = vec![0u8; h * w * 3];
    for p in 0..h * w {
        for ch in 0..3 {
            rgb[p * 3 + ch] = src[if c == 1 { 0 } else { ch } * h * w + p];
        }
    }
    image::RgbImage::from_raw(w as u32, h as u32, rgb)
        .context("image buffer size")?
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}
