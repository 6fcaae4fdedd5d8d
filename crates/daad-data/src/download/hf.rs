//! The Hugging Face Hub source (behind the `hf-hub` feature).

use std::path::{Path, PathBuf};

#[cfg(feature = "hf-hub")]
use super::http::{normalise_hex, sha256_file};
use super::progress::Progress;
use super::spec::HfSpec;
use crate::error::{Error, Result};

#[cfg(feature = "hf-hub")]
struct HfProgress<'a>(&'a mut dyn Progress, u64);

#[cfg(feature = "hf-hub")]
impl hf_hub::api::Progress for HfProgress<'_> {
    fn init(&mut self, size: usize, filename: &str) {
        self.1 = 0;
        self.0.begin(filename, Some(size as u64));
    }
    fn update(&mut self, size: usize) {
        self.1 += size as u64;
        self.0.set_position(self.1);
    }
    fn finish(&mut self) {
        self.0.end();
    }
}

/// Downloads a file of a Hugging Face dataset repo into the hub cache at `cache_dir` and verifies
/// it; returns its path and sha256.
#[cfg(feature = "hf-hub")]
pub fn fetch_hf(
    spec: &HfSpec,
    cache_dir: &Path,
    allow_unverified: bool,
    progress: &mut dyn Progress,
) -> Result<(PathBuf, String)> {
    use hf_hub::{api::sync::ApiBuilder, Repo, RepoType};
    let hub_err =
        |reason: String| Error::Hub { repo: spec.repo.clone(), file: spec.file.clone(), reason };
    let expected = spec.sha256.as_deref().map(normalise_hex).transpose()?;
    let mut builder =
        ApiBuilder::from_env().with_cache_dir(cache_dir.to_path_buf()).with_progress(false);
    if let Some(ep) = &spec.endpoint {
        builder = builder.with_endpoint(ep.trim_end_matches('/').to_string());
    }
    let api = builder.build().map_err(|e| hub_err(e.to_string()))?;
    let repo = match &spec.revision {
        Some(r) => Repo::with_revision(spec.repo.clone(), RepoType::Dataset, r.clone()),
        None => Repo::new(spec.repo.clone(), RepoType::Dataset),
    };
    let path = api
        .repo(repo)
        .download_with_progress(&spec.file, HfProgress(progress, 0))
        .map_err(|e| hub_err(e.to_string()))?;
    // The hub cache names blobs by etag; for LFS files that is the content's sha256.
    let blob = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    let etag = blob.file_name().and_then(|n| n.to_str()).and_then(|n| normalise_hex(n).ok());
    let actual = sha256_file(&blob)?;
    let want = expected.or(etag);
    match want {
        Some(w) if w != actual => {
            let _ = std::fs::remove_file(&blob);
            let _ = std::fs::remove_file(&path);
            Err(Error::Checksum {
                path,
                url: format!("hf://datasets/{}/{}", spec.repo, spec.file),
                expected: w,
                actual,
            })
        }
        Some(_) => Ok((path, actual)),
        None if allow_unverified => {
            tracing::warn!(file = %spec.file, sha256 = %actual, "installed without checksum; pin this sha256");
            Ok((path, actual))
        }
        None => {
            let _ = std::fs::remove_file(&blob);
            let _ = std::fs::remove_file(&path);
            Err(Error::InvalidArgument(format!(
                "{} in {} has no sha256 to check (not an LFS file); pass --sha256 HEX or --no-verify",
                spec.file, spec.repo
            )))
        }
    }
}

/// Without the `hf-hub` feature, Hugging Face sources are unavailable.
#[cfg(not(feature = "hf-hub"))]
pub fn fetch_hf(
    spec: &HfSpec,
    _cache_dir: &Path,
    _allow_unverified: bool,
    _progress: &mut dyn Progress,
) -> Result<(PathBuf, String)> {
    Err(Error::Hub {
        repo: spec.repo.clone(),
        file: spec.file.clone(),
        reason: "daad-data was built without the `hf-hub` feature; rebuild with it".into(),
    })
}
