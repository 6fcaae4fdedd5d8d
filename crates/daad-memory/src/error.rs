//! The crate's typed error and its `Result` alias.

use crate::config::{Backend, Rates};

/// Everything that can go wrong in daad-memory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The division rates do not divide the feature map's shape.
    #[error(
        "division rates (r_h={}, r_w={}, r_c={}) do not divide the feature shape (C={channels}, H={height}, W={width}); \
         choose rates with H % r_h == 0, W % r_w == 0 and C % r_c == 0 (or clamp the rates to the feature size)",
        rates.h, rates.w, rates.c
    )]
    RatesDoNotDivide {
        /// The rates asked for.
        rates: Rates,
        /// Channels C of the feature map.
        channels: usize,
        /// Height H of the feature map.
        height: usize,
        /// Width W of the feature map.
        width: usize,
    },
    /// A tensor given to the op has the wrong rank or shape.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        /// Which argument.
        what: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape received.
        got: Vec<usize>,
    },
    /// The memory configuration is not usable.
    #[error("invalid memory config: {0}")]
    InvalidConfig(String),
    /// The requested backend cannot run on the tensors' device or in this build.
    #[error("backend {backend:?} cannot run on device {device}: {hint}")]
    BackendUnavailable {
        /// The backend asked for.
        backend: Backend,
        /// The device of the inputs, in words.
        device: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// bf16 products asked of a memory that cannot run them.
    #[error("bf16 memory products: {0}")]
    Bf16Unavailable(String),
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Turns this error into a candle error (for functions that return `candle_core::Result`),
    /// unwrapping candle errors instead of nesting them.
    pub fn into_candle(self) -> candle_core::Error {
        match self {
            Error::Candle(e) => e,
            e => candle_core::Error::wrap(e),
        }
    }
}
