//! `daad export`: a trained run as one ONNX file (daad-export does the work).

use std::path::PathBuf;

use anyhow::Context;
use daad_export::{run_cli, ExportArgs};

/// Arguments of `daad export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run folder written by `daad train --out RUN`.
    #[arg(long)]
    pub run: PathBuf,
    /// Output format (only `onnx`).
    #[arg(long, default_value = "onnx")]
    pub format: String,
    /// File to write (written atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// ONNX opset [default: daad-export's DEFAULT_OPSET].
    #[arg(long)]
    pub opset: Option<i64>,
    /// `dynamic` or a fixed number of images per call [default: dynamic].
    #[arg(long)]
    pub batch: Option<String>,
    /// Outputs, comma-separated, from score,map,reconstruction [default: score,map].
    #[arg(long, value_delimiter = ',')]
    pub outputs: Option<Vec<String>>,
}

/// Runs `daad export`; prints what was written.
pub fn run(args: Args) -> anyhow::Result<()> {
    let a = ExportArgs {
        run: args.run,
        format: args.format,
        out: args.out,
        opset: args.opset,
        batch: args.batch,
        outputs: args.outputs,
    };
    let report = run_cli(&a).with_context(|| format!("exporting run {}", a.run.display()))?;
    println!("{}", report.summary());
    Ok(())
}
