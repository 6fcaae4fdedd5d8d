//! The `daad` command line: synth, train, test, predict, serve, export.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use daad_cli::{commands as cli, support};

/// Divide-and-Assemble anomaly detection: train on good images, find defects.
#[derive(Parser, Debug)]
#[command(name = "daad", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a synthetic defect dataset in MVTec AD layout.
    Synth(cli::synth::Args),
    /// Train a model on the good images of one category.
    Train(cli::train::Args),
    /// Evaluate a trained run on a category's test split and write metrics.json.
    Test(cli::test::Args),
    /// Score single images with a trained run: verdict, score and heatmap.
    Predict(cli::predict::Args),
    /// Score images over HTTP and show results in a web page.
    #[cfg(feature = "serve")]
    Serve(cli::serve::Args),
    /// Export a trained run as one ONNX file (score, map, calibration in its metadata).
    #[cfg(feature = "export")]
    Export(cli::export::Args),
}

fn main() -> ExitCode {
    support::startup::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Synth(args) => cli::synth::run(args),
        Command::Train(args) => cli::train::run(args),
        Command::Test(args) => cli::test::run(args),
        Command::Predict(args) => cli::predict::run(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => cli::serve::run(args),
        #[cfg(feature = "export")]
        Command::Export(args) => cli::export::run(args),
    };
    // A stop by a signal (training wrote its checkpoint and returned) still exits non-zero:
    // 128 + the signal's number.
    let stopped = support::signal::exit_status();
    match result {
        Ok(()) => stopped.map_or(ExitCode::SUCCESS, ExitCode::from),
        Err(err) => {
            eprintln!("error: {}", support::error_chain(&err));
            stopped.map_or(ExitCode::FAILURE, ExitCode::from)
        }
    }
}
