//! The crate's typed error.

use std::path::PathBuf;

/// Errors of daad-export.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option value that cannot be used; the message says what to pass instead.
    #[error("{option}: {message}")]
    Option {
        /// The option (as the CLI spells it).
        option: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// The run has no stored calibration, so the exported model could not compute its score.
    #[error(
        "run {} has no score calibration in config.json (training did not finish): resume the run \
         with `daad train --resume` until it completes, then export"
    , path.display())]
    NoCalibration {
        /// The run folder.
        path: PathBuf,
    },
    /// Something in the model that this exporter cannot express in ONNX.
    #[error("cannot export: {0}")]
    Unsupported(String),
    /// A weight the architecture needs is missing from the model, or has another shape.
    #[error("model weight `{name}`: {problem}")]
    Weight {
        /// The variable name (as in model.safetensors).
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The run could not be opened.
    #[error(transparent)]
    Run(#[from] daad_train::Error),
    /// Building or reading the model failed.
    #[error(transparent)]
    Model(#[from] daad_model::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Writing the ONNX file failed.
    #[error("writing {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The io error.
        source: std::io::Error,
    },
}

impl Error {
    /// An [`Error::Option`].
    pub(crate) fn option(option: &'static str, message: impl Into<String>) -> Self {
        Error::Option { option, message: message.into() }
    }
}

/// Result alias of daad-export.
pub type Result<T> = std::result::Result<T, Error>;
