//! Streaming tar(.xz|.gz) extraction into a staging folder, renamed into place when complete.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use super::install::Validate;
use super::progress::Progress;
use crate::error::{Error, Result};

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
    extract_archive_validated(archive, into, only, progress, &|_, _| Ok(()))
}

/// Like [`extract_archive`], but each top-level entry must pass `validate` (called with the
/// staging folder and the entry's name) before any entry is moved into place; on a failure
/// nothing is installed, existing entries stay as they were, and the staging folder is removed.
pub fn extract_archive_validated(
    archive: &Path,
    into: &Path,
    only: Option<&str>,
    progress: &mut dyn Progress,
    validate: &Validate,
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
        for t in &tops {
            let name = t.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            validate(&tmp, &name).map_err(|e| Error::Rejected {
                archive: archive.to_path_buf(),
                entry: name.clone(),
                source: Box::new(e),
            })?;
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
