//! `ExportOptions`: what the exported graph contains (clap-free; the CLI parses into it).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Lowest opset the exporter writes: Softmax on the last axis and ReduceSum's `axes` input.
pub const MIN_OPSET: i64 = 13;
/// Highest opset the exporter writes (ONNX 1.17).
pub const MAX_OPSET: i64 = 22;
/// The default opset: ONNX 1.12's, read by every ONNX Runtime, OpenVINO and TensorRT release
/// of the last years.
pub const DEFAULT_OPSET: i64 = 17;

/// The batch dimension of the exported input and outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Batch {
    /// A symbolic dimension named `batch`: any number of images per call.
    #[default]
    Dynamic,
    /// Exactly this many images per call (some accelerators compile fixed shapes only).
    Fixed(usize),
}

impl FromStr for Batch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s.eq_ignore_ascii_case("dynamic") {
            return Ok(Batch::Dynamic);
        }
        match s.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Batch::Fixed(n)),
            _ => Err(Error::option(
                "--batch",
                format!("`{s}` is neither `dynamic` nor a positive number of images"),
            )),
        }
    }
}

impl fmt::Display for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Batch::Dynamic => f.write_str("dynamic"),
            Batch::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// Which optional outputs the graph has besides `score`, `r` (and `l` with a discriminator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outputs {
    /// `map` (B, 1, S, S): the smoothed anomaly map at the model's size.
    pub map: bool,
    /// `reconstruction` (B, 3, S, S): x_hat in (-1, 1).
    pub reconstruction: bool,
}

impl Default for Outputs {
    /// Score and map: what `daad predict` reports.
    fn default() -> Self {
        Outputs { map: true, reconstruction: false }
    }
}

impl Outputs {
    /// Parses `--outputs` items (`score`, `map`, `reconstruction`; `score` is always there).
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self> {
        let mut out = Outputs { map: false, reconstruction: false };
        for item in items {
            match item.as_ref().trim().to_ascii_lowercase().as_str() {
                "score" | "" => {}
                "map" => out.map = true,
                "reconstruction" | "recon" => out.reconstruction = true,
                other => {
                    return Err(Error::option(
                        "--outputs",
                        format!("unknown output `{other}`: use score, map, reconstruction"),
                    ))
                }
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("score")?;
        if self.map {
            f.write_str(",map")?;
        }
        if self.reconstruction {
            f.write_str(",reconstruction")?;
        }
        Ok(())
    }
}

/// What to export and how (see [`crate::export_onnx`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ExportOptions {
    /// ONNX opset of the default domain, [`MIN_OPSET`]..=[`MAX_OPSET`].
    pub opset: i64,
    /// Batch dimension.
    pub batch: Batch,
    /// Optional outputs.
    pub outputs: Outputs,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { opset: DEFAULT_OPSET, batch: Batch::Dynamic, outputs: Outputs::default() }
    }
}

impl ExportOptions {
    /// Checks the values; errors say what to pass.
    pub fn validate(&self) -> Result<()> {
        if !(MIN_OPSET..=MAX_OPSET).contains(&self.opset) {
            return Err(Error::option(
                "--opset",
                format!(
                    "{} is outside {MIN_OPSET}..={MAX_OPSET} (default {DEFAULT_OPSET})",
                    self.opset
                ),
            ));
        }
        Ok(())
    }

    /// The ONNX IR version that goes with the opset (the oldest that knows it, for old readers).
    pub fn ir_version(&self) -> i64 {
        match self.opset {
            ..=14 => 7,
            15..=18 => 8,
            19..=20 => 9,
            _ => 10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_batch_and_outputs() {
        assert_eq!("dynamic".parse::<Batch>().unwrap(), Batch::Dynamic);
        assert_eq!("4".parse::<Batch>().unwrap(), Batch::Fixed(4));
        assert!("0".parse::<Batch>().is_err());
        assert!("many".parse::<Batch>().unwrap_err().to_string().contains("--batch"));
        let o = Outputs::parse(&["score", "map", "reconstruction"]).unwrap();
        assert!(o.map && o.reconstruction);
        assert_eq!(o.to_string(), "score,map,reconstruction");
        assert_eq!(Outputs::parse(&["score"]).unwrap().to_string(), "score");
        assert!(Outputs::parse(&["heatmap"]).is_err());
        let bad = ExportOptions { opset: 9, ..ExportOptions::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("--opset"));
        ExportOptions::default().validate().unwrap();
    }
}
