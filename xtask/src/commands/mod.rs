//! One module per xtask subcommand.

pub mod ablate;
pub mod adversarial;
pub mod bench;
pub mod demo;
pub mod download;
pub mod reproduce;
pub mod table2;
