//! `daad predict`.

/// Arguments of `daad predict`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `daad predict`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`daad predict` is not built yet")
}
