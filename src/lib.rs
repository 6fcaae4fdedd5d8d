//! daad: Divide-and-Assemble anomaly detection (Hou et al., ICCV 2021) on candle.
//!
//! This facade re-exports the workspace's crates, one module per stage of the paper's figure 3:
//! [`data`] feeds images, [`memory`] is the block-wise memory op, [`nn`] the fast layers,
//! [`model`] the networks, [`train`] the training loop and [`eval`] the scores and metrics.
//! [`Detector`] scores images with a trained run (one loader, one inference path, one
//! calibration); [`pipeline`] ties the stages into what the `daad` CLI and `cargo xtask` run:
//! train, test, predict.
//!
//! ```no_run
//! let device = daad::pipeline::default_device();
//! let preds = daad::pipeline::predict("runs/cap".as_ref(), &["photo.png".into()], "out".as_ref(), None, &device)?;
//! if let daad::pipeline::PredictOutcome::Scored(p) = &preds[0] {
//!     println!("{} -> {:?} ({:.3})", p.path.display(), p.verdict, p.score);
//! }
//! # Ok::<(), daad::Error>(())
//! ```
#![warn(missing_docs)]

pub mod detector;
mod error;
pub mod pipeline;

pub use daad_data as data;
pub use daad_eval as eval;
pub use daad_memory as memory;
pub use daad_model as model;
pub use daad_nn as nn;
pub use daad_train as train;
pub use detector::{Detector, Scored};
pub use error::{Error, Result};
