//! The glue for `daad export`: plain option values in, an [`ExportReport`] out (the CLI crate
//! declares the flags with clap and prints [`ExportReport::summary`]).

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::export::{export_onnx, ExportReport};
use crate::options::{Batch, ExportOptions, Outputs, DEFAULT_OPSET};

/// The values of `daad export --run RUN --format onnx --out FILE [--opset N] [--batch dynamic|N]
/// [--outputs score,map,reconstruction]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExportArgs {
    /// Run folder written by `daad train --out RUN`.
    pub run: PathBuf,
    /// Output format; only `onnx` today.
    pub format: String,
    /// File to write.
    pub out: PathBuf,
    /// Opset (default [`DEFAULT_OPSET`]).
    pub opset: Option<i64>,
    /// `dynamic` or a fixed number of images (default dynamic).
    pub batch: Option<String>,
    /// Outputs besides the score (default `score,map`).
    pub outputs: Option<Vec<String>>,
}

impl ExportArgs {
    /// The options these values stand for (errors name the flag).
    pub fn options(&self) -> Result<ExportOptions> {
        if !self.format.eq_ignore_ascii_case("onnx") {
            return Err(Error::option(
                "--format",
                format!("`{}` is not supported; use onnx", self.format),
            ));
        }
        let opts = ExportOptions {
            opset: self.opset.unwrap_or(DEFAULT_OPSET),
            batch: self.batch.as_deref().map(str::parse::<Batch>).transpose()?.unwrap_or_default(),
            outputs: match &self.outputs {
                Some(items) => Outputs::parse(items)?,
                None => Outputs::default(),
            },
        };
        opts.validate()?;
        Ok(opts)
    }
}

/// Runs `daad export` with `args`: parses them, exports, returns what was written.
pub fn run_cli(args: &ExportArgs) -> Result<ExportReport> {
    let opts = args.options()?;
    export_onnx(&args.run, &args.out, &opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_become_options() {
        let mut a = ExportArgs { format: "onnx".into(), ..Default::default() };
        assert_eq!(a.options().unwrap(), ExportOptions::default());
        a.batch = Some("2".into());
        a.opset = Some(18);
        a.outputs = Some(vec!["score".into(), "reconstruction".into()]);
        let o = a.options().unwrap();
        assert_eq!(
            (o.batch, o.opset, o.outputs.map, o.outputs.reconstruction),
            (Batch::Fixed(2), 18, false, true)
        );
        a.format = "tflite".into();
        assert!(a.options().unwrap_err().to_string().contains("--format"));
    }
}
