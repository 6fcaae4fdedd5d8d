//! `daad predict`: score single images with a trained run; one JSON line per image on stdout.

use std::path::PathBuf;

use anyhow::Context;
use daad::pipeline;

/// Arguments of `daad predict`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run folder written by `daad train --out RUN`.
    #[arg(long)]
    pub run: PathBuf,
    /// Images to score (PNG or JPEG, any size).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Folder for the heatmap PNGs [default: RUN/predictions].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Verdict threshold on the fused score; default: the one stored in the run.
    #[arg(long)]
    pub threshold: Option<f64>,
}

/// Runs `daad predict`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let out = args.out.clone().unwrap_or_else(|| args.run.join("predictions"));
    let device = pipeline::default_device();
    let preds = pipeline::predict(&args.run, &args.images, &out, args.threshold, &device)
        .with_context(|| format!("predicting with run {}", args.run.display()))?;
    for p in &preds {
        println!("{}", serde_json::to_string(p).context("serialising a prediction")?);
    }
    Ok(())
}
