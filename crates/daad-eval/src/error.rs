//! The crate's error type: one enum, with the offending input named in every message.

use std::path::PathBuf;

/// Result alias for daad-eval.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while scoring, measuring or reporting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input that must not be empty was empty.
    #[error("{what} is empty: at least one value is needed")]
    Empty {
        /// What was empty.
        what: String,
    },
    /// Two inputs that must have the same length did not.
    #[error("{what}: lengths differ ({left} vs {right}); pass one value per item")]
    LengthMismatch {
        /// What was compared.
        what: String,
        /// Length of the first input.
        left: usize,
        /// Length of the second input.
        right: usize,
    },
    /// A metric needs both classes but only one was present.
    #[error("{what} needs both normal and anomalous items, got {positives} anomalous and {negatives} normal")]
    OneClass {
        /// The metric.
        what: String,
        /// Number of anomalous items (or pixels).
        positives: u64,
        /// Number of normal items (or pixels).
        negatives: u64,
    },
    /// A score was NaN or infinite.
    #[error("{what}: value {value} at index {index} is not finite; check the model output")]
    NotFinite {
        /// Which input.
        what: String,
        /// Index of the first bad value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// Shapes of a map and a mask (or an image) disagree.
    #[error("{what}: shape {left:?} does not match {right:?}")]
    Shape {
        /// What was compared (names the image path where known).
        what: String,
        /// First shape (width, height).
        left: (usize, usize),
        /// Second shape (width, height).
        right: (usize, usize),
    },
    /// A parameter is out of its valid range.
    #[error("invalid {name}: {message}")]
    Invalid {
        /// Parameter name.
        name: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Encoding or decoding an image failed.
    #[error("{path}: {source}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: image::ImageError,
    },
    /// JSON (de)serialisation failed.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A candle tensor could not be read.
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The model failed during inference.
    #[error(transparent)]
    Model(#[from] daad_model::Error),
}

impl Error {
    pub(crate) fn invalid(name: &str, message: impl Into<String>) -> Self {
        Error::Invalid { name: name.to_string(), message: message.into() }
    }
}

/// Checks that every value is finite; names the input and index of the first bad value.
pub(crate) fn check_finite<T: Copy + Into<f64>>(what: &str, values: &[T]) -> Result<()> {
    match values.iter().position(|v| !(*v).into().is_finite()) {
        None => Ok(()),
        Some(index) => {
            Err(Error::NotFinite { what: what.to_string(), index, value: values[index].into() })
        }
    }
}

/// Checks that two lengths agree.
pub(crate) fn check_len(what: &str, left: usize, right: usize) -> Result<()> {
    if left == right {
        Ok(())
    } else {
        Err(Error::LengthMismatch { what: what.to_string(), left, right })
    }
}
