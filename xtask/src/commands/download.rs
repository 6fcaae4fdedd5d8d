//! `cargo xtask download`.

/// Arguments of `cargo xtask download`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `cargo xtask download`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask download` is not built yet")
}
