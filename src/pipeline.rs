//! The user-facing pipeline shared by the `daad` CLI and `cargo xtask`: [`test`] a trained run
//! on a category's test split (metrics.json, scores.csv, roc.png, heatmaps), and [`predict`]
//! single images of any size with the run's stored calibration; both score through
//! [`crate::Detector`]. Training is [`daad_train::train`] (the CLI's flags become its configs in
//! daad-cli's `TrainArgs`).
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use daad::pipeline::{self, TestOptions};
//! use daad::train::{preset_configs, NoProgress, Preset, TrainSpec, Variant};
//!
//! let device = pipeline::default_device();
//! let (model, train) = preset_configs(Preset::Ci, Variant::Daad);
//! let spec = TrainSpec::new("data/synth", "cap", "runs/cap", model, train);
//! daad::train::train(&spec, &device, &mut NoProgress, &AtomicBool::new(false))?;
//! let test = TestOptions::new("runs/cap", "data/synth", "cap", "runs/cap/test");
//! let report = pipeline::test(&test, &device, &mut |_, _| {})?;
//! println!("{}", report.summary);
//! let preds = pipeline::predict("runs/cap".as_ref(), &["photo.png".into()], "out".as_ref(), None, &device)?;
//! println!("{:?}", preds[0]);
//! # Ok::<(), daad::Error>(())
//! ```

mod evaluate;
mod files;
mod predict;

pub use crate::detector::INFER_BATCH;
pub use daad_eval::{Scaling, ScoreKind, Verdict};
pub use daad_nn::Precision;
pub use evaluate::{test, TestOptions, TestReport, DEFAULT_MAX_HEATMAPS};
pub use files::{default_device, OutputDir};
pub use predict::{
    expand_inputs, predict, predict_with_precision, PredictFailure, PredictOutcome, Prediction,
};
