//! What the server needs from a model: the [`Scorer`] trait and the values it returns. The
//! server, the batcher and the HTML report only see this trait, so they are tested with a fake
//! scorer and run with the real one ([`crate::RunScorer`]).

use image::{DynamicImage, RgbImage};
use serde::{Deserialize, Serialize};

pub use daad::eval::AnomalyMap;

/// The decision on one image (daad-eval's, so the server and `daad predict` agree).
pub use daad::eval::Verdict;

/// Identity and configuration of the model behind a [`Scorer`] (`GET /v1/model`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The run folder (as given).
    pub run: String,
    /// A short content hash of the weights, so clients can tell two models apart.
    pub run_id: String,
    /// Model variant (e.g. `daad`, `daad+`).
    pub variant: String,
    /// Side length images are resized to before scoring.
    pub image_size: usize,
    /// The verdict threshold on the fused score (None when the run stores none).
    pub threshold: Option<f64>,
    /// The run's config.json (model, training and calibration sections).
    pub config: serde_json::Value,
    /// The stored score calibration (min-max statistics, gamma, threshold), if any.
    pub calibration: Option<serde_json::Value>,
    /// Precision of the model's matrix products (`f32`, or `bf16` with `daad serve --precision`).
    #[serde(default = "f32_name")]
    pub precision: String,
}

fn f32_name() -> String {
    daad::nn::Precision::F32.name().to_string()
}

/// The score of one image.
#[derive(Clone, Debug)]
pub struct ImageScore {
    /// Fused anomaly score with the run's stored scaling.
    pub score: f64,
    /// Raw reconstruction score R(x).
    pub r: f64,
    /// Raw alignment score L(x) (variants with a discriminator).
    pub l: Option<f64>,
    /// The verdict against the run's threshold.
    pub verdict: Verdict,
    /// The smoothed anomaly map at the model's size (when details were asked for).
    pub map: Option<AnomalyMap>,
    /// The model's reconstruction at the model's size (when details were asked for).
    pub reconstruction: Option<RgbImage>,
}

/// Error of a [`Scorer`]: a message for the log and the 500 response.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScoreError(pub String);

/// A model that scores decoded images. Implementations own the model; the server calls
/// [`Scorer::score`] from one blocking worker thread with batches of up to `--max-batch` images.
pub trait Scorer: Send + Sync + 'static {
    /// Identity, configuration and calibration of the model.
    fn info(&self) -> ModelInfo;
    /// Scores `images` (any size) in one batch; with `detail`, each result carries its anomaly
    /// map and reconstruction. Returns one result per image, in order.
    fn score(&self, images: &[DynamicImage], detail: bool) -> Result<Vec<ImageScore>, ScoreError>;
}
