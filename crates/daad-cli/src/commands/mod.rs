//! One module per `daad` subcommand; each has `Args` (clap) and `run`.

pub mod export;
pub mod predict;
pub mod serve;
pub mod synth;
pub mod test;
pub mod train;
