//! `cargo xtask download`: fetch MVTec AD, MNIST or CIFAR-10 into the data folder.
//!
//! All the work is `daad_data::download::install` (tested offline against a loopback server);
//! this file holds the flags; `fetch` (the `download` feature) maps them to a `Source` and draws
//! progress bars.

use std::path::PathBuf;

#[cfg(feature = "download")]
mod fetch;

const LONG_ABOUT: &str = "\
Download a dataset into DEST (default data/), verified by sha256.

SOURCES
  Official archive (default): MVTec's own server. Without --category the full archive
  mvtec_anomaly_detection.tar.xz (4.9 GiB, sha256 pinned) is fetched and all 15 categories are
  extracted to DEST/mvtec/. With --category NAME the per-category archive NAME.tar.xz is
  fetched; MVTec publishes no checksum for those, so pass --sha256 HEX (or --no-verify, which
  logs the hash so you can pin it). To get one category verified, use --full-archive: it fetches
  the pinned full archive and extracts only NAME. MVTec moves its share links from time to
  time: if a URL stops working, take the current one from
  https://www.mvtec.com/company/research/datasets/mvtec-ad and pass it with --url.

  Hugging Face Hub (--hf-repo REPO_ID): a file of a dataset repository, fetched with the
  hf-hub crate. --hf-file names the archive in the repo (default NAME.tar.xz, or
  mvtec_anomaly_detection.tar.xz without --category); it must be a tar.xz/tar.gz in MVTec
  layout. For LFS files the Hub's etag is the sha256 and is checked; --sha256 overrides.
  --hf-endpoint (or the HF_ENDPOINT variable) points at a mirror; HF_TOKEN/huggingface-cli
  login give access to gated repos.

Downloads resume: an interrupted download keeps DEST/downloads/FILE.part and the next run
continues it with an HTTP range request. Archives are extracted into a temporary folder that
is validated (each MVTec category indexed, CIFAR-10 batches read) and renamed into place only
when complete and valid; a failed checksum deletes the download.

EXAMPLES
  cargo xtask download mvtec --category bottle --full-archive
  cargo xtask download mvtec --category bottle --sha256 <HEX>
  cargo xtask download mvtec --hf-repo <owner>/<mvtec-ad-archives> --category bottle
  cargo xtask download mnist
  cargo xtask download cifar10 --dest /mnt/data";

/// Which dataset to download.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataset {
    /// MVTec AD (all 15 categories, or one with --category) into DEST/mvtec/.
    Mvtec,
    /// MNIST's four official IDX files into DEST/mnist/.
    Mnist,
    /// CIFAR-10's binary version into DEST/cifar10/cifar-10-batches-bin/.
    Cifar10,
}

/// Arguments of `cargo xtask download`.
#[derive(clap::Args, Debug)]
#[command(long_about = LONG_ABOUT)]
pub struct Args {
    /// The dataset.
    #[arg(value_enum)]
    pub dataset: Dataset,
    /// One MVTec AD category (e.g. bottle); default: all.
    #[arg(long)]
    pub category: Option<String>,
    /// Data folder; datasets go to DEST/<dataset>/, archives to DEST/downloads/.
    #[arg(long, default_value = "data")]
    pub dest: PathBuf,
    /// Archive URL instead of the pinned official one (for MNIST: the base URL of the 4 files).
    #[arg(long)]
    pub url: Option<String>,
    /// Expected sha256 of the archive (overrides the pinned one).
    #[arg(long)]
    pub sha256: Option<String>,
    /// Allow an archive without any known sha256 (its hash is printed so you can pin it).
    #[arg(long)]
    pub no_verify: bool,
    /// With --category: fetch the checksummed full MVTec archive and extract only that category.
    #[arg(long)]
    pub full_archive: bool,
    /// Keep the archive in DEST/downloads/ after extracting it.
    #[arg(long)]
    pub keep_archive: bool,
    /// Hugging Face dataset repo id to download from instead of the official server.
    #[arg(long)]
    pub hf_repo: Option<String>,
    /// File inside the Hugging Face repo (default: <category>.tar.xz or the full archive's name).
    #[arg(long)]
    pub hf_file: Option<String>,
    /// Branch, tag or commit of the Hugging Face repo.
    #[arg(long)]
    pub hf_revision: Option<String>,
    /// Hugging Face endpoint (default: $HF_ENDPOINT or https://huggingface.co).
    #[arg(long)]
    pub hf_endpoint: Option<String>,
}
/// Runs `cargo xtask download`.
pub fn run(args: Args) -> anyhow::Result<()> {
    #[cfg(feature = "download")]
    return fetch::run(&args);
    #[cfg(not(feature = "download"))]
    {
        let _ = args;
        run_with_download_feature()
    }
}

/// Runs this same command line again through xtask built with its `download` feature, so that
/// the other commands (the demo first) do not compile a TLS and archive stack. Switching
/// between the two builds recompiles the workspace's own crates (about a minute), not candle.
#[cfg(not(feature = "download"))]
fn run_with_download_feature() -> anyhow::Result<()> {
    use anyhow::Context;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    eprintln!("building xtask with its `download` feature (HTTPS and archives), then downloading");
    let status = std::process::Command::new(&cargo)
        .args(["run", "--manifest-path", manifest, "--features", "download", "--"])
        .args(std::env::args_os().skip(1))
        .status()
        .with_context(|| {
            format!("running {} to build the download command", cargo.to_string_lossy())
        })?;
    std::process::exit(status.code().unwrap_or(1))
}
