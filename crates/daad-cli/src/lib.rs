//! daad-cli: the `daad` binary's commands and the command-line support that `cargo xtask`
//! shares: [`TrainArgs`] (the one set of training flags, converted once into daad-train's
//! configs), stop signals (SIGINT/SIGTERM/SIGHUP, [`support::signal`]), logging
//! ([`support::logging`]) and progress bars ([`support::progress`]). The `daad` library itself
//! carries no clap, indicatif or signal handling.
#![warn(missing_docs)]

pub mod commands;
mod precision_arg;
pub mod support;
mod train_args;

pub use precision_arg::PrecisionArgs;
pub use train_args::{Loss, SimilarityArg, TrainArgs};
