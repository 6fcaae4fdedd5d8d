//! `daad predict`: score images with a trained run; one JSON line per image on stdout, in
//! input order: a prediction, or `{"path": ..., "error": ...}` for an image that cannot be read.
//!
//! Exit status **(choice)**: 0 when every image was scored; 1 when any failed, after every
//! other image was scored and printed, so that a script notices the failure and still has the
//! rest. Folders are read one level deep (their images and their subfolders' images).

use std::path::PathBuf;

use anyhow::{bail, Context};
use daad::pipeline::{self, PredictOutcome};

use crate::PrecisionArgs;

/// Arguments of `daad predict`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run folder written by `daad train --out RUN`.
    #[arg(long)]
    pub run: PathBuf,
    /// Images to score (PNG or JPEG, any size), or folders of them (read one level deep).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Folder for the heatmap PNGs [default: RUN/predictions].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Verdict threshold on the fused score; default: the one stored in the run (a run without
    /// one, e.g. trained with fewer than 5 held-out images, gives the verdict "unknown").
    #[arg(long)]
    pub threshold: Option<f64>,
    /// The precision of the matrix products.
    #[command(flatten)]
    pub precision: PrecisionArgs,
}

/// Runs `daad predict`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let out = args.out.clone().unwrap_or_else(|| args.run.join("predictions"));
    let device = pipeline::default_device();
    let precision = args.precision.precision()?;
    let outcomes = pipeline::predict_with_precision(
        &args.run,
        &args.images,
        &out,
        args.threshold,
        precision,
        &device,
    )
    .with_context(|| format!("predicting with run {}", args.run.display()))?;
    let mut failed = Vec::new();
    for o in &outcomes {
        println!("{}", serde_json::to_string(o).context("serialising a prediction")?);
        if let PredictOutcome::Failed(f) = o {
            failed.push(f.error.clone());
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} images could not be scored (the others were): {}",
            failed.len(),
            outcomes.len(),
            failed.join("; ")
        );
    }
    Ok(())
}
