//! `cargo xtask`: project automation (download, demo, reproduce, ablate, bench, ...).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

/// Project tasks for daad; run as `cargo xtask <command>`.
#[derive(Parser, Debug)]
#[command(name = "xtask", about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Download a dataset (MVTec AD, MNIST, CIFAR-10) into the data folder, verified by checksum.
    Download(commands::download::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Download(args) => commands::download::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
