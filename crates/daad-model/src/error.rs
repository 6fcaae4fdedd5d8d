//! The crate's typed error.

use std::path::PathBuf;

/// Errors of daad-model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image size cannot be used by the 4-stage encoder.
    #[error(
        "image size {0} is not a positive multiple of 16: the encoder halves it 4 times; use e.g. 32, 64, 128 or 256"
    )]
    ImageSize(usize),
    /// A model configuration that cannot be built.
    #[error("invalid model config: {0}")]
    InvalidConfig(String),
    /// The memory op refused a shape.
    #[error("memory at scale f{scale}: {source}")]
    Memory {
        /// 1..4.
        scale: usize,
        /// The memory crate's error.
        source: daad_memory::Error,
    },
    /// A checkpoint file that does not fit the model; one line per mismatch.
    #[error("checkpoint {}: {}", path.display(), mismatches.join("; "))]
    Checkpoint {
        /// The offending file.
        path: PathBuf,
        /// One message per mismatch.
        mismatches: Vec<String>,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The io error.
        source: std::io::Error,
    },
    /// A layer setting the model cannot use here (e.g. bf16 products on a GPU); boxed, as
    /// daad-nn's error is large.
    #[error(transparent)]
    Layer(Box<daad_nn::Error>),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of daad-model.
pub type Result<T> = std::result::Result<T, Error>;
