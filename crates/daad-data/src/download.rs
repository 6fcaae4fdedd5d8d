//! Downloading and installing dataset archives: resumable HTTP, sha256 verification, streaming
//! tar.xz / tar.gz extraction into a temporary folder that is renamed into place only when
//! complete, and a Hugging Face Hub source.
//!
//! [`install`] is the one entry point the `cargo xtask download` command uses; the offline tests
//! call the same function against a loopback server.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Receives progress of long operations; binaries implement it with a progress bar.
pub trait Progress {
    /// A new phase starts (`total` in bytes for downloads, entries for extraction, if known).
    fn begin(&mut self, label: &str, total: Option<u64>);
    /// The phase reached `done` (absolute, same unit as `total`).
    fn set_position(&mut self, done: u64);
    /// The phase ended.
    fn end(&mut self);
}

/// A [`Progress`] that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&mut self, _label: &str, _total: Option<u64>) {}
    fn set_position(&mut self, _done: u64) {}
    fn end(&mut self) {}
}

/// An archive reachable by URL, with its expected sha256 if one is pinned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveSpec {
    /// Where to fetch it (http or https).
    pub url: String,
    /// File name under `<dest>/downloads/`; its suffix selects the decompressor.
    pub file_name: String,
    /// Lower-case hex sha256 of the archive, if known.
    pub sha256: Option<String>,
}

/// A file in a Hugging Face dataset repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HfSpec {
    /// Dataset repo id, e.g. `owner/mvtec-ad`.
    pub repo: String,
    /// Path of the archive inside the repo, e.g. `bottle.tar.xz`.
    pub file: String,
    /// Branch, tag or commit (default `main`).
    pub revision: Option<String>,
    /// Hub endpoint (default: the `HF_ENDPOINT` variable, else `https://huggingface.co`).
    pub endpoint: Option<String>,
    /// Expected sha256; if `None`, the Hub's LFS etag (the file's sha256) is used when it has one.
    pub sha256: Option<String>,
}

/// Where an archive comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A plain HTTP(S) URL (the official archives).
    Url(ArchiveSpec),
    /// A Hugging Face dataset repository.
    HuggingFace(HfSpec),
}

/// How [`install`] behaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstallOptions {
    /// Allow installing an archive without any known sha256 (its hash is logged so it can be pinned).
    pub allow_unverified: bool,
    /// Extract only this top-level folder of the archive (e.g. one category of the full MVTec archive).
    pub only: Option<String>,
    /// Keep the archive under `<dest>/downloads/` after extraction.
    pub keep_archive: bool,
}

/// What [`install`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The folders/files placed under `<dest>/<subdir>/`.
    pub paths: Vec<PathBuf>,
    /// sha256 of the archive.
    pub sha256: String,
    /// The archive, if kept.
    pub archive: Option<PathBuf>,
}

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
    let mut created = CreatedDirs::default();
    let result = install_inner(source, dest, subdir, opts, progress, &mut created);
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
    let paths = extract_archive(&archive, &target, opts.only.as_deref(), progress)?;
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

fn normalise_hex(s: &str) -> Result<String> {
    let h = s.trim().to_ascii_lowercase();
    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidArgument(format!("`{s}` is not a sha256 (64 hex digits)")));
    }
    Ok(h)
}

/// Lower-case hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(120))
        .try_proxy_from_env(true)
        .build()
}

/// The `.part` file a download of `dest` writes to (resumed on the next call).
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".part");
    dest.with_file_name(name)
}

/// Downloads `url` to `dest` through `dest.part`, resuming a previous partial download with an
/// HTTP range request, and checks `sha256` (hex) if given. An existing `dest` with the right
/// hash is reused without any network access.
pub fn download_file(
    url: &str,
    dest: &Path,
    sha256: Option<&str>,
    progress: &mut dyn Progress,
) -> Result<PathBuf> {
    let expected = sha256.map(normalise_hex).transpose()?;
    if dest.is_file() {
        match &expected {
            None => return Ok(dest.to_path_buf()),
            Some(e) if &sha256_file(dest)? == e => return Ok(dest.to_path_buf()),
            Some(_) => {
                tracing::warn!(file = %dest.display(), "existing download has the wrong checksum; downloading again");
                std::fs::remove_file(dest).map_err(|e| Error::io("removing", dest, e))?;
            }
        }
    }
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating folder", dir, e))?;
    }
    let part = part_path(dest);
    fetch_to_part(url, &part, progress)?;
    if let Some(e) = &expected {
        let actual = sha256_file(&part)?;
        if &actual != e {
            let _ = std::fs::remove_file(&part);
            return Err(Error::Checksum {
                path: dest.to_path_buf(),
                url: url.to_string(),
                expected: e.clone(),
                actual,
            });
        }
    }
    std::fs::rename(&part, dest).map_err(|e| Error::io("renaming download", dest, e))?;
    Ok(dest.to_path_buf())
}

fn http_err(url: &str, reason: impl std::fmt::Display) -> Error {
    Error::Http { url: url.to_string(), reason: reason.to_string() }
}

fn fetch_to_part(url: &str, part: &Path, progress: &mut dyn Progress) -> Result<()> {
    let start = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut req = agent().get(url);
    if start > 0 {
        req = req.set("Range", &format!("bytes={start}-"));
        tracing::info!(url, start, "resuming download");
    }
    let resp = match req.call() {
        Ok(r) => r,
        // The part file already holds the whole resource.
        Err(ureq::Error::Status(416, _)) if start > 0 => return Ok(()),
        Err(ureq::Error::Status(code, r)) => {
            return Err(http_err(url, format!("HTTP {code} {}", r.status_text())));
        }
        Err(e) => return Err(http_err(url, e)),
    };
    let (mut file, mut done, total) = if resp.status() == 206 && start > 0 {
        let total = resp
            .header("Content-Range")
            .and_then(|v| v.rsplit('/').next())
            .and_then(|t| t.trim().parse::<u64>().ok());
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(part)
            .map_err(|e| Error::io("opening", part, e))?;
        (f, start, total)
    } else {
        // No range support (or a fresh start): begin from zero.
        let total = resp.header("Content-Length").and_then(|v| v.trim().parse::<u64>().ok());
        let f = File::create(part).map_err(|e| Error::io("creating", part, e))?;
        (f, 0, total)
    };
    let label = part
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".part").to_string())
        .unwrap_or_default();
    progress.begin(&label, total);
    progress.set_position(done);
    let mut reader = resp.into_reader();
    let mut buf = vec![0u8; 1 << 18];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                progress.end();
                let _ = file.flush();
                return Err(http_err(url, format!("connection lost after {done} bytes ({e})")));
            }
        };
        file.write_all(&buf[..n]).map_err(|e| Error::io("writing", part, e))?;
        done += n as u64;
        progress.set_position(done);
    }
    file.flush().map_err(|e| Error::io("writing", part, e))?;
    progress.end();
    if let Some(t) = total {
        if done != t {
            return Err(http_err(url, format!("incomplete download: {done} of {t} bytes")));
        }
    }
    Ok(())
}

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

fn open_archive(archive: &Path) -> Result<Box<dyn Read>> {
    let name =
        archive.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
    let f = BufReader::with_capacity(
        1 << 20,
        File::open(archive).map_err(|e| Error::io("opening", archive, e))?,
    );
    if name.ends_with(".tar.xz") || name.ends_with(".txz") {
        Ok(Box::new(xz2::read::XzDecoder::new_multi_decoder(f)))
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Ok(Box::new(flate2::read::GzDecoder::new(f)))
    } else if name.ends_with(".tar") {
        Ok(Box::new(f))
    } else {
        Err(Error::Archive {
            path: archive.to_path_buf(),
            reason: "unknown archive type (expected .tar.xz, .tar.gz or .tar)".into(),
        })
    }
}

/// Extracts a tar(.xz|.gz) archive into `into`, streaming, through a temporary folder inside
/// `into` that is moved into place only after the whole archive was read. Only regular files and
/// folders are extracted; paths escaping the folder are an error. With `only`, just that
/// top-level folder is extracted. Existing top-level entries of the same name are replaced.
/// Returns the installed top-level paths.
pub fn extract_archive(
    archive: &Path,
    into: &Path,
    only: Option<&str>,
    progress: &mut dyn Progress,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(into).map_err(|e| Error::io("creating folder", into, e))?;
    let stem = archive.file_name().and_then(|n| n.to_str()).unwrap_or("archive").to_string();
    let tmp = into.join(format!(".extract-{stem}-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io("removing stale folder", &tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io("creating folder", &tmp, e))?;
    let res = unpack_all(archive, &tmp, only, progress);
    let res = res.and_then(|()| {
        let mut installed = Vec::new();
        let mut tops: Vec<PathBuf> = std::fs::read_dir(&tmp)
            .map_err(|e| Error::io("reading folder", &tmp, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        tops.sort();
        if tops.is_empty() {
            let what =
                only.map(|o| format!("no entry `{o}/`")).unwrap_or_else(|| "no files".into());
            return Err(Error::Archive {
                path: archive.to_path_buf(),
                reason: format!("{what} in the archive"),
            });
        }
        for t in tops {
            let target = into.join(t.file_name().expect("read_dir entries have names"));
            if target.is_dir() {
                tracing::warn!(path = %target.display(), "replacing existing folder");
                std::fs::remove_dir_all(&target).map_err(|e| Error::io("removing", &target, e))?;
            } else if target.exists() {
                std::fs::remove_file(&target).map_err(|e| Error::io("removing", &target, e))?;
            }
            std::fs::rename(&t, &target).map_err(|e| Error::io("moving into place", &target, e))?;
            installed.push(target);
        }
        Ok(installed)
    });
    let _ = std::fs::remove_dir_all(&tmp);
    res
}

fn unpack_all(
    archive: &Path,
    tmp: &Path,
    only: Option<&str>,
    progress: &mut dyn Progress,
) -> Result<()> {
    let arch_err = |reason: String| Error::Archive { path: archive.to_path_buf(), reason };
    let mut ar = tar::Archive::new(open_archive(archive)?);
    ar.set_preserve_permissions(false);
    ar.set_overwrite(true);
    progress.begin("extracting", None);
    let mut n = 0u64;
    for entry in ar.entries().map_err(|e| arch_err(e.to_string()))? {
        let mut entry = entry.map_err(|e| arch_err(e.to_string()))?;
        let path = entry.path().map_err(|e| arch_err(e.to_string()))?.into_owned();
        let mut comps = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(p) => comps.push(p.to_owned()),
                Component::CurDir => {}
                _ => {
                    return Err(arch_err(format!(
                        "entry `{}` escapes the target folder",
                        path.display()
                    )))
                }
            }
        }
        if comps.is_empty() {
            continue;
        }
        if let Some(o) = only {
            if comps[0].to_str() != Some(o) {
                continue;
            }
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            tracing::debug!(entry = %path.display(), "skipping non-regular archive entry");
            continue;
        }
        let rel: PathBuf = comps.iter().collect();
        let out = tmp.join(&rel);
        if kind.is_dir() {
            std::fs::create_dir_all(&out).map_err(|e| Error::io("creating folder", &out, e))?;
        } else {
            if let Some(p) = out.parent() {
                std::fs::create_dir_all(p).map_err(|e| Error::io("creating folder", p, e))?;
            }
            entry.unpack(&out).map_err(|e| arch_err(format!("{}: {e}", rel.display())))?;
        }
        n += 1;
        progress.set_position(n);
    }
    progress.end();
    Ok(())
}
