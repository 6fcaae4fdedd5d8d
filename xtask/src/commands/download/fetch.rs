//! The fetching half of `cargo xtask download`, built only with xtask's `download` feature
//! (its HTTPS and archive stack stays out of the other commands' build).

use anyhow::{bail, Context};
use daad_data::download::{self, ArchiveSpec, HfSpec, InstallOptions, Source};
use daad_data::{cifar, mnist, mvtec};

use super::{Args, Dataset};

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

/// Downloads what `args` asks for.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut bars = Bars { bar: None };
    match args.dataset {
        Dataset::Mvtec => mvtec_download(args, &mut bars),
        Dataset::Mnist => mnist_download(args, &mut bars),
        Dataset::Cifar10 => cifar_download(args, &mut bars),
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
