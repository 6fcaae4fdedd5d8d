//! `daad synth`.

/// Arguments of `daad synth`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `daad synth`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`daad synth` is not built yet")
}
