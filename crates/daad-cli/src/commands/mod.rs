//! One module per `daad` subcommand; each has `Args` (clap) and `run`.

#[cfg(feature = "export")]
pub mod export;
pub mod predict;
#[cfg(feature = "serve")]
pub mod serve;
pub mod synth;
pub mod test;
pub mod train;
