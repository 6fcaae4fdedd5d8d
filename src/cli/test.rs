//! `daad test`.

/// Arguments of `daad test`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `daad test`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`daad test` is not built yet")
}
