//! The crate's typed error.

use std::path::PathBuf;

/// Errors of daad-train.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A loss became NaN or infinite; the run folder keeps the last good checkpoint.
    #[error("{what} loss is {value} at epoch {epoch}, step {step}: training stopped; the last good checkpoint (if any) in {} is kept — lower the learning rate or check the data", run.display())]
    NonFiniteLoss {
        /// Which loss.
        what: &'static str,
        /// Its value.
        value: f64,
        /// 0-based epoch.
        epoch: usize,
        /// Global step.
        step: usize,
        /// The run folder.
        run: PathBuf,
    },
    /// A run folder or one of its files that cannot be used; one message per mismatch.
    #[error("{}: {}", path.display(), problems.join("; "))]
    Run {
        /// The offending file or folder.
        path: PathBuf,
        /// What is wrong and what to do.
        problems: Vec<String>,
    },
    /// A training configuration that cannot run.
    #[error("invalid training config: {0}")]
    InvalidConfig(String),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The io error.
        source: std::io::Error,
    },
    /// The model crate's error.
    #[error(transparent)]
    Model(#[from] daad_model::Error),
    /// The data crate's error.
    #[error(transparent)]
    Data(#[from] daad_data::Error),
    /// The layers crate's error (optimiser state).
    #[error(transparent)]
    Nn(#[from] daad_nn::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Calibration or inference failed (daad-eval).
    #[error(transparent)]
    Eval(#[from] daad_eval::Error),
}

/// Result alias of daad-train.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(path: &std::path::Path, source: std::io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), source }
}
