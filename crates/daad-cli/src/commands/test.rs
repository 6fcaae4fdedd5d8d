//! `daad test`: a trained run on a category's test split -> DIR/metrics.json and a summary.

use std::path::PathBuf;

use anyhow::{bail, Context};
use daad::pipeline::{self, OutputDir, Scaling, ScoreKind, TestOptions, DEFAULT_MAX_HEATMAPS};

use crate::support::progress::CountBar;
use crate::PrecisionArgs;

/// Arguments of `daad test`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run folder written by `daad train --out RUN`.
    #[arg(long)]
    pub run: PathBuf,
    /// Dataset root in MVTec AD layout (ROOT/CATEGORY/test/...).
    #[arg(long)]
    pub data: PathBuf,
    /// Category folder under the root.
    #[arg(long)]
    pub category: String,
    /// Output folder for metrics.json, scores.csv, roc.png and heatmaps/ [default: RUN/test-CATEGORY].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Score scaling: test-set (min-max over the test set, the paper's protocol) or stored (the
    /// run's calibration on held-out normal images, what `predict` uses).
    #[arg(long, default_value = "test-set")]
    pub scaling: String,
    /// Score that ranks the images: fused (g R + (1 - g) L), r (reconstruction only) or l (alignment only).
    #[arg(long, default_value = "fused")]
    pub score: String,
    /// Threshold to report instead of the F1-max one.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Heatmap PNGs to write (defects first; 0 = none).
    #[arg(long, default_value_t = DEFAULT_MAX_HEATMAPS)]
    pub heatmaps: usize,
    /// Also write a self-contained results page, OUT/report/index.html (opens from disk): every
    /// test image by score with its reconstruction, anomaly map and mask, and a threshold slider.
    #[arg(long)]
    pub html: bool,
    /// The precision of the matrix products.
    #[command(flatten)]
    pub precision: PrecisionArgs,
}

/// Runs `daad test`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !args.data.is_dir() {
        bail!(
            "data folder {} does not exist: pass the dataset root in MVTec layout that the run was trained on",
            args.data.display()
        );
    }
    let scaling: Scaling = args.scaling.parse()?;
    let score: ScoreKind = args.score.parse()?;
    let precision = args.precision.precision()?;
    let out = args.out.clone().unwrap_or_else(|| args.run.join(format!("test-{}", args.category)));
    let opts = TestOptions {
        run: args.run.clone(),
        data_root: args.data.clone(),
        category: args.category.clone(),
        out,
        scaling,
        score,
        threshold: args.threshold,
        max_heatmaps: args.heatmaps,
        precision,
    };
    let device = pipeline::default_device();
    // Covers the results page too: if it fails, the folder this command created goes as well.
    let out_dir = OutputDir::claim(&opts.out);
    let bar = CountBar::new("testing");
    let report = pipeline::test(&opts, &device, &mut |done, total| bar.update(done, total))
        .with_context(|| {
            format!(
                "testing run {} on {}/{}",
                args.run.display(),
                args.data.display(),
                args.category
            )
        })?;
    bar.finish();
    let page = if args.html { Some(write_html(&args, &opts.out, &device)?) } else { None };
    out_dir.keep();
    println!("{}", report.summary);
    if let Some(page) = page {
        println!("results page: {}", page.display());
    }
    Ok(())
}

/// The static results page of the test split, scored with the run's stored calibration (as
/// `predict` and `serve` score).
#[cfg(feature = "serve")]
fn write_html(
    args: &Args,
    out: &std::path::Path,
    device: &candle_core::Device,
) -> anyhow::Result<PathBuf> {
    let scorer = daad_serve::RunScorer::open(&args.run, device)
        .with_context(|| format!("opening run {}", args.run.display()))?;
    let items = daad_serve::dataset_items(&args.data, &args.category)?;
    let title = format!("daad: {} on {}", args.run.display(), args.category);
    let data = daad_serve::build_report(&scorer, &items, pipeline::INFER_BATCH, &title)?;
    Ok(daad_serve::write_html_report(&out.join("report"), &data)?)
}

/// Without feature `serve` (daad-serve builds the page) `--html` is refused, not ignored.
#[cfg(not(feature = "serve"))]
fn write_html(
    _args: &Args,
    _out: &std::path::Path,
    _device: &candle_core::Device,
) -> anyhow::Result<PathBuf> {
    bail!("--html needs daad built with feature `serve` (on by default: `cargo install --path crates/daad-cli`)")
}
