//! `cargo xtask download`: fetch MVTec AD, MNIST or CIFAR-10 into the data folder.
//!
//! All the work is `daad_data::download::install` (tested offline against a loopback server);
//! this file maps flags to a `Source` and draws progress bars.

use std::path::PathBuf;

use anyhow::{bail, Context};
use daad_data::download::{self, ArchiveSpec, HfSpec, InstallOptions, Source};
use daad_data::{cifar, mnist, mvtec};

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

/// Shows `daad_data` progress as indicatif bars.
struct Bars {
    bar: Option<indicatif::ProgressBar>,
}

impl download::Progress for Bars {
    fn begin(&mut self, label: &str, total: Option<u64>) {
        let bar = match total {
            Some(t) => {
                let b = indicatif::ProgressBar::new(t);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} ({eta})",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                b
            }
            None => {
                let b = indicatif::ProgressBar::new_spinner();
                b.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos} entries")
                        .expect("valid template"),
                );
                b
            }
        };
        bar.set_message(label.to_string());
        self.bar = Some(bar);
    }
    fn set_position(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }
    fn end(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// Runs `cargo xtask download`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut bars = Bars { bar: None };
    match args.dataset {
        Dataset::Mvtec => mvtec_download(&args, &mut bars),
        Dataset::Mnist => mnist_download(&args, &mut bars),
        Dataset::Cifar10 => cifar_download(&args, &mut bars),
    }
}

fn mvtec_download(args: &Args, bars: &mut Bars) -> anyhow::Result<()> {
    let category = args.category.as_deref();
    if let Some(c) = category {
        if args.hf_repo.is_none() && args.url.is_none() && !mvtec::CATEGORIES.contains(&c) {
            bail!("`{c}` is not an MVTec AD category (one of: {})", mvtec::CATEGORIES.join(", "));
        }
    }
    let full = category.is_none() || args.full_archive;
    let (source, only) = if let Some(repo) = &args.hf_repo {
        let file = args.hf_file.clone().unwrap_or_else(|| match category {
            Some(c) if !args.full_archive => format!("{c}.tar.xz"),
            _ => mvtec::FULL_ARCHIVE_NAME.to_string(),
        });
        let only =
            if file == mvtec::FULL_ARCHIVE_NAME { category.map(str::to_string) } else { None };
        let src = Source::HuggingFace(HfSpec {
            repo: repo.clone(),
            file,
            revision: args.hf_revision.clone(),
            endpoint: args.hf_endpoint.clone(),
            sha256: args.sha256.clone(),
        });
        (src, only)
    } else {
        let mut spec = mvtec::official_archive(if full { None } else { category })?;
        if let Some(u) = &args.url {
            // The pinned hash belongs to the pinned URL only; another URL needs --sha256 (or --no-verify).
            if u != &spec.url {
                spec.sha256 = None;
            }
            spec.url = u.clone();
            if let Some(name) = u.rsplit('/').next().filter(|n| n.contains(".tar")) {
                spec.file_name = name.to_string();
            }
        }
        if args.sha256.is_some() {
            spec.sha256 = args.sha256.clone();
        }
        let only = if full { category.map(str::to_string) } else { None };
        (Source::Url(spec), only)
    };
    if let Some(c) = category {
        let root = args.dest.join("mvtec");
        if mvtec::index_category(&root, c).is_ok() {
            println!(
                "{} is already installed and valid; delete it to download again",
                root.join(c).display()
            );
            return Ok(());
        }
    }
    let opts =
        InstallOptions { allow_unverified: args.no_verify, only, keep_archive: args.keep_archive };
    // Each category is indexed while still in the staging folder: one that fails validation is
    // never installed (and does not replace a previous copy).
    let validate = |staging: &std::path::Path, name: &str| -> daad_data::Result<()> {
        if staging.join(name).join("train").is_dir() {
            mvtec::index_category(staging, name)?;
        }
        Ok(())
    };
    let got = download::install_validated(&source, &args.dest, "mvtec", &opts, bars, &validate)
        .context(
        "MVTec AD download failed (see `cargo xtask download mvtec --help` for the two sources and how to pass a URL or checksum)",
    )?;
    let root = args.dest.join("mvtec");
    let mut ok = 0;
    for p in &got.paths {
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else { continue };
        if !p.join("train").is_dir() {
            continue;
        }
        let idx = mvtec::index_category(&root, name)
            .with_context(|| format!("validating {}", p.display()))?;
        println!(
            "{name}: {} train, {} test images ({} defect types)",
            idx.train.len(),
            idx.test.len(),
            idx.defects().len()
        );
        ok += 1;
    }
    println!("installed {ok} categories into {} (archive sha256 {})", root.display(), got.sha256);
    Ok(())
}

fn mnist_download(args: &Args, bars: &mut Bars) -> anyhow::Result<()> {
    if args.hf_repo.is_some() {
        bail!("--hf-repo is supported for mvtec only; MNIST comes from its official files");
    }
    let dir = args.dest.join("mnist");
    for spec in mnist::official_files(args.url.as_deref()) {
        let path = download::download_file(
            &spec.url,
            &dir.join(&spec.file_name),
            spec.sha256.as_deref(),
            bars,
        )
        .with_context(|| {
            format!("downloading {} (pass --url BASE for another mirror)", spec.file_name)
        })?;
        println!("{} ok", path.display());
    }
    let (train, test) = mnist::load(&dir).context("reading the downloaded MNIST files")?;
    println!("MNIST: {} training and {} test images in {}", train.len(), test.len(), dir.display());
    Ok(())
}

fn cifar_download(args: &Args, bars: &mut Bars) -> anyhow::Result<()> {
    if args.hf_repo.is_some() {
        bail!("--hf-repo is supported for mvtec only; CIFAR-10 comes from its official archive");
    }
    let mut spec: ArchiveSpec = cifar::official_archive();
    if let Some(u) = &args.url {
        spec.url = u.clone();
    }
    if args.sha256.is_some() {
        spec.sha256 = args.sha256.clone();
    }
    let opts = InstallOptions {
        allow_unverified: args.no_verify,
        only: None,
        keep_archive: args.keep_archive,
    };
    // The batches are read while still in the staging folder, so a bad archive installs nothing.
    let validate = |staging: &std::path::Path, name: &str| -> daad_data::Result<()> {
        cifar::load(&staging.join(name)).map(|_| ())
    };
    download::install_validated(&Source::Url(spec), &args.dest, "cifar10", &opts, bars, &validate)
        .context("CIFAR-10 download failed")?;
    let dir = args.dest.join("cifar10");
    let (train, test) = cifar::load(&dir).context("reading the extracted CIFAR-10 batches")?;
    println!(
        "CIFAR-10: {} training and {} test images in {}",
        train.len(),
        test.len(),
        dir.display()
    );
    Ok(())
}
