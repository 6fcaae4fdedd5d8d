//! [`install`]: download (URL or Hub), verify, extract; clean up what a failed call created.

use std::path::{Path, PathBuf};

use super::extract::extract_archive_validated;
use super::hf::fetch_hf;
use super::http::{download_file, normalise_hex, sha256_file};
use super::progress::Progress;
use super::spec::{InstallOptions, Installed, Source};
use crate::error::{Error, Result};

/// Downloads `source` into `<dest>/downloads/`, verifies it and extracts it into `<dest>/<subdir>/`.
///
/// A failed checksum deletes the download, and folders this call created are removed again, so
/// nothing is left in `dest`. An interrupted HTTP download keeps `<dest>/downloads/NAME.part` and
/// the next call resumes it with an HTTP range request. Extraction goes to a temporary folder
/// inside `<dest>/<subdir>/` that is renamed into place only when the whole archive was read.
pub fn install(
    source: &Source,
    dest: &Path,
    subdir: &str,
    opts: &InstallOptions,
    progress: &mut dyn Progress,
) -> Result<Installed> {
    install_validated(source, dest, subdir, opts, progress, &|_, _| Ok(()))
}

/// Checks one extracted top-level entry before anything is installed: called with the staging
/// folder and the entry's name (so `staging/name` is the entry), e.g. to index an MVTec category.
pub type Validate = dyn Fn(&Path, &str) -> Result<()>;

/// Like [`install`], but every extracted top-level entry must pass `validate` while it is still
/// in the staging folder; if one fails, nothing is installed and the error names the entry.
pub fn install_validated(
    source: &Source,
    dest: &Path,
    subdir: &str,
    opts: &InstallOptions,
    progress: &mut dyn Progress,
    validate: &Validate,
) -> Result<Installed> {
    let mut created = CreatedDirs::default();
    let result = install_inner(source, dest, subdir, opts, progress, validate, &mut created);
    match &result {
        // A dropped connection keeps its .part file so the next call resumes.
        Err(Error::Http { .. }) => created.remove_empty(),
        Err(_) => created.remove_all(),
        Ok(_) => {}
    }
    result
}

fn install_inner(
    source: &Source,
    dest: &Path,
    subdir: &str,
    opts: &InstallOptions,
    progress: &mut dyn Progress,
    validate: &Validate,
    created: &mut CreatedDirs,
) -> Result<Installed> {
    created.create(dest)?;
    let downloads = dest.join("downloads");
    created.create(&downloads)?;
    let (archive, sha, is_hf_cache) = match source {
        Source::Url(spec) => {
            let expected = spec.sha256.as_deref().map(normalise_hex).transpose()?;
            if expected.is_none() && !opts.allow_unverified {
                return Err(Error::InvalidArgument(format!(
                    "no sha256 is pinned for {}; pass the archive's sha256 (--sha256 HEX) or, at your own risk, \
                     allow an unverified download (--no-verify)",
                    spec.url
                )));
            }
            let path = download_file(
                &spec.url,
                &downloads.join(&spec.file_name),
                expected.as_deref(),
                progress,
            )?;
            let sha = match expected {
                Some(s) => s,
                None => {
                    let s = sha256_file(&path)?;
                    tracing::warn!(file = %path.display(), sha256 = %s, "installed without checksum; pin this sha256");
                    s
                }
            };
            (path, sha, false)
        }
        Source::HuggingFace(spec) => {
            let cache = downloads.join("hf");
            created.create(&cache)?;
            let (path, sha) = fetch_hf(spec, &cache, opts.allow_unverified, progress)?;
            (path, sha, true)
        }
    };
    let target = dest.join(subdir);
    created.create(&target)?;
    let paths =
        extract_archive_validated(&archive, &target, opts.only.as_deref(), progress, validate)?;
    let kept = if opts.keep_archive || is_hf_cache {
        Some(archive)
    } else {
        std::fs::remove_file(&archive).map_err(|e| Error::io("removing archive", &archive, e))?;
        None
    };
    Ok(Installed { paths, sha256: sha, archive: kept })
}

/// Folders created by one call, removed again (if still empty) when it fails.
#[derive(Default)]
struct CreatedDirs(Vec<PathBuf>);

impl CreatedDirs {
    fn create(&mut self, dir: &Path) -> Result<()> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("creating folder", dir, e))?;
            self.0.push(dir.to_path_buf());
        }
        Ok(())
    }
    /// Everything inside these folders was written by this call, so they can go entirely.
    fn remove_all(&self) {
        for d in self.0.iter().rev() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    fn remove_empty(&self) {
        for d in self.0.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}
