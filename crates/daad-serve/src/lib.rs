//! daad-serve: `daad serve` and the results browser.
//!
//! - [`serve`] runs an HTTP service (axum on tokio) that scores PNG/JPEG images with a trained
//!   run: `POST /v1/predict`, `GET /v1/model`, `/healthz`, `/readyz`, `/metrics`, and the page at
//!   `/`. Requests that arrive together are scored in one batch (up to
//!   [`ServeOptions::max_batch`] within [`ServeOptions::max_wait`]).
//! - [`write_html_report`] writes the same page as a self-contained `index.html` (the test set
//!   sorted by score, a threshold slider with counts and the ROC operating point, defect filters,
//!   input | reconstruction | anomaly map | overlay | mask per image) that opens from disk.
//! - The server sees models only through [`Scorer`]; [`RunScorer`] is the one implementation
//!   for run folders.
//!
//! ```no_run
//! use std::sync::Arc;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let scorer = daad_serve::RunScorer::open("runs/cap".as_ref(), &candle_core::Device::Cpu)?;
//! daad_serve::serve(Arc::new(scorer), daad_serve::ServeOptions::default()).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod batch;
mod error;
mod metrics;
mod report;
mod run_scorer;
mod scorer;
mod server;

pub use error::{Error, Result};
pub use report::{
    build_report, dataset_items, render_page, write_html_report, ReportData, ReportImage,
    ReportItem, REPORT_IMAGE_SIDE,
};
pub use run_scorer::RunScorer;
pub use scorer::{AnomalyMap, ImageScore, ModelInfo, ScoreError, Scorer, Verdict};
pub use server::{read_token_file, serve, shutdown_signal, ServeOptions, Server};
