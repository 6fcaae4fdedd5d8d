//! `daad train`.

/// Arguments of `daad train`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `daad train`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`daad train` is not built yet")
}
