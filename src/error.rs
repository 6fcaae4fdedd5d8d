//! The facade's error type: the member crates' errors plus what the pipeline itself checks (run
//! folders, options, thresholds). Every message about user input names the path and says what
//! to do next.

use std::path::PathBuf;

/// Result alias of the facade.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in [`crate::pipeline`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The run stores no score calibration (an unfinished run).
    #[error("run {} stores no score calibration (training did not finish): finish it with `daad train ... --resume`, or use `daad test --scaling test-set`", path.display())]
    NoCalibration {
        /// The run folder.
        path: PathBuf,
    },
    /// The run stores no verdict threshold and none was given.
    #[error("run {} stores no verdict threshold (trained without held-out images, e.g. --val-fraction 0): pass one with --threshold T (`daad test` reports an F1-max threshold)", path.display())]
    NoThreshold {
        /// The run folder.
        path: PathBuf,
    },
    /// L(x) was asked for but the model has no discriminator.
    #[error("run {} ({variant}) has no discriminator, so the alignment score L(x) does not exist: use --score fused or --score r", path.display())]
    NoAlignment {
        /// The run folder.
        path: PathBuf,
        /// The run's variant.
        variant: String,
    },
    /// An option has a value the pipeline cannot use.
    #[error("invalid {name}: {message}")]
    InvalidOption {
        /// The option (flag name).
        name: &'static str,
        /// What is wrong and what to pass instead.
        message: String,
    },
    /// A file system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An image could not be read or written.
    #[error("image {}: {source}; check that the file is a readable PNG or JPEG", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// The codec's error.
        source: image::ImageError,
    },
    /// From daad-data (dataset layout, decoding).
    #[error(transparent)]
    Data(#[from] daad_data::Error),
    /// From daad-model.
    #[error(transparent)]
    Model(#[from] daad_model::Error),
    /// From daad-train (training, run folders).
    #[error(transparent)]
    Train(#[from] daad_train::Error),
    /// From daad-eval (metrics, reports).
    #[error(transparent)]
    Eval(#[from] daad_eval::Error),
    /// From candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl Error {
    /// An [`Error::Io`] for `op` on `path`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    /// An [`Error::InvalidOption`].
    pub(crate) fn option(name: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidOption { name, message: message.into() }
    }
}
