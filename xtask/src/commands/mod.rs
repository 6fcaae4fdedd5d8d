//! One module per xtask subcommand.

pub mod download;
