//! daad-eval: everything after the model's raw outputs. Section 3.3 of the paper (min-max
//! scaling and the fusion A = g R + (1 - g) L), section 4.1's image AUROC, and what users of
//! anomaly detectors expect beyond the paper: pixel AUROC, MVTec's AUPRO, F1-max with its
//! threshold, ROC curves, anomaly maps, heatmap and ROC PNGs, `metrics.json`, scores CSV and
//! markdown tables like the paper's.
//!
//! It sits above daad-model: [`infer`] is the one batched inference path (raw R(x), L(x) and
//! per-pixel error maps), [`Calibration`] the one score calibration stored in a run; the metrics
//! take plain numbers (or candle tensors through [`AnomalyMap::from_tensor`]).
//!
//! ```
//! use daad_eval::{EvalConfig, Evaluator, ImageRecord};
//!
//! let mut ev = Evaluator::new(EvalConfig::default());
//! for (i, (r, anomalous)) in [(0.1, false), (0.2, false), (0.5, true), (0.9, true)].into_iter().enumerate() {
//!     ev.update(ImageRecord {
//!         path: format!("{i:03}.png").into(),
//!         anomalous,
//!         defect: if anomalous { "crack".into() } else { "good".into() },
//!         r,
//!         l: None,
//!         map: None,
//!         mask: None,
//!     })?;
//! }
//! let e = ev.compute()?;
//! assert_eq!(e.image_auroc, Some(1.0));
//! assert_eq!(e.f1.unwrap().f1, 1.0);
//! # Ok::<(), daad_eval::Error>(())
//! ```
#![warn(missing_docs)]

mod anomaly_map;
mod aupro;
mod auroc;
mod error;
mod evaluator;
mod f1;
mod heatmap;
mod infer;
mod plot;
mod report;
mod roc;
mod scoring;
pub mod stats;

pub use anomaly_map::{AnomalyMap, AnomalyMapConfig, Mask};
pub use aupro::{
    aupro, label_regions, pro_curve, trapezoid, Connectivity, ProCurve, DEFAULT_FPR_LIMIT,
};
pub use auroc::{image_auroc, pixel_auroc};
pub use error::{Error, Result};
pub use evaluator::{EvalConfig, Evaluation, Evaluator, ImageRecord, ReportPaths};
pub use f1::{f1_max, F1Max};
pub use heatmap::{
    colorize, contour, jet, overlay, save_png, write_heatmap, HeatmapOptions, HeatmapRange,
};
pub use infer::{infer, InferOptions, RawOutputs};
pub use plot::{roc_plot, write_roc_png, PALETTE};
pub use report::{
    markdown_table, paper_table3, scores_csv, write_scores_csv, Metrics, RunInfo, ScoreRow,
    TableEntry,
};
pub use roc::{roc_curve, RocCurve};
pub use scoring::{
    fuse, quantile, quantile_threshold, verdict, Calibration, CalibrationSource, MinMax, Scaling,
    ScalingMode, ScoreKind, ScoreScaling, Verdict, DEFAULT_GAMMA, DEFAULT_THRESHOLD_QUANTILE,
    MIN_HOLDOUT_IMAGES,
};
pub use stats::{
    bootstrap_mean, paired_differences, paired_interval, summarize, Interval, Outcome, Summary,
};
