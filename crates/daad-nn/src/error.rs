//! The crate's typed error and its `Result` alias.

/// Errors raised by daad-nn for arguments or state it cannot accept.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A layer argument the layer does not implement (e.g. `groups != 1`).
    #[error("{layer}: unsupported argument {arg} = {value}; {hint}")]
    Unsupported {
        /// Layer name.
        layer: &'static str,
        /// Argument name.
        arg: &'static str,
        /// Offending value, formatted.
        value: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// A tensor has a shape the layer cannot work with.
    #[error("{layer}: bad shape for {what}: got {got:?}, expected {expected}")]
    Shape {
        /// Layer name.
        layer: &'static str,
        /// Which tensor.
        what: &'static str,
        /// Shape that was given.
        got: Vec<usize>,
        /// Description of the shape that was expected.
        expected: String,
    },
    /// Optimiser state being imported is missing a key or has a wrong shape.
    #[error("optimizer state key {key:?}: {msg}")]
    State {
        /// State key (e.g. `m.3`).
        key: String,
        /// What is wrong with it and what to do.
        msg: String,
    },
    /// A precision name that is not `f32` or `bf16`.
    #[error("unknown precision {0:?}: expected f32 or bf16")]
    UnknownPrecision(String),
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias for daad-nn.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps this error as a `candle_core::Error` (for APIs bound to candle's `Result`).
    pub fn into_candle(self) -> candle_core::Error {
        match self {
            Error::Candle(e) => e,
            e => candle_core::Error::wrap(e),
        }
    }
}
