//! `cargo xtask`: project automation (download, demo, reproduce, ablate, adversarial, table2, bench).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod experiment;
mod grid;
mod paper;
mod workers;

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
    /// The README's main command: synthetic defects, AE vs DAAD, a table and heatmaps (no download).
    Demo(commands::demo::Args),
    /// Tables 1 and 3: every category x variant on MVTec AD (resumable, shardable).
    Reproduce(commands::reproduce::Args),
    /// Table 4: DAAD with different division rates.
    Ablate(commands::ablate::Args),
    /// Table 5: generators x adversarial losses x score terms.
    Adversarial(commands::adversarial::Args),
    /// Table 2: the one-class protocol on MNIST or CIFAR-10.
    Table2(commands::table2::Args),
    /// Training step time, inference images/s and memory-op time on this machine.
    Bench(commands::bench::Args),
}

fn main() -> ExitCode {
    daad_cli::support::startup::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Download(args) => commands::download::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Reproduce(args) => commands::reproduce::run(args),
        Command::Ablate(args) => commands::ablate::run(args),
        Command::Adversarial(args) => commands::adversarial::run(args),
        Command::Table2(args) => commands::table2::run(args),
        Command::Bench(args) => commands::bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
