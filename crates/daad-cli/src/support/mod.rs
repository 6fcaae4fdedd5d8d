//! Command-line support written once for `daad` and `cargo xtask`.

pub mod logging;
pub mod progress;
pub mod signal;
