//! daad-export: a trained daad detector as ONE ONNX file that ONNX Runtime, OpenVINO or
//! TensorRT run without daad.
//!
//! The graph holds the generator of every variant (BatchNorm folded into the convolutions), the
//! block memories as standard ops (Reshape/Transpose in daad-memory's block order, row
//! normalisation, MatMul, Softmax, `GreaterOrEqual` 1/N, `Where`, `ReduceSum`, `Div`), the
//! discriminator features where the variant has one, the raw scores R and L, the calibrated
//! score with the run's stored scaling, and optionally the smoothed anomaly map and the
//! reconstruction. The threshold, scaling, variant, image size, input layout and daad version
//! travel in the model's `metadata_props` (keys `daad.*`).
//!
//! ```no_run
//! use daad_export::{export_onnx, ExportOptions};
//! let report = export_onnx("runs/cap".as_ref(), "cap.onnx".as_ref(), &ExportOptions::default())?;
//! println!("{}", report.summary());
//! # Ok::<(), daad_export::Error>(())
//! ```
#![warn(missing_docs)]

mod cli;
mod error;
mod export;
mod graph;
mod network;
mod options;
mod run_info;

pub use cli::{run_cli, ExportArgs};
pub use error::{Error, Result};
pub use export::{
    export_model, export_onnx, ExportReport, ModelInfo, OnnxModel, INPUT, META_PREFIX, PREPROCESS,
};
pub use options::{Batch, ExportOptions, Outputs, DEFAULT_OPSET, MAX_OPSET, MIN_OPSET};
